"""Per-layer attention matrices (the paper's Figure 2). Options: `python experiments/figure2_attention.py --help`."""

import sys

from interp.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["attention", *sys.argv[1:]]))
