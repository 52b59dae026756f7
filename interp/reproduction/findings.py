"""What a reproduction run's folder says: its accuracy folders and their answers (read once), the
paper's claims each measurement bears on (an estimate, its interval, a verdict), and each method's
accuracy difference from its baseline. Computed here; :mod:`interp.reproduction.page` lays them out."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from interp.files import read_json
from interp.accuracy import stats
from interp.accuracy.benchmarks import BENCHMARKS, OTHER
from interp.accuracy.harness import baseline_of, finished, variants_in
from interp.accuracy.record import ACC_NORM, FORCED, Answer
from interp.accuracy.runner import read_results
from interp.analysis.survey import ALTERNATING, ANCHORS_REMOVED, ORIGINAL
from interp.reproduction.claims import STEM, Claim, gain_beyond_stem, method_gain, paired
from interp.reproduction.pipeline import MEASURES, SCORED_FORMS, accuracy_folders


ANCHOR_MEASURE = "share of the later tokens' attention on the prompt's anchors (first token apart), mean over layers"
LOSS_MEASURE = "reference answer's loss (nats per token)"


# how the questions were put: a CoT prompt's layout (paper, chat) or a log-likelihood form (letter, cloze); model, benchmark, folder, its answers
Folder = tuple[str, str, str, Path, dict[str, list[Answer]]]
ANCHORS_HURT = "Removing the anchor tokens from the prompt range hurts the answer (Figure 3)"
REMOVAL_HURTS = "Removing attention to the prompt in alternating middle layers hurts the answer (Figure 4)"
IMPROVES = "The method improves CoT accuracy outside STEM"
BEYOND_STEM = "The method helps non-STEM subjects more than STEM ones (MMLU)"


def categorised(benchmark: str) -> bool:
    """Whether a benchmark's categories are compared (MMLU's; PIQA and SIQA are one each)."""
    return BENCHMARKS.get(benchmark, OTHER).categories


def folders(out: Path) -> list[Folder]:
    """Every accuracy folder with a summary, in name order, with its answers (read once, for every
    table and page that uses them)."""
    return [(how, model, benchmark, folder, runs_of(folder)) for how, model, benchmark, folder in
            accuracy_folders(out)]


def runs_of(folder: Path) -> dict[str, list[Answer]]:
    """A folder's finished variants with their answers (one still running is left out)."""
    return finished(folder, {name: sorted(read_results(folder / f"{name}.jsonl").values(), key=lambda a: a.id)
                             for name in variants_in(folder)})


def scored(how: str) -> bool:
    """Whether a folder's first level names a log-likelihood form (else a CoT prompt's layout)."""
    return how in SCORED_FORMS


def primary_reading(runs: dict[str, Sequence[Answer]]) -> str:
    """Options scored by log-likelihood: acc_norm (lm-evaluation-harness's length-normalised
    reading; the same as acc for single letters). Generated answers: the model's forced answer
    where every answered record has it, else the stated one (final)."""
    answered = [a for records in runs.values() for a in records if not a.skipped]
    if answered and all(a.logprobs is not None for a in answered):
        return ACC_NORM
    return FORCED if answered and all(a.has_forced for a in answered) else "final"


def place(how: str, model: str, benchmark: str) -> str:
    asked = f"scored by {how}" if scored(how) else f"{how} prompt"
    return f"{model}, {benchmark.upper()}, {asked}"


def kinds(runs: dict[str, Sequence[Answer]]) -> dict[str, str]:
    """Each method variant's kind (emulation, anchor-ablation, ...): its method's name up to the
    parameters (``cot+emulation(alpha=0.1)``: emulation)."""
    return {name: name.split("+", 1)[1].split("(", 1)[0] for name in runs if "+" in name}


def measures(out: Path) -> dict[str, Any] | None:
    path = out / MEASURES
    return read_json(path) if path.is_file() else None


