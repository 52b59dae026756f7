"""Accuracy tables with paired significance and bootstrap intervals, and computed-token summaries."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from typing import Any, Sequence

import numpy as np

from interp.accuracy.extraction import MODES
from interp.accuracy.record import FORCED, SCORED, Answer



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


def _subsets(records: Sequence[Answer]) -> dict[tuple[str, str], list[Answer]]:
    groups: dict[tuple[str, str], list[Answer]] = defaultdict(list)
    for r in records:
        groups[("overall", "all")].append(r)
        groups[("category", r.item.category)].append(r)
        if r.item.subject != r.item.category:  # where subjects are the categories, once is enough
            groups[("subject", r.item.subject)].append(r)
    return dict(sorted(groups.items(), key=lambda kv: (GROUP_ORDER[kv[0][0]], kv[0][1])))


def accuracy(records: Sequence[Answer], mode: str) -> list[dict[str, Any]]:
    """Per subject, per category and overall: accuracy (an unanswered question counts as wrong)
    with its bootstrap interval, and the parse rate (the share of responses that gave an answer
    in this mode). Skipped questions are counted apart and left out of both."""
    rows = []
    for (level, name), members in _subsets(records).items():
        kept = [r for r in members if not r.skipped]
        correct = np.array([r.correct(mode) for r in kept], dtype=float)
        answered = np.array([r.answered(mode) for r in kept], dtype=float)
        rows.append({
            "level": level, "name": name, "n": len(kept), "skipped": len(members) - len(kept),
            "accuracy": float(correct.mean()) if len(kept) else math.nan, "accuracy_ci": bootstrap_ci(correct),
            "parse_rate": float(answered.mean()) if len(kept) else math.nan,
        })
    return rows


def compare(baseline: Sequence[Answer], variant: Sequence[Answer], mode: str = "final") -> list[dict[str, Any]]:
    """Per subject, per category and overall, on the questions both runs answered (none
    skipped): both accuracies and parse rates, the difference with its paired bootstrap interval,
    and McNemar's p-value. Records are paired by id."""
    by_id = {r.id: r for r in variant if not r.skipped}
    pairs = {r.id: (r, by_id[r.id]) for r in baseline if r.id in by_id and not r.skipped}
    rows = []
    for (level, name), members in _subsets([p[0] for p in pairs.values()]).items():
        a = np.array([pairs[r.id][0].correct(mode) for r in members], dtype=float)
        b = np.array([pairs[r.id][1].correct(mode) for r in members], dtype=float)
        parsed = [np.mean([pairs[r.id][i].answered(mode) for r in members]) for i in (0, 1)]
        low, high = bootstrap_ci(b - a)
        rows.append({
            "level": level, "name": name, "n": len(members), "baseline": float(a.mean()), "method": float(b.mean()),
            "difference": float((b - a).mean()), "difference_ci": (low, high),
            "baseline_ci": bootstrap_ci(a), "method_ci": bootstrap_ci(b),
            "baseline_parse_rate": float(parsed[0]), "method_parse_rate": float(parsed[1]),
            "mcnemar_p": mcnemar_exact(a.astype(bool).tolist(), b.astype(bool).tolist()),
        })
    return rows


def modes_of(runs: dict[str, Sequence[Answer]]) -> list[str]:
    """The readings to report: for options scored by log-likelihood, ``acc`` and ``acc_norm``;
    for responses, the forced answer first where the records have it, then the extraction modes
    (``final`` first)."""
    if any(r.logprobs is not None for records in runs.values() for r in records):
        return list(SCORED)
    forced = any(r.has_forced for records in runs.values() for r in records)
    return [FORCED, *MODES] if forced else list(MODES)


def agreement(records: Sequence[Answer], a: str = FORCED, b: str = "final") -> list[dict[str, Any]]:
    """Per subject, category and overall: the share of (not skipped) records where readings ``a``
    and ``b`` name the same letter (an unanswered ``b`` disagrees)."""
    rows = []
    for (level, name), members in _subsets(records).items():
        kept = [r for r in members if not r.skipped and r.answered(a)]
        same = [r.predictions[a] == r.predictions.get(b) for r in kept]
        rows.append({"level": level, "name": name, "n": len(kept),
                     "agreement": float(np.mean(same)) if kept else math.nan})
    return rows


def disagreements(records: Sequence[Answer], modes: Sequence[str]) -> list[Answer]:
    """The responses a researcher should read: where the readings disagree, or ``final`` found no
    answer; those where the forced answer and the stated (``final``) one differ come first. (Of
    options scored by log-likelihood: where length normalisation changes the answer.)"""
    stated = "final" in modes
    flagged = [r for r in records if not r.skipped
               and ((stated and not r.answered("final")) or len({r.predictions.get(m) for m in modes}) > 1)]
    return sorted(flagged, key=lambda r: not (r.has_forced and r.predictions[FORCED] != r.predictions.get("final")))


