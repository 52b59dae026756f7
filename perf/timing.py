"""Shared timing for the speed measurements.

``rate``: a warm-up, then the best of a few runs. ``interleaved``: the variants run in turn,
round after round (order rotated each round), so that a slow spell of this shared machine hits
them all alike; compare them by the median over rounds of the per-round ratio.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def _seconds(fn: Callable[[], object], device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def rate(fn: Callable[[], object], units: int, repeats: int = 2, device: str = "cpu") -> float:
    """Units per second of ``fn``: one warm-up call, then the best of ``repeats`` calls."""
    _seconds(fn, device)
    return units / min(_seconds(fn, device) for _ in range(repeats))


def interleaved(fns: dict[str, Callable[[], object]], rounds: int, device: str = "cpu",
                warm_up: bool = True) -> dict[str, list[float]]:
    """Seconds of each variant per round, after one warm-up call of each (unless ``warm_up=False``,
    for runs long enough that a first call's set-up does not count)."""
    for fn in fns.values() if warm_up else ():
        _seconds(fn, device)
    names, times = list(fns), {name: [] for name in fns}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            times[name].append(_seconds(fns[name], device))
    return times


def median_ratio(times: dict[str, list[float]], name: str, base: str) -> float:
    """Median over rounds of ``name``'s speed relative to ``base`` (>1: faster)."""
    return statistics.median(b / t for b, t in zip(times[base], times[name]))
