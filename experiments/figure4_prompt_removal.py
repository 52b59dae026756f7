"""Alternating-layer prompt removal (Figure 4). Options: `python experiments/figure4_prompt_removal.py --help`."""

import sys

from interp.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["removal", *sys.argv[1:]]))
