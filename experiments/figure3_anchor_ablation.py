"""Anchor-token ablation and its keep-only counter-experiment (Figure 3). Options: `python experiments/figure3_anchor_ablation.py --help`."""

import sys

from interp.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["ablation", *sys.argv[1:]]))
