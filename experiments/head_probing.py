"""Head probing: sink, previous-token, induction, entropy, ablation effects. Options: `python experiments/head_probing.py --help`."""

import sys

from interp.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["heads", *sys.argv[1:]]))
