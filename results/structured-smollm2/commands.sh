#!/usr/bin/env bash
# The structured benchmark (held-out structured CoT questions, tables of 8-10 pairs) on the shipped
# fine-tuned pair, one torch thread, in the order they were run; each command resumes its folder
# where a kill left it. From the repository root. Run when the benchmark was named `tiny` (its
# folders record that name and ids tiny/stem/0 ...); it is now `structured`: the same questions.
set -euo pipefail
R=results/structured-smollm2
run() { .venv/bin/python -m interp accuracy --benchmark structured --threads 1 --out "$R/pages" "$@"; }
run --model interp/adapters/smollm2-structured --limit 500 --results $R/tuned --method emulation
run --model interp/adapters/smollm2-structured-dropout --limit 500 --results $R/tuned-dropout --method emulation
# The peers on the first 300 of the same questions, in a second process beside the two runs above:
run --out $R/pages-peers --model interp/adapters/smollm2-structured --limit 150 --results $R/tuned-peers --method emulation act:heads=auto pasta:heads=auto,span=question sink-scaling:gamma=0.6 temperature:temperature=1.2 sink-window:sinks=4,window=64
