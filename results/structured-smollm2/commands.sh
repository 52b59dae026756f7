#!/usr/bin/env bash
# The structured benchmark (held-out structured CoT questions, tables of 8-10 pairs) on the shipped
# fine-tuned pair, one torch thread, in the order they were run; each command resumes its folder
# where a kill left it. From the repository root.
set -euo pipefail
R=results/structured-smollm2
run() { .venv/bin/python -m interp accuracy --benchmark tiny --threads 1 --out "$R/pages" "$@"; }
run --model interp/adapters/smollm2-structured --limit 500 --results $R/tuned --method emulation
run --model interp/adapters/smollm2-structured-dropout --limit 500 --results $R/tuned-dropout --method emulation
