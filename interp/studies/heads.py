"""Head probing: sink, previous-token, induction, entropy, ablation effects."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, TYPE_CHECKING

import torch
from interp.analysis.attention import attention_patterns
from interp.analysis.anchors import Anchors
from interp.report import figures
from interp.report.page import Page, Section
from interp import validation
from interp.studies.base import Context, Example

if TYPE_CHECKING:
    from interp.model.load import InterpModel


def heads_study(model: InterpModel, example: Example, anchors: Anchors, mode: str = "zero",
                show: Sequence[tuple[int, int]] = (), confirm: int = 10) -> Page:
    """Head probing: per-head scores, ablation effects (estimated for every head, measured for the
    top ``confirm``), a ranked table and layer-by-head heatmaps."""
    from interp.analysis.heads import head_scores

    for layer, head in show:  # before the scores, which take the longest
        validation.check_head("--show", layer, head, model.cfg.n_layers, model.cfg.n_heads)
    sinks = anchors.positions() or (anchors.sink,)  # the sink with the anchors: where heads park attention
    scores = head_scores(model, example.ids, example.prompt_stop, sinks=sinks, mode=mode, confirm=confirm)
    ranked = scores.ranked()
    confirmed = len(scores.confirmed)
    agreement = scores.agreement()
    maps = [
        figures.layer_head_heatmap(scores.estimate, f"Dialogue loss change when the head is {mode}-ablated "
                                                    "(attribution-patching estimate)", "nats"),
        figures.layer_head_heatmap(scores.sink, f"Sink/anchor score: attention to the first token and anchors {list(sinks)}", "share"),
        figures.layer_head_heatmap(scores.previous_token, "Previous-token score (TransformerLens detector)", "score"),
        figures.layer_head_heatmap(scores.induction, "Induction score on a repeated random sequence", "score"),
        figures.layer_head_heatmap(scores.entropy, "Attention entropy", "nats"),
    ]
    n_heads = model.cfg.n_layers * model.cfg.n_heads
    sections = [
        Section("Heads ranked by ablation effect",
                f"Each head's output (hook_z) {mode}-ablated alone; the change in mean cross-entropy on the "
                f"{example.ids.shape[1] - example.prompt_stop} dialogue tokens. Estimated for all {n_heads} heads by "
                "attribution patching (one forward and one backward pass: the first-order change, "
                f"(z_ablated - z) . dloss/dz); the {confirmed} heads estimated to matter most are then ablated one by "
                f"one (exact). Rank correlation (Spearman) of estimate and exact over those heads: {agreement:.2f}. "
                "The confirmed heads come first, by exact effect; the rest by estimate.",
                tables=[(["head", "exact loss change", "estimate", "sink/anchor", "previous-token", "induction",
                          "entropy"],
                         [[r["head"], "-" if r["exact"] is None else r["exact"], r["estimate"], r["sink"],
                           r["previous_token"], r["induction"], r["entropy"]] for r in ranked[:40]])]),
        Section("Layer-by-head maps", figures=maps),
    ]
    if show:
        patterns = attention_patterns(model, example.ids)
        sections.append(Section("Chosen heads", figures=[figures.layer_heatmaps(
            torch.stack([patterns[layer, head] for layer, head in show]), example.tokens, "Head pattern",
            example.prompt_stop, layer_names=[f"head {layer}.{head}" for layer, head in show])]))
    top = ranked[0]
    return Page("heads.html", "Head probing", f"most important head {top['head']} (+{top['exact']:.3f} nats measured, "
                f"{top['estimate']:+.3f} estimated); estimate vs exact rank correlation {agreement:.2f} over the "
                f"top {confirmed}", sections)


def selection_section(model: InterpModel, spec: str, benchmark: str, data: str | None, n: int, k: int,
                      out: Path) -> Section:
    """Heads selected for ACT or PASTA on ``n`` held-out questions of ``benchmark``, written to
    ``out/heads-KIND.json``: every head's estimate as a map, the confirmed ones in a table."""
    from interp.accuracy.loglik import references, selection_items
    from interp.analysis.selection import parse_selection, select_heads

    kind, parameters = parse_selection(spec)
    refs = references(model, selection_items(benchmark, data, n))
    selection = select_heads(model, kind, refs, k, parameters=parameters)
    path = selection.save(out / f"heads-{kind}.json")
    chosen = ", ".join(f"{l}.{h}" for l, h in selection.chosen) or "none"
    seconds = selection.seconds
    return Section(
        f"Heads selected for {kind.upper()}",
        f"{kind} ({', '.join(f'{k}={v}' for k, v in parameters.items()) or 'its defaults'}) applied to each head alone, "
        f"on the reference answers of {len(refs)} held-out {benchmark} questions (mean negative log-likelihood "
        f"{selection.base_loss:.3f} nats unedited). Every head's change estimated by attribution patching ((edited "
        f"pattern - pattern) . d loss / d pattern: one forward and one backward pass per batch, "
        f"{seconds['estimate']:.1f} s), the {k} estimated to lower the loss most measured exactly "
        f"({seconds['confirm']:.1f} s); rank correlation over them {selection.agreement():.2f}. Chosen (confirmed to "
        f"lower the loss): {chosen}, written to {path.name} (--method {kind}:heads={path}).",
        figures=[figures.layer_head_heatmap(selection.estimate, f"Answer loss change with {kind} on the head alone "
                                                                 "(attribution-patching estimate)", "nats")],
        tables=[(["head", "exact loss change", "estimate", "chosen"],
                 [[f"{l}.{h}", float(selection.exact[l, h]), float(selection.estimate[l, h]),
                   "yes" if (l, h) in selection.chosen else "no"]
                  for l, h in sorted(selection.confirmed, key=lambda head: float(selection.exact[head]))])])


def run(c: Context) -> Page:
    page = heads_study(c.model, c.example, c.anchors, c.config.ablation, c.config.show, c.config.confirm)
    if c.config.for_method:
        page.sections.append(selection_section(c.model, c.config.for_method, c.config.select_from,
                                               c.config.select_data, c.config.select_examples, c.config.select,
                                               Path(c.config.out)))
    return page
