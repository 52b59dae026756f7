"""The depth-scaled top-layer emulation, inspected. Options: `python experiments/top_layer_emulation.py --help`."""

import sys

from interp.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["emulation", *sys.argv[1:]]))
