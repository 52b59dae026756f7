"""CoT accuracy of the shipped tiny model on held-out questions, baseline against each method
(the main job's benchmark); ``interp accuracy`` runs the same harness on MMLU, PIQA and SIQA."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any, Sequence, TYPE_CHECKING

from interp import validation
from interp.accuracy.data import Item
from interp.report.accuracy import accuracy_page
from interp.report.page import Page
from interp.studies.base import Argument, Context, Study

if TYPE_CHECKING:
    from interp.model.load import InterpModel

HARD_PAIRS = (8, 10)  # the tiny benchmark's tables: longer than training's, so accuracy has room to move

TABLE_PAIRS = Argument(("--table-pairs",), dict(
    type=validation.count, nargs=2, default=None, metavar=("FEWEST", "MOST"),
    help="held-out tiny questions on tables of this many pairs (default 8 10: longer than the 2-4 the shipped "
         "models were trained on, so their accuracy is neither at chance nor at 100%%)"))
METHOD = Argument(("--method",), dict(
    nargs="+", default=["emulation"], metavar="SPEC",
    help="variants compared with the CoT baseline, each KIND or KIND:key=value,...: emulation (alpha, threshold, "
         "last_layer), prompt-removal (first, last, step), anchor-ablation and keep-anchors (ratio; anchors found "
         "per question in its instruction); e.g. --method emulation:alpha=0.1 emulation:alpha=0.3 (default: emulation)"))


def accuracy_report(args: argparse.Namespace, model: InterpModel, items: Sequence[Item], name: str, results: Path,
                    max_new_tokens: int | None, source: dict[str, Any] | None = None) -> Page | None:
    """Run the harness (baseline and ``args.methods``) into ``results`` and lay out its page;
    ``None`` on the ranks of a sharded run other than 0."""
    from interp.accuracy.harness import DEFAULT_BATCH_SIZE, evaluate
    from interp.accuracy.runner import Shard

    evaluation = evaluate(model, items, results, methods=args.methods, max_new_tokens=max_new_tokens,
                          batch_size=getattr(args, "batch_size", DEFAULT_BATCH_SIZE), direct=getattr(args, "direct", False),
                          chat=getattr(args, "chat", False), shard=Shard.from_torchrun(),
                          skip_over_context=getattr(args, "skip_over_context", False), source=source)
    if evaluation is None:
        return None
    return accuracy_page(f"CoT accuracy: {name}", evaluation.summary, evaluation.runs, f"accuracy-{name}.html")


def _run(c: Context) -> Page:
    from interp.tiny.dataset import held_out_items

    results = c.args.out / "results-tiny"
    shutil.rmtree(results, ignore_errors=True)  # the main job's own scratch results: always a fresh run
    items = held_out_items(c.args.questions, pairs=tuple(c.args.table_pairs or HARD_PAIRS))
    page = accuracy_report(c.args, c.model, items, "tiny", results, c.args.cot_tokens)
    assert page is not None  # the main job is never sharded
    return page


STUDY = Study(
    "accuracy", "CoT accuracy on held-out tiny questions, baseline vs each method (shipped models only)",
    _run,
    arguments=(
        Argument(("--questions",), dict(type=validation.count, default=24,
                                        help="held-out questions per family for CoT accuracy (default 24)")),
        Argument(("--cot-tokens",), dict(type=validation.count, default=64, help="new tokens per CoT answer (default 64)")),
        TABLE_PAIRS,
        METHOD,
    ),
    in_run=lambda args: not args.model,
    command=False,  # `interp accuracy` is the harness's own command
)
