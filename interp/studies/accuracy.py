"""CoT accuracy of the shipped model on held-out structured questions, baseline against each method
(the main job's benchmark); ``interp accuracy`` runs the same harness on MMLU, PIQA and SIQA."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Sequence, TYPE_CHECKING

from interp.accuracy.data import Item
from interp.accuracy.methods import Method, parse_method
from interp.accuracy.selected import HeldOut
from interp.decoding import DEFAULT_BATCH_SIZE
from interp.config import HARD_PAIRS
from interp.report.accuracy import accuracy_page, page_title
from interp.report.page import Page
from interp.studies.base import Context

if TYPE_CHECKING:
    from interp.model.load import InterpModel


def accuracy_report(model: InterpModel, items: Sequence[Item], name: str, results: Path, *,
                    methods: Sequence[Method], max_new_tokens: int | None, batch_size: int | str = DEFAULT_BATCH_SIZE,
                    direct: bool = False, chat: bool = False, skip_over_context: bool = False,
                    source: dict[str, Any] | None = None, shifted: bool = False,
                    scoring: str = "generate", held_out: HeldOut | None = None, instruction: bool = True) -> Page | None:
    """Run the harness (baseline and ``methods``) into ``results`` and lay out its page;
    ``None`` on the ranks of a sharded run other than 0."""
    from interp.accuracy.harness import evaluate
    from interp.accuracy.runner import Shard

    evaluation = evaluate(model, items, results, methods=methods, max_new_tokens=max_new_tokens,
                          batch_size=batch_size, direct=direct, chat=chat, shard=Shard.from_torchrun(),
                          skip_over_context=skip_over_context, source=source, shifted=shifted, scoring=scoring,
                          held_out=held_out, instruction=instruction)
    if evaluation is None:
        return None
    return accuracy_page(page_title(evaluation.summary["baseline"], name), evaluation.summary, evaluation.runs,
                         f"accuracy-{name}.html")


def run(c: Context) -> Page:
    from interp.accuracy.structured import BENCHMARK, held_out_items

    results = c.config.out / "results-structured"
    shutil.rmtree(results, ignore_errors=True)  # the main job's own scratch results: always a fresh run
    items = held_out_items(c.config.questions, pairs=tuple(c.config.table_pairs or HARD_PAIRS))
    page = accuracy_report(c.model, items, BENCHMARK, results, methods=[parse_method(s) for s in c.config.method],
                           max_new_tokens=c.config.cot_tokens, shifted=True)
    assert page is not None  # the main job is never sharded
    return page
