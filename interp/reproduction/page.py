"""The reproduction page: the paper's claims, one per row, beside what a run of ``interp
reproduce`` measured, then the accuracy tables by category and the attention measures; and one
accuracy page per results folder. Everything is read from the run's folder, so the page can be
rewritten from a finished (or half-finished) run without a model."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go

from interp.files import read_json
from interp.accuracy import stats
from interp.accuracy.benchmarks import BENCHMARKS, OTHER
from interp.accuracy.harness import BASELINE, baseline_of, variants_in
from interp.accuracy.record import ACC_NORM, FORCED, Answer
from interp.accuracy.runner import read_results
from interp.accuracy.stats import bootstrap_ci
from interp.analysis.survey import ALTERNATING, ANCHORS_REMOVED, ONLY_ANCHORS, ORIGINAL
from interp.report.accuracy import accuracy_page, page_title, reading
from interp.report.figures import caption
from interp.report.page import Page, Section
from interp.reproduction.claims import (
    NOT_TESTED, STEM, Claim, gain_beyond_stem, method_gain, paired,
)
from interp.reproduction.pipeline import MEASURES, SCORED_FORMS, STEPS, accuracy_folders

ANCHOR_MEASURE = "share of the later tokens' attention on the prompt's anchors (first token apart), mean over layers"
LOSS_MEASURE = "reference answer's loss (nats per token)"


# prompt (paper, chat) or log-likelihood form (letter, cloze), model, benchmark, folder, its answers
Folder = tuple[str, str, str, Path, dict[str, list[Answer]]]
ANCHORS_HURT = "Removing the anchor tokens from the prompt range hurts the answer (Figure 3)"
REMOVAL_HURTS = "Removing attention to the prompt in alternating middle layers hurts the answer (Figure 4)"
IMPROVES = "The method improves CoT accuracy outside STEM"
BEYOND_STEM = "The method helps non-STEM subjects more than STEM ones (MMLU)"


def _categorised(benchmark: str) -> bool:
    """Whether a benchmark's categories are compared (MMLU's; PIQA and SIQA are one each)."""
    return BENCHMARKS.get(benchmark, OTHER).categories


def folders(out: Path) -> list[Folder]:
    """Every accuracy folder with a summary, in name order, with its answers (read once, for every
    table and page that uses them)."""
    return [(prompt, model, benchmark, folder, runs_of(folder)) for prompt, model, benchmark, folder in
            accuracy_folders(out)]


def runs_of(folder: Path) -> dict[str, list[Answer]]:
    return {name: sorted(read_results(folder / f"{name}.jsonl").values(), key=lambda a: a.id)
            for name in variants_in(folder)}


def scored(prompt: str) -> bool:
    """Whether a folder's first level names a log-likelihood form (else a CoT prompt)."""
    return prompt in SCORED_FORMS


def primary_reading(runs: dict[str, Sequence[Answer]]) -> str:
    """Options scored by log-likelihood: acc_norm (lm-evaluation-harness's length-normalised
    reading; the same as acc for single letters). Generated answers: the model's forced answer
    where every answered record has it, else the stated one (final)."""
    answered = [a for records in runs.values() for a in records if not a.skipped]
    if answered and all(a.logprobs is not None for a in answered):
        return ACC_NORM
    return FORCED if answered and all(a.has_forced for a in answered) else "final"


def _place(prompt: str, model: str, benchmark: str) -> str:
    how = f"scored by {prompt}" if scored(prompt) else f"{prompt} prompt"
    return f"{model}, {benchmark.upper()}, {how}"


def accuracy_pages(found: list[Folder]) -> list[Page]:
    return [accuracy_page(f"{page_title(baseline_of(list(runs)), benchmark.upper())}, {model} model"
                          + ("" if scored(prompt) else f", {prompt} prompt"),
                          read_json(folder / "summary.json"), runs, f"accuracy-{prompt}-{model}-{benchmark}.html")
            for prompt, model, benchmark, folder, runs in found]


