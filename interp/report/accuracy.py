"""The CoT accuracy page: baseline against method, per category and subject, with computed tokens."""

from __future__ import annotations

from typing import Any, Sequence

import plotly.graph_objects as go

from interp.benchmarks import stats
from interp.report.page import Section
from interp.report.studies import Page


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _comparison_rows(rows: Sequence[dict[str, Any]]) -> list[list[Any]]:
    return [[r["level"], r["name"], r["n"], _pct(r["baseline"]), _pct(r["method"]),
             f"{100 * r['difference']:+.1f} [{100 * r['difference_ci'][0]:+.1f}, {100 * r['difference_ci'][1]:+.1f}]",
             f"{r['mcnemar_p']:.3g}"] for r in rows]


def category_bars(rows: Sequence[dict[str, Any]], names: tuple[str, str]) -> go.Figure:
    chosen = [r for r in rows if r["level"] in ("category", "overall")]
    fig = go.Figure()
    for key, name in zip(("baseline", "method"), names):
        fig.add_trace(go.Bar(
            x=[r["name"] for r in chosen], y=[100 * r[key] for r in chosen], name=name,
            error_y=dict(type="data", symmetric=False,
                         array=[100 * (r[f"{key}_ci"][1] - r[key]) for r in chosen],
                         arrayminus=[100 * (r[key] - r[f"{key}_ci"][0]) for r in chosen]),
        ))
    fig.update_layout(title="CoT accuracy by category (95% bootstrap intervals)", yaxis=dict(title="accuracy (%)", range=[0, 100]),
                      barmode="group", height=420)
    return fig


def accuracy_page(title: str, runs: dict[str, Sequence[dict[str, Any]]], baseline: str, method: str,
                  name: str = "accuracy.html", examples: int = 6) -> Page:
    """``runs`` maps a variant name to its result records; ``baseline`` and ``method`` are compared."""
    sections = []
    summary = ""
    for mode in ("flexible", "strict"):
        rows = stats.compare(runs[baseline], runs[method], mode)
        overall = rows[0]
        if mode == "flexible":
            summary = (f"{overall['n']} questions: {baseline} {_pct(overall['baseline'])}, {method} "
                       f"{_pct(overall['method'])} ({100 * overall['difference']:+.1f} points, McNemar p={overall['mcnemar_p']:.3g})")
        sections.append(Section(
            f"Accuracy, {mode} extraction",
            "flexible: the paper's cascade (option text -> letter, 'answer is X', 'X is correct', leading letter, "
            "first standalone letter, fuzzy match); strict: only the letter after 'Response:'." if mode == "flexible" else "",
            figures=[category_bars(rows, (baseline, method))],
            tables=[(["level", "name", "n", baseline, method, "difference (points) [95% CI]", "McNemar p"],
                     _comparison_rows(rows))],
        ))
    tokens = stats.computed_tokens(runs)
    fig = go.Figure()
    for run_name in runs:
        chosen = [r for r in tokens if r["run"] == run_name]
        fig.add_trace(go.Bar(x=[r["category"] for r in chosen], y=[r["mean_tokens"] for r in chosen], name=run_name))
    fig.update_layout(title="Computed tokens: mean generated tokens per question", barmode="group", height=380)
    sections.append(Section("Computed tokens", figures=[fig], tables=[(
        ["run", "category", "n", "mean generated tokens"],
        [[r["run"], r["category"], r["n"], round(r["mean_tokens"], 1)] for r in tokens])]))
    sections.append(Section("Accuracy by response length", tables=[(
        ["run", "generated tokens", "n", "accuracy"],
        [[run_name, b["bin"], b["n"], _pct(b["accuracy"])] for run_name, records in runs.items()
         for b in stats.accuracy_by_length(records)])]))
    sample = list(runs[method])[:examples]
    sections.append(Section("Raw responses (first questions, method)", tables=[(
        ["id", "answer", "flexible", "strict", "response"],
        [[r["id"], r["answer"], r["pred_flexible"], r["pred_strict"], r["response"][:400]] for r in sample])]))
    return Page(name, title, summary, sections)
