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


def compare(baseline: Sequence[Record], method: Sequence[Record], mode: str = "flexible") -> list[dict[str, Any]]:
    """Per subject, per category and overall: both accuracies, the difference with its paired
    bootstrap interval, and McNemar's p-value. Records are paired by id."""
    key = f"correct_{mode}"
    by_id = {r["id"]: r for r in method}
    pairs = [(r, by_id[r["id"]]) for r in baseline if r["id"] in by_id]
    groups: dict[tuple[str, str], list[tuple[Record, Record]]] = defaultdict(list)
    for pair in pairs:
        groups[("subject", pair[0]["subject"])].append(pair)
        groups[("category", pair[0]["category"])].append(pair)
        groups[("overall", "all")].append(pair)
    rows = []
    for (level, name), members in sorted(groups.items(), key=lambda kv: ({"overall": 0, "category": 1, "subject": 2}[kv[0][0]], kv[0][1])):
        a = np.array([p[0][key] for p in members], dtype=float)
        b = np.array([p[1][key] for p in members], dtype=float)
        low, high = bootstrap_ci(b - a)
        rows.append({
            "level": level, "name": name, "n": len(members), "baseline": float(a.mean()), "method": float(b.mean()),
            "difference": float((b - a).mean()), "difference_ci": (low, high),
            "baseline_ci": bootstrap_ci(a), "method_ci": bootstrap_ci(b),
            "mcnemar_p": mcnemar_exact(a.astype(bool).tolist(), b.astype(bool).tolist()),
        })
    return rows


def computed_tokens(runs: dict[str, Sequence[Record]]) -> list[dict[str, Any]]:
    """Mean generated tokens per category (and overall) for each run (e.g. non-CoT, CoT, CoT + method)."""
    rows = []
    for name, records in runs.items():
        by_category: dict[str, list[int]] = defaultdict(list)
        for r in records:
            by_category[r["category"]].append(r["generated_tokens"])
            by_category["all"].append(r["generated_tokens"])
        for category, counts in sorted(by_category.items()):
            rows.append({"run": name, "category": category, "n": len(counts), "mean_tokens": float(np.mean(counts))})
    return rows


def accuracy_by_length(records: Sequence[Record], edges: Sequence[int] = (0, 32, 64, 128, 256, 512, 1024, 2048, 10**9),
                       mode: str = "flexible") -> list[dict[str, Any]]:
    """Accuracy in bins of response length (generated tokens)."""
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        members = [r for r in records if low <= r["generated_tokens"] < high]
        if members:
            rows.append({"bin": f"{low}-{high - 1}" if high < 10**9 else f">={low}", "n": len(members),
                         "accuracy": float(np.mean([r[f"correct_{mode}"] for r in members]))})
    return rows