def kinds(runs: dict[str, Sequence[Answer]]) -> dict[str, str]:
    """Each method variant's kind (emulation, anchor-ablation, ...): its method's name up to the
    parameters (``cot+emulation(alpha=0.1)``: emulation)."""
    return {name: name.split("+", 1)[1].split("(", 1)[0] for name in runs if "+" in name}


def _measures(out: Path) -> dict[str, Any] | None:
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
    for prompt, model, benchmark, _, runs in found:
        mode, baseline = primary_reading(runs), runs[baseline_of(list(runs))]
        for variant, kind in kinds(runs).items():
            where = f"{_place(prompt, model, benchmark)}, {variant.split('+', 1)[1]}"
            if kind in ("anchor-ablation", "prompt-removal"):
                claims.append(method_gain(ANCHORS_HURT if kind == "anchor-ablation" else REMOVAL_HURTS, where,
                                          baseline, runs[variant], mode, direction=-1))
            elif kind == "emulation" and _categorised(benchmark):
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
    for prompt, model, benchmark, folder, runs in found:
        mode, name = primary_reading(runs), baseline_of(list(runs))
        for variant in (v for v in runs if "+" in v):
            h = emulation_h(folder, variant)
            for r in stats.compare(runs[name], runs[variant], mode):
                if r["level"] == "overall" or (r["level"] == "category" and _categorised(benchmark)):
                    rows.append({**r, "benchmark": benchmark, "place": _place(prompt, model, benchmark),
                                 "label": f"{model}, {'scored by ' + prompt if scored(prompt) else prompt + ' prompt'}",
                                 "variant": variant.split("+", 1)[1], "reading": mode, "h": h})
    return rows


def forest(rows: Sequence[dict[str, Any]], benchmark: str) -> go.Figure:
    """One benchmark's overall differences, a point and its 95% interval per (model, form, method)."""
    chosen = [r for r in rows if r["benchmark"] == benchmark and r["level"] == "overall"]
    labels = [f"{r['label']}: {r['variant']}" for r in chosen]
    diff = [100 * r["difference"] for r in chosen]
    fig = go.Figure(go.Scatter(
        x=diff, y=labels, mode="markers", marker=dict(size=9),
        error_x=dict(type="data", symmetric=False, array=[100 * r["difference_ci"][1] - d for r, d in zip(chosen, diff)],
                     arrayminus=[d - 100 * r["difference_ci"][0] for r, d in zip(chosen, diff)]),
        customdata=[[r["n"], 100 * r["baseline"], 100 * r["method"], r["mcnemar_p"]] for r in chosen],
        hovertemplate="%{y}: %{x:+.1f} points (n=%{customdata[0]}, %{customdata[1]:.1f}% -> %{customdata[2]:.1f}%, "
                      "McNemar p=%{customdata[3]:.3g})<extra></extra>"))
    fig.add_vline(x=0, line_dash="dash")
    fig.update_layout(title=f"{benchmark.upper()}: accuracy difference from the baseline", height=160 + 28 * len(chosen),
                      xaxis=dict(title="method minus baseline (points)", zeroline=False),
                      yaxis=dict(autorange="reversed"), margin=dict(l=340))
    return caption(fig, "Each point: a method's accuracy minus the baseline's on the same questions (the model and how "
                        "accuracy was read before the colon), with its paired 95% bootstrap interval; an interval "
                        "that crosses the dashed line does not tell the method from the baseline.")


