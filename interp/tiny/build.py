"""Retrain the two shipped tiny models (without and with attention dropout), in parallel.

    python -m interp.tiny.build [--out DIR] [--steps N] [--threads N] [--variants NAME ...]

Each variant trains in its own process with one thread by default (the machines here have two
cores); a variant whose checkpoint is in DIR/NAME/checkpoint resumes from it, with any --threads.
Weights are stored in float16 to keep the package small; held-out accuracy is measured on the
stored weights by ``python -m interp.tiny.evaluate``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import sys
from pathlib import Path

import torch
from transformers import LlamaForCausalLM

from interp.tiny.train import TrainConfig, train

SHIPPED = Path(__file__).parent / "models"
VARIANTS = {"cot-tiny": 0.0, "cot-tiny-dropout": 0.1}


def _train_one(name: str, config: TrainConfig, out: Path) -> None:
    folder = train(config, out / name)
    model = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float16)
    model.save_pretrained(folder, safe_serialization=True)
    record = json.loads((folder / "training.json").read_text())
    record["command"] = " ".join(["python -m interp.tiny.build", *sys.argv[1:]])
    record["stored_dtype"] = "float16"
    (folder / "training.json").write_text(json.dumps(record, indent=2))
    for leftover in (folder / "checkpoint").iterdir():
        leftover.unlink()
    (folder / "checkpoint").rmdir()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=SHIPPED, help=f"where to write the models (default: {SHIPPED})")
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads, help="threads per variant (default 1)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="which models to (re)train (default: both)")
    args = parser.parse_args(argv)
    jobs = []
    for name in args.variants:
        dropout = VARIANTS[name]
        config = dataclasses.replace(TrainConfig(), steps=args.steps, seed=args.seed, attention_dropout=dropout,
                                     threads=args.threads)
        jobs.append(multiprocessing.Process(target=_train_one, args=(name, config, args.out)))
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
    return max(job.exitcode or 0 for job in jobs)


if __name__ == "__main__":
    raise SystemExit(main())
