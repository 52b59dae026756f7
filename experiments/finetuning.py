"""What fine-tuning did to attention: base vs fine-tuned. Options: `python experiments/finetuning.py --help`."""

import sys

from interp.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["finetuning", *sys.argv[1:]]))
