"""Run a benchmark with and without the method; write the results (JSONL per variant, JSON and CSV summaries)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Sequence

from interp.benchmarks import stats
from interp.benchmarks.data import Item
from interp.benchmarks.runner import Settings, Shard, merge_shards, read_results, run, synchronise
from interp.interventions import Intervention, TopLayerEmulation


def limit_per_subject(items: Sequence[Item], limit: int | None) -> list[Item]:
    if limit is None:
        return list(items)
    if limit < 1:
        raise ValueError(f"--limit must be at least 1, got {limit}")
    seen: dict[str, int] = {}
    kept = []
    for item in items:
        seen[item.subject] = seen.get(item.subject, 0) + 1
        if seen[item.subject] <= limit:
            kept.append(item)
    return kept


def evaluate(
    model: Any, items: Sequence[Item], out: str | Path, *, method: Sequence[Intervention] = (TopLayerEmulation(),),
    max_new_tokens: int = 2048, batch_size: int = 8, direct: bool = False, chat: bool = False,
    shard: Shard = Shard(), progress: bool = True,
) -> dict[str, list[dict[str, Any]]] | None:
    """CoT baseline, CoT with the method, and optionally the non-CoT baseline (for computed
    tokens). Returns the runs (merged over shards on rank 0; ``None`` on other ranks)."""
    out = Path(out)
    variants: dict[str, tuple[Sequence[Intervention], Settings]] = {
        "cot": ((), Settings(cot=True, chat=chat, max_new_tokens=max_new_tokens)),
        "cot+method": (tuple(method), Settings(cot=True, chat=chat, max_new_tokens=max_new_tokens)),
    }
    if direct:
        variants = {"direct": ((), Settings(cot=False, chat=chat, max_new_tokens=max_new_tokens)), **variants}
    runs = {}
    for name, (interventions, settings) in variants.items():
        runs[name] = run(model, items, out, variant=name, interventions=interventions, settings=settings,
                         shard=shard, batch_size=batch_size, progress=progress)
    if shard.world > 1:
        synchronise(shard)
        if shard.rank != 0:
            return None
        for name in variants:
            merged = read_results(merge_shards(out, name, shard.world))
            runs[name] = [merged[item.id] for item in items]
    write_tables(out, runs)
    return runs


def write_tables(out: Path, runs: dict[str, list[dict[str, Any]]]) -> None:
    """summary.json and summary.csv: the comparison rows for both extraction modes."""
    summary: dict[str, Any] = {"computed_tokens": stats.computed_tokens(runs)}
    rows_csv = []
    for mode in ("flexible", "strict"):
        rows = stats.compare(runs["cot"], runs["cot+method"], mode)
        summary[mode] = rows
        rows_csv += [{"mode": mode, **{k: v for k, v in r.items() if not k.endswith("_ci")},
                      "difference_ci_low": r["difference_ci"][0], "difference_ci_high": r["difference_ci"][1]}
                     for r in rows]
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    with (out / "summary.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows_csv[0]))
        writer.writeheader()
        writer.writerows(rows_csv)
