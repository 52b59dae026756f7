"""The CoT accuracy page, drawn from a results folder's summary (``harness.summarise``) and its
records: accuracy and parse rate per variant, the methods' differences from the baseline, sweeps
over a method's parameter, and the few responses worth reading by hand."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import plotly.graph_objects as go

from interp.accuracy import stats
from interp.accuracy.extraction import MODES
from interp.accuracy.harness import BASELINE, shifted_name, shown as shown_answer
from interp.accuracy.record import SCORED, Answer
from interp.report.figures import caption
from interp.report.page import Page, Section


MODE_TEXT = {
    "forced": "forced: the model's own committed answer, read off its logits: after the response, the cue "
              "'\\nResponse:' (or where the response wrote its own, the last one) and the next token's "
              "distribution over the option letters alone (two-stage prompting), "
              "with the variant's interventions active; the agreement column is the share of questions where the "
              "answer the response states (final) is the same letter",
    "final": "final: what the response commits to, read from its answer section first (refusals, open answers "
             "and responses that name no option count as unanswered)",
    "paper": "paper: the released code's cascade (option text -> letter, 'answer is X', 'X is correct', leading letter, "
             "first standalone letter, then a fuzzy match that always picks a letter)",
    "strict": "strict: only the letter right after the last 'Response:'",
    "acc": "acc: the option whose text, after the question, has the highest log-likelihood (nothing generated; "
           "lm-evaluation-harness's acc)",
    "acc_norm": "acc_norm: the same, each option's log-likelihood divided by its length in characters "
                "(lm-evaluation-harness's acc_norm: long options are not penalised for their length)",
}
# The runner gives every response a forced answer where the tokenizer can tell the letters apart.
UNFORCED = (" No question has a forced answer: this model's tokenizer does not write each option letter as one "
            "token of its own after the cue, so its choice among them cannot be read off one next-token "
            "distribution; accuracy is read from the stated answers only.")
REVIEW_ROWS = 60


def _pct(x: float | None) -> str:
    return "" if x is None or x != x else f"{100 * x:.1f}%"


def _interval(low: float, high: float, signed: bool = False) -> str:
    if low != low:
        return ""
    form = "{:+.1f}" if signed else "{:.1f}"
    return f"[{form.format(100 * low)}, {form.format(100 * high)}]"


def reading(mode: str) -> str:
    """How a reading is named on the page: the model's forced answer, a log-likelihood reading, or an
    extraction mode."""
    if mode in SCORED:
        return f"log-likelihood ({mode})"
    return "the model's forced answer" if mode == "forced" else f"{mode} extraction"


def page_title(baseline: str, benchmark: str) -> str:
    """The page's title: CoT accuracy, or accuracy by log-likelihood in the baseline's form."""
    return f"CoT accuracy: {benchmark}" if baseline == BASELINE else f"Log-likelihood accuracy ({baseline}): {benchmark}"


def _rows(summary: dict[str, Any], mode: str) -> list[dict[str, Any]]:
    return [r for r in summary["rows"] if r["mode"] == mode]


def _table(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    agreement = any("agreement_with_final" in r for r in rows)
    header = ["variant", "level", "name", "n", "skipped", "parse rate", "accuracy [95% CI]",
              "difference from baseline (points) [95% CI]", "McNemar p",
              *(["agrees with the stated answer (final)"] if agreement else [])]
    body = [[r["variant"], r["level"], r["name"], r["n"], r["skipped"], _pct(r["parse_rate"]),
             f"{_pct(r['accuracy'])} {_interval(*r['accuracy_ci'])}",
             "" if r["difference"] is None else f"{100 * r['difference']:+.1f} {_interval(*r['difference_ci'], signed=True)}",
             "" if r["mcnemar_p"] is None else f"{r['mcnemar_p']:.3g}",
             *([_pct(r.get("agreement_with_final"))] if agreement else [])]
            for r in sorted(rows, key=lambda r: (stats.GROUP_ORDER[r["level"]], r["name"]))]
    return header, body


def category_bars(rows: Sequence[dict[str, Any]], title: str) -> go.Figure:
    fig = go.Figure()
    by_variant: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["level"] in ("category", "overall"):
            by_variant[r["variant"]].append(r)
    for variant, chosen in by_variant.items():
        fig.add_trace(go.Bar(
            x=[r["name"] for r in chosen], y=[100 * r["accuracy"] for r in chosen], name=variant,
            customdata=[100 * r["parse_rate"] for r in chosen],
            hovertemplate="%{x}: %{y:.1f}% correct, %{customdata:.1f}% answered<extra>" + variant + "</extra>",
            error_y=dict(type="data", symmetric=False,
                         array=[100 * (r["accuracy_ci"][1] - r["accuracy"]) for r in chosen],
                         arrayminus=[100 * (r["accuracy"] - r["accuracy_ci"][0]) for r in chosen]),
        ))
    fig.update_layout(title=title, yaxis=dict(title="accuracy (%)", range=[0, 100]), xaxis=dict(title="category"),
                      barmode="group", height=420)
    return caption(fig, "Bars: the share of questions answered correctly (unanswered counts as wrong), one bar per "
                        "variant; whiskers: 95% bootstrap intervals; hover for the parse rate.")


def sweeps(summary: dict[str, Any], mode: str = "final") -> list[go.Figure]:
    """One figure per method kind run at several values of one parameter: overall accuracy (with
    intervals) against that parameter, the baseline as a line."""
    overall = {r["variant"]: r for r in _rows(summary, mode) if r["level"] == "overall"}
    by_kind: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for variant, record in summary["variants"].items():
        if record and record.get("kind"):
            by_kind[record["kind"]].append((variant, record["given"]))
    figures = []
    for kind, members in by_kind.items():
        varied = {k for _, given in members for k in given if len({str(g.get(k)) for _, g in members}) > 1}
        if len(members) < 2 or len(varied) != 1:
            continue
        key = varied.pop()
        points = sorted((given[key], overall[variant]) for variant, given in members if key in given)
        fig = go.Figure(go.Scatter(
            x=[p[0] for p in points], y=[100 * p[1]["accuracy"] for p in points], mode="lines+markers", name=kind,
            error_y=dict(type="data", symmetric=False, array=[100 * (p[1]["accuracy_ci"][1] - p[1]["accuracy"]) for p in points],
                         arrayminus=[100 * (p[1]["accuracy"] - p[1]["accuracy_ci"][0]) for p in points])))
        base = overall[summary["baseline"]]["accuracy"]
        fig.add_hline(y=100 * base, line_dash="dash", annotation_text=f"baseline {_pct(base)}")
        fig.update_layout(title=f"{kind}: overall accuracy ({reading(mode)}) against {key}",
                          xaxis=dict(title=key), yaxis=dict(title="accuracy (%)", range=[0, 100]), height=380)
        figures.append(caption(fig, f"Points: overall accuracy at each value of {key}, with 95% bootstrap intervals; "
                                    "dashed line: the baseline without the method."))
    return figures


GAP = 0.10  # a reading this far from final's gets a line saying where the two part


def gap_note(records: Sequence[Answer], mode: str) -> str:
    """A sentence on why ``mode`` reads far from ``final`` on these records ('' when it does not)."""
    if mode == "final" or mode in SCORED:  # scored by log-likelihood: no stated answer to part from
        return ""
    gap = stats.reading_gap(records, mode)
    if abs(gap["difference"]) < GAP:
        return ""
    return (f" Here it reads {100 * gap['difference']:+.0f} points from final extraction: on {_pct(gap['filled'])} of "
            f"the questions the response commits to no option (final: unanswered) while {reading(mode)} gives a "
            f"letter anyway ({_pct(gap['filled_right'])} of those right), and on {_pct(gap['differ'])} the two name "
            f"different letters" + (f" (in {_pct(gap['differ_written'])} of these the response writes out the text of "
                                    f"the option {reading(mode)} read, while the letter it commits to is another)"
                                    if gap["differ"] else "") + ". The review table below shows them.")


def letters_section(runs: dict[str, Sequence[Answer]], modes: Sequence[str], baseline: str) -> Section:
    """The letters each variant answers beside the right answers' letters, and the majority-letter
    baseline: a model that answers by position shows here before it shows anywhere else."""
    shown = [m for m in modes if m in ("forced", "final")] or list(modes[:1])
    gold = stats.letter_counts(runs[baseline], None)
    majority, share = stats.majority_baseline(runs[baseline])
    columns = list(gold) + [stats.NONE]
    fig = go.Figure()
    total = max(1, sum(gold.values()))
    fig.add_trace(go.Bar(x=columns, y=[100 * gold.get(c, 0) / total for c in columns], name="right answer",
                         marker_color="#444444"))
    rows = [["right answer", "", *(gold.get(c, 0) for c in columns), ""]]
    tops = []
    for variant, records in runs.items():
        for mode in shown:
            counts = stats.letter_counts(records, mode)
            n = max(1, sum(counts.values()))
            fig.add_trace(go.Bar(x=columns, y=[100 * counts.get(c, 0) / n for c in columns], name=f"{variant}, {mode}"))
            top = max((c for c in counts if c != stats.NONE), key=lambda c: counts[c], default=None)
            if top is not None:
                tops.append(f"{variant} ({reading(mode)}) answers {top} on {_pct(counts[top] / n)}")
            rows.append([variant, reading(mode), *(counts.get(c, 0) for c in columns),
                         _pct(sum(r.correct(mode) for r in records if not r.skipped) / n)])
    rows.append([f"always {majority} (majority-letter baseline)", "", *("" for _ in columns), _pct(share)])
    rows.append(["a uniform guess (chance)", "", *("" for _ in columns), _pct(stats.chance(runs[baseline]))])
    fig.update_layout(title="Which letter is answered: each variant's against the right answers'", barmode="group",
                      xaxis=dict(title="letter (none: no answer)"), yaxis=dict(title="share of questions (%)"),
                      height=400)
    caption(fig, "Compare each variant's bars with the dark bars of the right answers: a variant that piles onto "
                 "one letter answers by position, and its accuracy then tracks how often that letter is right.")
    text = (f"The right answer is {majority} on {_pct(share)} of the questions, so always answering {majority} would "
            f"score {_pct(share)} (a uniform guess: {_pct(stats.chance(runs[baseline]))}). " + "; ".join(tops) + ".")
    shifted = shifted_name(baseline)
    if shifted in runs and runs[shifted]:
        mode = shown[0]
        moved = stats.rotation_agreement(runs[baseline], runs[shifted], mode)
        text += (f" With each question's options rotated one place ({shifted}, the {moved['n']} questions whose options "
                 f"do not refer to each other), {reading(mode)} scores {_pct(moved['accuracy_after'])} against "
                 f"{_pct(moved['accuracy_before'])}; it names the same option as before on {_pct(moved['same_option'])} "
                 f"of them and the same letter on {_pct(moved['same_letter'])}: a model that reads the options keeps "
                 "its option (now under another letter); one that answers by position keeps the letter.")
    return Section("Which letters are answered", text, figures=[fig],
                   tables=[(["variant", "reading", *columns, "accuracy"], rows)])


def accuracy_page(title: str, summary: dict[str, Any], runs: dict[str, Sequence[Answer]],
                  name: str = "accuracy.html") -> Page:
    """``summary`` from :func:`interp.accuracy.harness.summarise`; ``runs`` maps each variant
    to its records (for the review table and accuracy by length)."""
    modes, baseline = summary["modes"], summary["baseline"]
    first = {r["variant"]: r for r in _rows(summary, modes[0]) if r["level"] == "overall"}
    parts = [f"{first[baseline]['n']} questions, {reading(modes[0])}: {baseline} {_pct(first[baseline]['accuracy'])} "
             f"(answered {_pct(first[baseline]['parse_rate'])})"]
    parts += [f"{v} {_pct(r['accuracy'])} (answered {_pct(r['parse_rate'])}; {100 * r['difference']:+.1f} points "
              f"{_interval(*r['difference_ci'], signed=True)}, McNemar p={r['mcnemar_p']:.3g})"
              for v, r in first.items() if r["difference"] is not None]
    sections = []
    for mode in modes:
        rows = _rows(summary, mode)
        sections.append(Section(
            f"Accuracy and parse rate, {reading(mode)}",
            MODE_TEXT[mode] + ". Accuracy counts an unanswered question as wrong; the parse rate is the share of "
            "responses that gave an answer in this mode. Differences are paired on the same questions, with a "
            "bootstrap interval and McNemar's exact test." + gap_note(runs[baseline], mode)
            + (UNFORCED if mode == modes[0] and mode in MODES else ""),
            figures=[category_bars(rows, f"Accuracy by category, {reading(mode)} (95% bootstrap intervals)")]
            if mode == modes[0] else [],
            tables=[_table(rows)],
        ))
    sections.insert(1, letters_section(runs, modes, baseline))
    swept = sweeps(summary, modes[0])
    if swept:
        sections.insert(2, Section("Sweeps", "Overall accuracy of one method at several values of one parameter; "
                                   "the dashed line is the baseline.", figures=swept))
    review = [(variant, r) for variant, records in runs.items() for r in stats.disagreements(records, modes)]
    scored = baseline != BASELINE
    sections.append(Section(
        f"Questions where length normalisation changes the answer ({len(review)})" if scored else
        f"Responses to check by hand ({len(review)})",
        ("Where acc and acc_norm pick different options: the answer then rests on how long the options are. Each "
         "option's log-likelihood is shown. " if scored else
         "The responses where the readings disagree, or the final mode found no answer: read these, not all of them. "
         "Those whose stated answer (final) differs from the model's forced answer come first. ")
        + f"All are in review.csv beside the results; the first {REVIEW_ROWS} are shown.",
        tables=[(["variant", "id", "answer", *modes, "question and options",
                  "log-likelihood of each option" if scored else "response"],
                 [[variant, r.id, r.item.answer, *(r.predictions.get(m) for m in modes),
                   r.item.question[:300] + "\n" + "\n".join(f"{chr(65 + i)}. {o}" for i, o in enumerate(r.item.options)),
                   shown_answer(r)[-600:]] for variant, r in review[:REVIEW_ROWS]])],
    ))
    if scored:  # nothing was generated: no computed tokens, no response lengths
        return Page(name, title, "; ".join(parts), sections)
    tokens = summary["computed_tokens"]
    fig = go.Figure()
    for run_name in runs:
        chosen = [r for r in tokens if r["run"] == run_name]
        fig.add_trace(go.Bar(x=[r["category"] for r in chosen], y=[r["mean_tokens"] for r in chosen], name=run_name))
    fig.update_layout(title="Computed tokens: mean generated tokens per question", barmode="group", height=380,
                      xaxis=dict(title="category"), yaxis=dict(title="generated tokens (mean per question)"))
    caption(fig, "Bars: how many tokens each variant generated per question on average, by category (the EOS "
                 "token included).")
    sections.append(Section("Computed tokens", figures=[fig], tables=[(
        ["run", "category", "n", "mean generated tokens"],
        [[r["run"], r["category"], r["n"], round(r["mean_tokens"], 1)] for r in tokens])]))
    sections.append(Section(f"Accuracy by response length ({reading(modes[0])})", tables=[(
        ["run", "generated tokens", "n", "accuracy"],
        [[run_name, b["bin"], b["n"], _pct(b["accuracy"])] for run_name, records in runs.items()
         for b in stats.accuracy_by_length(records, mode=modes[0])])]))
    return Page(name, title, "; ".join(parts), sections)
