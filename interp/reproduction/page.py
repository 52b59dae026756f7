"""The reproduction page: the paper's claims, one per row, beside what a run of ``interp
reproduce`` measured (:mod:`interp.reproduction.findings`), then the accuracy tables by category
and the attention measures; and one accuracy page per results folder. Everything is read from the
run's folder, so the page can be rewritten from a finished (or half-finished) run without a model."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go

from interp.files import read_json
from interp.accuracy import stats
from interp.accuracy.harness import BASELINE, baseline_of
from interp.accuracy.record import FORCED
from interp.accuracy.stats import bootstrap_ci
from interp.analysis.survey import ALTERNATING, ANCHORS_REMOVED, ONLY_ANCHORS, ORIGINAL
from interp.report.accuracy import accuracy_page, page_title, reading
from interp.report.figures import caption
from interp.report.page import Page, Section
from interp.reproduction.claims import NOT_TESTED, Claim
from interp.reproduction.findings import (
    Folder, categorised, folders, measures, method_rows, paper_claims, primary_reading, scored,
)
from interp.reproduction.pipeline import STEPS


def accuracy_pages(found: list[Folder]) -> list[Page]:
    return [accuracy_page(f"{page_title(baseline_of(list(runs)), benchmark.upper())}, {model} model"
                          + ("" if scored(how) else f", {how} prompt"),
                          read_json(folder / "summary.json"), runs, f"accuracy-{how}-{model}-{benchmark}.html")
            for how, model, benchmark, folder, runs in found]


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
    """Per layout, model, benchmark and group (overall; MMLU's categories too): the baseline's and
    the method's accuracy by the forced answer and by the stated one, the difference, McNemar p,
    the stated parse rate and how often the stated answer agrees with the forced one."""
    header = ["layout", "model (variant)", "benchmark", "group", "n", "forced: baseline [95% CI] -> method",
              "difference (points) [95% CI]", "McNemar p", "stated: baseline -> method", "stated parse rate (baseline)",
              "stated = forced (baseline)"]
    rows = []
    for how, model, benchmark, _, runs in found:
        if scored(how):  # no stated answer: the accuracy-by-method section holds these
            continue
        forced = primary_reading(runs) == FORCED
        agreed = {(r["level"], r["name"]): r["agreement"] for r in stats.agreement(runs[BASELINE])} if forced else {}
        parsed = {(r["level"], r["name"]): r["parse_rate"] for r in stats.accuracy(runs[BASELINE], "final")}
        for variant in (v for v in runs if v != BASELINE):
            by_mode = {mode: {(r["level"], r["name"]): r for r in stats.compare(runs[BASELINE], runs[variant], mode)}
                       for mode in ((FORCED, "final") if forced else ("final",))}
            for key, first in by_mode[FORCED if forced else "final"].items():
                if key[0] == "subject" or (key[0] == "category" and not categorised(benchmark)):
                    continue  # PIQA and SIQA are one category each: their overall row says it
                stated = by_mode["final"][key]
                low, high = first["baseline_ci"]
                rows.append([how, f"{model} ({variant})", benchmark.upper(), key[1], first["n"],
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
    measured = measures(out)
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