def attention_claims(measured: dict[str, Any]) -> list[Claim]:
    m = measured["measures"]
    claims = []
    for tuned in ("tuned", "tuned-dropout"):
        claims.append(paired("Anchor tokens emerge after structured fine-tuning: a few non-semantic prompt tokens draw "
                             "outlier attention (Figures 2-3)", f"{tuned} vs base", ANCHOR_MEASURE,
                             m["base"]["anchor_share"], m[tuned]["anchor_share"]))
    claims.append(paired("Attention dropout during fine-tuning changes the anchors (Figure 5)", "tuned-dropout vs tuned",
                         ANCHOR_MEASURE, m["tuned"]["anchor_share"], m["tuned-dropout"]["anchor_share"], direction=0))
    for tuned in ("tuned", "tuned-dropout"):
        loss = m[tuned]["loss"]
        claims.append(paired(ANCHORS_HURT, tuned, f"{LOSS_MEASURE}, anchors removed vs original", loss[ORIGINAL],
                             loss[ANCHORS_REMOVED]))
        claims.append(paired(REMOVAL_HURTS, tuned, f"{LOSS_MEASURE}, prompt removed in layers "
                             f"{measured['span'][0]}-{measured['span'][1]} (alternating) vs original",
                             loss[ORIGINAL], loss[ALTERNATING]))
    return claims


def accuracy_claims(found: list[Folder]) -> list[Claim]:
    """The claims each folder's variants bear on, by the method's kind: the emulation's gain (outside
    STEM, and beyond STEM on MMLU); anchor ablation's and alternating prompt removal's loss. Other
    kinds (keep-anchors, the peer methods) have no claim of the paper: the forest plot shows them."""
    claims = []
    for how, model, benchmark, _, runs in found:
        mode, baseline = primary_reading(runs), runs[baseline_of(list(runs))]
        for variant, kind in kinds(runs).items():
            where = f"{place(how, model, benchmark)}, {variant.split('+', 1)[1]}"
            if kind in ("anchor-ablation", "prompt-removal"):
                claims.append(method_gain(ANCHORS_HURT if kind == "anchor-ablation" else REMOVAL_HURTS, where,
                                          baseline, runs[variant], mode, direction=-1))
            elif kind == "emulation" and categorised(benchmark):
                outside = [a for a in baseline if a.item.category != STEM]
                claims.append(method_gain(IMPROVES, where + " (non-STEM)", outside, runs[variant], mode))
                claims.append(gain_beyond_stem(BEYOND_STEM, where, baseline, runs[variant], mode))
            elif kind == "emulation":
                claims.append(method_gain(IMPROVES, where, baseline, runs[variant], mode))
    return claims


def emulation_h(folder: Path, variant: str) -> str:
    """The ``h`` a variant's emulation scaled by (``1 + alpha (1 - l/h)``), as its settings file
    and the folder's model record it: the model's last layer unless the method gave another;
    empty for a method that is not the emulation."""
    settings, run = folder / f"{variant}.settings.json", folder / "run.json"
    if not settings.is_file() or not run.is_file():
        return ""
    method = read_json(settings).get("method") or {}
    last = [iv.get("last_layer") for iv in method.get("interventions", []) if iv.get("intervention") == "TopLayerEmulation"]
    if not last:
        return ""
    own = int(read_json(run)["model"]["n_layers"]) - 1
    return f"{own} (the last layer)" if last[0] in (None, own) else f"{last[0]} (given; the last layer is {own})"


def method_rows(found: list[Folder]) -> list[dict[str, Any]]:
    """Every method variant's accuracy difference from its folder's baseline, by the folder's
    primary reading: overall, and per category on MMLU."""
    rows = []
    for how, model, benchmark, folder, runs in found:
        mode, name = primary_reading(runs), baseline_of(list(runs))
        for variant in (v for v in runs if "+" in v):
            h = emulation_h(folder, variant)
            for r in stats.compare(runs[name], runs[variant], mode):
                if r["level"] == "overall" or (r["level"] == "category" and categorised(benchmark)):
                    rows.append({**r, "benchmark": benchmark, "place": place(how, model, benchmark),
                                 "label": f"{model}, {'scored by ' + how if scored(how) else how + ' prompt'}",
                                 "variant": variant.split("+", 1)[1], "reading": mode, "h": h})
    return rows


def paper_claims(out: Path, found: list[Folder]) -> list[Claim]:
    """Every claim row, the rows of one claim together, in the order the claims first appear."""
    measured = measures(out)
    claims = [*(attention_claims(measured) if measured else []), *accuracy_claims(found),
              Claim("Larger models gain more from the method", "one model size in this run",
                    "needs the same run on a second, larger model (the paper: LLaMA-2 7B vs 13B)")]
    order = {claim: n for n, claim in reversed(list(enumerate(c.claim for c in claims)))}
    return sorted(claims, key=lambda c: order[c.claim])
