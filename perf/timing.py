"""Shared timing for the speed measurements: a warm-up, then the best of a few runs (this machine is
shared and noisy; the best run is the least disturbed one)."""

from __future__ import annotations

import time
from typing import Callable

import torch


def rate(fn: Callable[[], object], units: int, repeats: int = 2, device: str = "cpu") -> float:
    """Units per second of ``fn``: one warm-up call, then the best of ``repeats`` calls."""

    def once() -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    once()
    return units / min(once() for _ in range(repeats))