def methods_table(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    header = ["benchmark", "where", "method", "emulation's h", "group", "n", "reading", "baseline [95% CI]", "method",
              "difference (points) [95% CI]", "McNemar p"]
    return header, [[r["benchmark"].upper(), r["place"], r["variant"], r["h"], r["name"], r["n"], reading(r["reading"]),
                     f"{100 * r['baseline']:.1f}% [{100 * r['baseline_ci'][0]:.1f}, {100 * r['baseline_ci'][1]:.1f}]",
                     f"{100 * r['method']:.1f}%", f"{100 * r['difference']:+.1f} [{100 * r['difference_ci'][0]:+.1f}, "
                     f"{100 * r['difference_ci'][1]:+.1f}]", f"{r['mcnemar_p']:.3g}"] for r in rows]


def paper_claims(out: Path, found: list[Folder]) -> list[Claim]:
    """Every claim row, the rows of one claim together, in the order the claims first appear."""
    measured = _measures(out)
    claims = [*(attention_claims(measured) if measured else []), *accuracy_claims(found),
              Claim("Larger models gain more from the method", "one model size in this run",
                    "needs the same run on a second, larger model (the paper: LLaMA-2 7B vs 13B)")]
    order = {claim: n for n, claim in reversed(list(enumerate(c.claim for c in claims)))}
    return sorted(claims, key=lambda c: order[c.claim])


def _number(x: float, percent: bool) -> str:
    if x != x:
        return ""
    return f"{100 * x:+.1f}" if percent else f"{x:+.3g}"


def claims_table(claims: Sequence[Claim]) -> tuple[list[str], list[list[Any]]]:
    header = ["the paper's claim", "where", "measured", "estimate [95% CI]", "n", "p (test)", "verdict"]
    rows = []
    for c in claims:
        percent = "accuracy" in c.measured or "gain" in c.measured
        unit = " points" if percent else ""
        estimate = "" if math.isnan(c.estimate) else \
            f"{_number(c.estimate, percent)}{unit} [{_number(c.ci[0], percent)}, {_number(c.ci[1], percent)}]"
        rows.append([c.claim, c.where, c.measured, estimate, c.n or "",
                     "" if c.p is None else f"{c.p:.3g} ({c.test})", c.verdict])
    return header, rows


def accuracy_table(found: list[Folder]) -> tuple[list[str], list[list[Any]]]:
    """Per prompt, model, benchmark and group (overall; MMLU's categories too): the baseline's and
    the method's accuracy by the forced answer and by the stated one, the difference, McNemar p,
    the stated parse rate and how often the stated answer agrees with the forced one."""
    header = ["prompt", "model (variant)", "benchmark", "group", "n", "forced: baseline [95% CI] -> method",
              "difference (points) [95% CI]", "McNemar p", "stated: baseline -> method", "stated parse rate (baseline)",
              "stated = forced (baseline)"]
    rows = []
    for prompt, model, benchmark, _, runs in found:
        if scored(prompt):  # no stated answer: the accuracy-by-method section holds these
            continue
        forced = primary_reading(runs) == FORCED
        agreed = {(r["level"], r["name"]): r["agreement"] for r in stats.agreement(runs[BASELINE])} if forced else {}
        parsed = {(r["level"], r["name"]): r["parse_rate"] for r in stats.accuracy(runs[BASELINE], "final")}
        for variant in (v for v in runs if v != BASELINE):
            by_mode = {mode: {(r["level"], r["name"]): r for r in stats.compare(runs[BASELINE], runs[variant], mode)}
                       for mode in ((FORCED, "final") if forced else ("final",))}
            for key, first in by_mode[FORCED if forced else "final"].items():
                if key[0] == "subject" or (key[0] == "category" and not _categorised(benchmark)):
                    continue  # PIQA and SIQA are one category each: their overall row says it
                stated = by_mode["final"][key]
                low, high = first["baseline_ci"]
                rows.append([prompt, f"{model} ({variant})", benchmark.upper(), key[1], first["n"],
                             f"{100 * first['baseline']:.1f}% [{100 * low:.0f}, {100 * high:.0f}] -> "
                             f"{100 * first['method']:.1f}%" if forced else "",
                             f"{100 * first['difference']:+.1f} [{100 * first['difference_ci'][0]:+.1f}, "
                             f"{100 * first['difference_ci'][1]:+.1f}]", f"{first['mcnemar_p']:.3g}",
                             f"{100 * stated['baseline']:.1f}% -> {100 * stated['method']:.1f}%",
                             f"{100 * parsed[key]:.0f}%", f"{100 * agreed[key]:.0f}%" if key in agreed else ""])
    return header, rows


def measures_table(measured: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    def mean(values: Sequence[float]) -> str:
        low, high = bootstrap_ci(np.asarray(values, dtype=float))
        return f"{np.mean(values):.3g} [{low:.3g}, {high:.3g}]"

    variants = (ORIGINAL, ANCHORS_REMOVED, ONLY_ANCHORS, ALTERNATING)
    header = ["model", "anchor share", "first-token (sink) share", "anchors", *(f"loss: {v}" for v in variants)]
    rows = [[label, mean(m["anchor_share"]), mean(m["sink_share"]), f"{np.mean(m['anchors']):.1f}",
             *(mean(m["loss"][v]) for v in variants)] for label, m in measured["measures"].items()]
    return header, rows


def steps_table(out: Path) -> tuple[list[str], list[list[Any]]]:
    path = out / STEPS
    history = read_json(path) if path.is_file() else []
    names = sorted({name for run in history for name in run["seconds"]})
    return (["started", "command", *(f"step {n} (s)" for n in names)],
            [[run["started"], run["command"], *(run["seconds"].get(n, "") for n in names)] for run in history])


def reproduction_page(out: Path, found: list[Folder] | None = None) -> Page:
    found = folders(out) if found is None else found
    claims = paper_claims(out, found)
    by_method = method_rows(found)
    verdicts = Counter(c.verdict for c in claims)
    summary = ", ".join(f"{verdicts[v]} {v}" for v in ("agrees", "disagrees", "inconclusive", NOT_TESTED) if verdicts[v])
    measured = _measures(out)
    sections = [
        Section("The paper's claims beside this run",
                "One row per claim and place it was measured. The interval is a 95% bootstrap interval of the "
                "estimate; a claim agrees when its interval excludes zero on the paper's side, disagrees when it "
                "excludes zero on the other, and is inconclusive when it holds zero. Attention claims are measured "
                "per held-out structured example (paired over examples, Wilcoxon signed-rank p); accuracy claims per "
                "question (paired over questions, McNemar p), read from the model's forced answer where the records "
                "have it (the tables below give the stated answer too).",
                tables=[claims_table(claims)]),
        Section("Accuracy by method",
                "Every method's accuracy minus the baseline's, paired over the same questions (95% bootstrap "
                "interval, McNemar p), one plot per benchmark and a table with MMLU's categories. Scored by "
                "log-likelihood (letter, cloze: lm-evaluation-harness's forms), nothing is generated and every "
                "method acts in the whole forward; the reading is acc_norm (the option's log-likelihood per "
                "character; acc for single letters). Generated answers are read from the model's forced answer "
                "where the records have it. The emulation's h (its factor 1 + alpha (1 - l/h)) is the model's last "
                "layer unless a method gave another: the released code's h = 31 (`reproduce --released-h`) damps "
                "the layers past 31 of a deeper model.",
                figures=[forest(by_method, b) for b in dict.fromkeys(r["benchmark"] for r in by_method)],
                tables=[methods_table(by_method)]),
        Section("CoT accuracy by category, baseline vs the method",
                "forced: the model's own committed answer after the cue (the letter its next-token distribution "
                "prefers among the options); stated: the letter the response commits to (final extraction; "
                "unanswered counts as wrong). Where the two disagree often, read the accuracy pages' review tables.",
                tables=[accuracy_table(found)]),
    ]
    if measured:
        sections.append(Section(
            "Attention measures on held-out structured examples",
            f"{measured['examples']} held-out questions in the paper's layout (instruction, question, reference "
            f"answer); anchors at {measured['ratio']}x the prompt's mean received attention; mean over examples with "
            "95% bootstrap intervals. The study pages show one example in depth.", tables=[measures_table(measured)]))
    sections.append(Section("Time per step", "Each invocation of `interp reproduce`, seconds per step (a skipped "
                            "step takes only the check).", tables=[steps_table(out)]))
    return Page("reproduction.html", "Reproduction: the paper's claims beside this run", summary or "no claims measured",
                sections)
