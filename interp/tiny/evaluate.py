"""Held-out CoT accuracy of the shipped tiny models, per family, with and without the method;
recorded beside each model in ``training.json``.

    python -m interp.tiny.evaluate [--questions 100]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from interp.accuracy.harness import evaluate
from interp.accuracy.structured import held_out_items
from interp.tiny.default import DROPOUT, MAIN, load_shipped, shipped


def accuracies(name: str, questions: int) -> dict:
    model = load_shipped(name)
    with tempfile.TemporaryDirectory() as tmp:
        summary = evaluate(model, held_out_items(questions), tmp, max_new_tokens=64, batch_size=16,
                           progress=False).summary
    result: dict = {}
    for row in summary["rows"]:
        if row["level"] in ("overall", "category"):
            group = result.setdefault(row["mode"], {}).setdefault(row["name"], {"n": row["n"]})
            group[row["variant"]] = row["accuracy"]
            group[f"{row['variant']} parse rate"] = row["parse_rate"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=100, help="held-out questions per family")
    args = parser.parse_args(argv)
    for name in (MAIN, DROPOUT):
        record_file = Path(shipped(name)) / "training.json"
        record = json.loads(record_file.read_text())
        record["held_out_accuracy"] = accuracies(name, args.questions)
        record["held_out_questions_per_family"] = args.questions
        record_file.write_text(json.dumps(record, indent=2))
        print(name, json.dumps(record["held_out_accuracy"]["strict"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
