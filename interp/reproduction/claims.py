"""The paper's claims, each beside what a run measured: an estimate, its 95% interval, a p-value,
and whether the measurement agrees with the paper's direction.

A claim *agrees* when the interval excludes zero on the paper's side, *disagrees* when it excludes
zero on the other, and is *inconclusive* when it contains zero. A claim with no direction
("dropout changes the anchors") agrees when the interval excludes zero. A claim the run cannot
test (one model size cannot say whether larger models gain more) says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as scipy_stats

from interp.accuracy.record import Answer
from interp.accuracy.stats import bootstrap_ci, mcnemar_exact

STEM = "STEM"

AGREES, DISAGREES, INCONCLUSIVE, NOT_TESTED = "agrees", "disagrees", "inconclusive", "not tested"


@dataclass(frozen=True)
class Claim:
    claim: str  # the paper's claim, in words
    where: str  # which model, benchmark or measure
    measured: str  # what was compared, in words
    estimate: float = math.nan
    ci: tuple[float, float] = (math.nan, math.nan)
    p: float | None = None
    test: str = ""  # which test gave p
    direction: int = 1  # +1: the paper says the estimate is positive; 0: says it is not zero
    n: int = 0

    @property
    def verdict(self) -> str:
        low, high = self.ci
        if math.isnan(low) or math.isnan(high):
            return NOT_TESTED
        if low > 0 or high < 0:
            side = 1 if low > 0 else -1
            return AGREES if self.direction in (0, side) else DISAGREES
        return INCONCLUSIVE


def paired(claim: str, where: str, measured: str, before: Sequence[float], after: Sequence[float],
           direction: int = 1) -> Claim:
    """``after - before`` per example: its mean, bootstrap interval, and the Wilcoxon signed-rank p."""
    a, b = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if a.shape != b.shape or not len(a):
        raise ValueError(f"{where}: paired measures need the same examples on both sides, got {len(a)} and {len(b)}")
    diff = b - a
    p = 1.0 if not np.any(diff) else float(scipy_stats.wilcoxon(b, a).pvalue)
    return Claim(claim, where, measured, float(diff.mean()), bootstrap_ci(diff), p, "Wilcoxon", direction, len(a))


def correctness(answers: Sequence[Answer], mode: str) -> dict[str, bool]:
    return {a.id: a.correct(mode) for a in answers if not a.skipped}


def method_gain(claim: str, where: str, baseline: Sequence[Answer], method: Sequence[Answer], mode: str,
                direction: int = 1) -> Claim:
    """Accuracy under the method minus the baseline's, on the questions both answered (McNemar p);
    ``direction`` -1 where the paper says the method lowers it."""
    a, b = correctness(baseline, mode), correctness(method, mode)
    ids = [i for i in a if i in b]
    x = np.array([a[i] for i in ids], dtype=float)
    y = np.array([b[i] for i in ids], dtype=float)
    if not ids:
        return Claim(claim, where, "no questions answered under both")
    return Claim(claim, where, f"accuracy ({mode}): {x.mean():.1%} -> {y.mean():.1%}", float((y - x).mean()),
                 bootstrap_ci(y - x), mcnemar_exact(x.astype(bool).tolist(), y.astype(bool).tolist()), "McNemar", direction,
                 len(ids))


def gain_beyond_stem(claim: str, where: str, baseline: Sequence[Answer], method: Sequence[Answer], mode: str,
                     n_resamples: int = 2000, seed: int = 0) -> Claim:
    """The method's gain on MMLU's non-STEM questions minus its gain on the STEM ones; the interval
    resamples questions within each group (the groups are different questions: no pairing between
    them)."""
    by_id = {a.id: a for a in method if not a.skipped}
    groups: dict[bool, list[float]] = {True: [], False: []}
    for a in baseline:
        if a.skipped or a.id not in by_id:
            continue
        groups[a.item.category == STEM].append(float(by_id[a.id].correct(mode)) - float(a.correct(mode)))
    stem, other = np.array(groups[True]), np.array(groups[False])
    if not len(stem) or not len(other):
        return Claim(claim, where, "needs MMLU questions in STEM and outside it")
    rng = np.random.default_rng(seed)
    draws = (other[rng.integers(0, len(other), (n_resamples, len(other)))].mean(1)
             - stem[rng.integers(0, len(stem), (n_resamples, len(stem)))].mean(1))
    estimate = float(other.mean() - stem.mean())
    p = float(scipy_stats.ttest_ind(other, stem, equal_var=False).pvalue) if np.any(stem) or np.any(other) else 1.0
    return Claim(claim, where, f"gain outside STEM {other.mean():+.1%} (n={len(other)}) vs in STEM "
                 f"{stem.mean():+.1%} (n={len(stem)})", estimate,
                 (float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))),
                 None if math.isnan(p) else p, "Welch t", 1, len(stem) + len(other))
