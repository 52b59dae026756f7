"""Attention without and with attention dropout (the paper's Figure 5). Options: `python experiments/figure5_dropout.py --help`."""

import sys

from interp.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["dropout", *sys.argv[1:]]))
