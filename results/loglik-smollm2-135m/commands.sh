#!/usr/bin/env bash
# The log-likelihood runs on SmolLM2-135M-Instruct (the wheel's GGUF), one torch thread, in the
# order they were run; each command resumes its folder where a kill left it. From the repository root.
set -euo pipefail
R=results/loglik-smollm2-135m
run() { .venv/bin/python -m interp accuracy --model smollm2-135m-instruct --threads 1 --out "$R/pages" "$@"; }
run --benchmark piqa --data ../shared/data/piqa --scoring cloze --results $R/piqa-cloze --method emulation
run --benchmark siqa --data ../shared/data/siqa --scoring cloze --results $R/siqa-cloze --method emulation
run --benchmark mmlu --data ../shared/data/mmlu --scoring letter --limit 53 --results $R/mmlu-letter --method emulation
run --benchmark piqa --data ../shared/data/piqa --scoring cloze --results $R/piqa-cloze --method emulation prompt-removal anchor-ablation keep-anchors
run --benchmark piqa --data ../shared/data/piqa --scoring cloze --results $R/piqa-cloze --method emulation:alpha=0.1 emulation:alpha=0.5 emulation:alpha=1.0 emulation:alpha=2.0
run --benchmark siqa --data ../shared/data/siqa --scoring cloze --results $R/siqa-cloze --method emulation prompt-removal anchor-ablation keep-anchors
run --benchmark mmlu --data ../shared/data/mmlu --scoring letter --limit 53 --results $R/mmlu-letter --method emulation prompt-removal anchor-ablation keep-anchors
run --benchmark piqa --data ../shared/data/piqa --scoring cloze --results $R/piqa-cloze --method temperature:temperature=0.8 sink-scaling:gamma=0.5 sink-window:sinks=4,window=16
# ACT and PASTA with heads=auto: the heads chosen on the file's last 64 questions, which --limit 1774 leaves out
run --benchmark piqa --data ../shared/data/piqa --scoring cloze --limit 1774 --results $R/piqa-cloze-heads --out $R/pages-heads --method act:heads=auto pasta:heads=auto
# 2026-12-04, second session: the peers on SIQA and MMLU by letter; MMLU by cloze. Run from a separate
# checkout of the same commit (so that editing the tree could not change a run), two at a time, one thread each.
run --benchmark siqa --data ../shared/data/siqa --scoring cloze --results $R/siqa-cloze --method temperature:temperature=0.8 sink-scaling:gamma=0.5 sink-window:sinks=4,window=16
# heads=auto on SIQA: the heads chosen on the file's last 64 questions, which --limit 1890 leaves out
run --benchmark siqa --data ../shared/data/siqa --scoring cloze --limit 1890 --results $R/siqa-cloze-heads --out $R/pages-heads --method act:heads=auto pasta:heads=auto
run --benchmark mmlu --data ../shared/data/mmlu --scoring letter --limit 53 --results $R/mmlu-letter --method temperature:temperature=0.8 sink-scaling:gamma=0.5 sink-window:sinks=4,window=16
# heads=auto on MMLU: chosen on the last questions of each subject's file (every subject has at least 100; --limit 53 asks the first 53)
run --benchmark mmlu --data ../shared/data/mmlu --scoring letter --limit 53 --results $R/mmlu-letter-heads --out $R/pages-heads --method act:heads=auto pasta:heads=auto
# MMLU by cloze (lm-evaluation-harness's mmlu_continuation), the first 53 of every subject: 3,021
run --out $R/pages-mmlu-cloze --benchmark mmlu --data ../shared/data/mmlu --scoring cloze --limit 53 --results $R/mmlu-cloze --method emulation prompt-removal anchor-ablation keep-anchors