def computed_tokens(runs: dict[str, Sequence[Answer]]) -> list[dict[str, Any]]:
    """Mean generated tokens per category (and overall) for each run (e.g. non-CoT, CoT, CoT + method)."""
    rows = []
    for name, records in runs.items():
        by_category: dict[str, list[int]] = defaultdict(list)
        for r in (r for r in records if not r.skipped):
            by_category[r.item.category].append(r.generated_tokens)
            by_category["all"].append(r.generated_tokens)
        for category, counts in sorted(by_category.items()):
            rows.append({"run": name, "category": category, "n": len(counts), "mean_tokens": float(np.mean(counts))})
    return rows


def accuracy_by_length(records: Sequence[Answer], edges: Sequence[int] = (0, 32, 64, 128, 256, 512, 1024, 2048, 10**9),
                       mode: str = "final") -> list[dict[str, Any]]:
    """Accuracy in bins of response length (generated tokens)."""
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        members = [r for r in records if low <= r.generated_tokens < high and not r.skipped]
        if members:
            rows.append({"bin": f"{low}-{high - 1}" if high < 10**9 else f">={low}", "n": len(members),
                         "accuracy": float(np.mean([r.correct(mode) for r in members]))})
    return rows


NONE = "none"  # how an unanswered question is counted among the letters


def letter_counts(records: Sequence[Answer], mode: str | None) -> dict[str, int]:
    """How often each letter was answered in ``mode`` (unanswered as ``none``), or with ``mode``
    None how often each letter is the right one; over the records not skipped."""
    kept = [r for r in records if not r.skipped]
    counts = Counter(r.item.answer if mode is None else (r.predictions.get(mode) or NONE) for r in kept)
    letters = sorted({letter for r in kept for letter in map(chr, range(65, 65 + len(r.item.options)))})
    return {letter: counts.get(letter, 0) for letter in letters} | ({NONE: counts[NONE]} if counts.get(NONE) else {})


def majority_baseline(records: Sequence[Answer]) -> tuple[str, float]:
    """The right answer's most frequent letter, and the accuracy of answering it every time: what a
    model that ignores the questions and always picks one position would score at best."""
    gold = letter_counts(records, None)
    letter = max(gold, key=lambda k: (gold[k], -ord(k[0])))
    return letter, gold[letter] / max(1, sum(gold.values()))


def chance(records: Sequence[Answer]) -> float:
    """The expected accuracy of a uniform guess among each question's options."""
    kept = [r for r in records if not r.skipped]
    return float(np.mean([1 / len(r.item.options) for r in kept])) if kept else math.nan


def reading_gap(records: Sequence[Answer], mode: str, against: str = "final") -> dict[str, float]:
    """Where reading ``mode`` and ``against`` part: the accuracy difference, the share of questions
    where ``against`` found no answer but ``mode`` gave one (and how many of those were right), the
    share where both answered different letters, and of those the share whose response writes out
    the text of the option ``mode`` read (what a reading that maps option text to letters finds)."""
    kept = [r for r in records if not r.skipped]
    n = max(1, len(kept))
    filled = [r for r in kept if r.answered(mode) and not r.answered(against)]
    differ = [r for r in kept if r.answered(mode) and r.answered(against) and r.predictions[mode] != r.predictions[against]]
    written = [r for r in differ if re.search(rf"(?<!\w){re.escape(r.item.options[ord(r.predictions[mode]) - 65])}(?!\w)",
                                              r.response or "", re.I)]
    return {"difference": (sum(r.correct(mode) for r in kept) - sum(r.correct(against) for r in kept)) / n,
            "filled": len(filled) / n, "filled_right": sum(r.correct(mode) for r in filled) / max(1, len(filled)),
            "differ": len(differ) / n, "differ_written": len(written) / max(1, len(differ))}


def rotation_agreement(before: Sequence[Answer], after: Sequence[Answer], mode: str) -> dict[str, float]:
    """Paired by id, a run against the same questions with their options rotated: accuracy before
    and after, and the share of questions whose answer names the same option text (what reading
    the options gives) or the same letter (what answering by position gives)."""
    moved = {r.id: r for r in after if not r.skipped}
    pairs = [(a, moved[a.id]) for a in before if a.id in moved and not a.skipped]
    n = max(1, len(pairs))

    def option(r: Answer) -> str | None:
        letter = r.predictions.get(mode)
        return None if letter is None else r.item.options[ord(letter) - 65]

    return {"n": len(pairs), "accuracy_before": sum(a.correct(mode) for a, _ in pairs) / n,
            "accuracy_after": sum(b.correct(mode) for _, b in pairs) / n,
            "same_option": sum(option(a) is not None and option(a) == option(b) for a, b in pairs) / n,
            "same_letter": sum(a.answered(mode) and a.predictions[mode] == b.predictions.get(mode) for a, b in pairs) / n}
