"""Anchor tokens: received attention, detection, share, entropy. Options: `python experiments/anchor_tokens.py --help`."""

import sys

from interp.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["anchors", *sys.argv[1:]]))
