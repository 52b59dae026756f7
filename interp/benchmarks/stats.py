"""Accuracy tables with paired significance and bootstrap intervals, and computed-token summaries."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Sequence

import numpy as np

Record = dict[str, Any]


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Two-sided exact McNemar p-value for paired correctness (binomial test on the discordant pairs)."""
    only_a = sum(1 for x, y in zip(a, b) if x and not y)
    only_b = sum(1 for x, y in zip(a, b) if y and not x)
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def bootstrap_ci(values: np.ndarray, n_resamples: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (per-example scores or differences)."""
    if len(values) == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n_resamples, len(values)))].mean(axis=1)
    return (float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, 1 - (1 - level) / 2)))


GROUP_ORDER = {"overall": 0, "category": 1, "subject": 2}


def _groups(records: Sequence[Record]) -> dict[tuple[str, str], list[Record]]:
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        groups[("overall", "all")].append(r)
        groups[("category", r["category"])].append(r)
        groups[("subject", r["subject"])].append(r)
    return dict(sorted(groups.items(), key=lambda kv: (GROUP_ORDER[kv[0][0]], kv[0][1])))


def accuracy(records: Sequence[Record], mode: str) -> list[dict[str, Any]]:
    """Per subject, per category and overall: accuracy (an unanswered question counts as wrong)
    with its bootstrap interval, and the parse rate (the share of responses that gave an answer
    in this mode). Skipped questions are counted apart and left out of both."""
    rows = []
    for (level, name), members in _groups(records).items():
        kept = [r for r in members if not r.get("skipped")]
        correct = np.array([r[f"correct_{mode}"] for r in kept], dtype=float)
        answered = np.array([r[f"pred_{mode}"] is not None for r in kept], dtype=float)
        rows.append({
            "level": level, "name": name, "n": len(kept), "skipped": len(members) - len(kept),
            "accuracy": float(correct.mean()) if len(kept) else math.nan, "accuracy_ci": bootstrap_ci(correct),
            "parse_rate": float(answered.mean()) if len(kept) else math.nan,
        })
    return rows


def compare(baseline: Sequence[Record], method: Sequence[Record], mode: str = "final") -> list[dict[str, Any]]:
    """Per subject, per category and overall, on the questions both runs answered (none
    skipped): both accuracies and parse rates, the difference with its paired bootstrap interval,
    and McNemar's p-value. Records are paired by id."""
    key = f"correct_{mode}"
    by_id = {r["id"]: r for r in method if not r.get("skipped")}
    pairs = {r["id"]: (r, by_id[r["id"]]) for r in baseline if r["id"] in by_id and not r.get("skipped")}
    rows = []
    for (level, name), members in _groups([p[0] for p in pairs.values()]).items():
        a = np.array([pairs[r["id"]][0][key] for r in members], dtype=float)
        b = np.array([pairs[r["id"]][1][key] for r in members], dtype=float)
        parsed = [np.mean([pairs[r["id"]][i][f"pred_{mode}"] is not None for r in members]) for i in (0, 1)]
        low, high = bootstrap_ci(b - a)
        rows.append({
            "level": level, "name": name, "n": len(members), "baseline": float(a.mean()), "method": float(b.mean()),
            "difference": float((b - a).mean()), "difference_ci": (low, high),
            "baseline_ci": bootstrap_ci(a), "method_ci": bootstrap_ci(b),
            "baseline_parse_rate": float(parsed[0]), "method_parse_rate": float(parsed[1]),
            "mcnemar_p": mcnemar_exact(a.astype(bool).tolist(), b.astype(bool).tolist()),
        })
    return rows


def disagreements(records: Sequence[Record], modes: Sequence[str]) -> list[Record]:
    """The responses a researcher should read: where the modes disagree, or ``final`` (the
    first mode) found no answer."""
    return [r for r in records if not r.get("skipped")
            and (r[f"pred_{modes[0]}"] is None or len({r[f"pred_{m}"] for m in modes}) > 1)]


def computed_tokens(runs: dict[str, Sequence[Record]]) -> list[dict[str, Any]]:
    """Mean generated tokens per category (and overall) for each run (e.g. non-CoT, CoT, CoT + method)."""
    rows = []
    for name, records in runs.items():
        by_category: dict[str, list[int]] = defaultdict(list)
        for r in (r for r in records if not r.get("skipped")):
            by_category[r["category"]].append(r["generated_tokens"])
            by_category["all"].append(r["generated_tokens"])
        for category, counts in sorted(by_category.items()):
            rows.append({"run": name, "category": category, "n": len(counts), "mean_tokens": float(np.mean(counts))})
    return rows


def accuracy_by_length(records: Sequence[Record], edges: Sequence[int] = (0, 32, 64, 128, 256, 512, 1024, 2048, 10**9),
                       mode: str = "final") -> list[dict[str, Any]]:
    """Accuracy in bins of response length (generated tokens)."""
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        members = [r for r in records if low <= r["generated_tokens"] < high and not r.get("skipped")]
        if members:
            rows.append({"bin": f"{low}-{high - 1}" if high < 10**9 else f">={low}", "n": len(members),
                         "accuracy": float(np.mean([r[f"correct_{mode}"] for r in members]))})
    return rows
