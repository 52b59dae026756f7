"""Head probing: sink, previous-token, induction, entropy, ablation effects."""

from __future__ import annotations

from typing import Sequence, TYPE_CHECKING

import torch
from interp.analysis.attention import attention_patterns
from interp.analysis.anchors import detect_anchors
from interp.report import figures
from interp.report.page import Page, Section
from interp import validation
from interp.studies.base import Example, Study

if TYPE_CHECKING:
    from interp.model.load import InterpModel


def heads_study(model: InterpModel, example: Example, mode: str = "zero", show: Sequence[tuple[int, int]] = (),
                ratio: float = 3.0) -> Page:
    """Head probing: per-head scores, ablation effects, a ranked table and layer-by-head heatmaps."""
    from interp.analysis.heads import head_scores

    for layer, head in show:  # before the scores, which take the longest
        validation.check_head("--show", layer, head, model.cfg.n_layers, model.cfg.n_heads)
    anchors = detect_anchors(model, example.ids, prompt_range=(0, example.prompt_stop), ratio=ratio).positions() or (0,)
    scores = head_scores(model, example.ids, example.prompt_stop, sinks=anchors, mode=mode)
    ranked = scores.ranked()
    maps = [
        figures.layer_head_heatmap(scores.ablation, f"Dialogue loss change when the head is {mode}-ablated", "nats"),
        figures.layer_head_heatmap(scores.sink, f"Sink/anchor score: attention to anchors {list(anchors)}", "share"),
        figures.layer_head_heatmap(scores.previous_token, "Previous-token score (TransformerLens detector)", "score"),
        figures.layer_head_heatmap(scores.induction, "Induction score on a repeated random sequence", "score"),
        figures.layer_head_heatmap(scores.entropy, "Attention entropy", "nats"),
    ]
    sections = [
        Section("Heads ranked by ablation effect", f"Each head's output (hook_z) {mode}-ablated alone; the change "
                f"in mean cross-entropy on the {example.ids.shape[1] - example.prompt_stop} dialogue tokens.",
                tables=[(["head", "loss change", "sink/anchor", "previous-token", "induction", "entropy"],
                         [[r["head"], r["ablation_loss_change"], r["sink"], r["previous_token"], r["induction"],
                           r["entropy"]] for r in ranked[:40]])]),
        Section("Layer-by-head maps", figures=maps),
    ]
    if show:
        patterns = attention_patterns(model, example.ids)
        sections.append(Section("Chosen heads", figures=[figures.layer_heatmaps(
            torch.stack([patterns[layer, head] for layer, head in show]), example.tokens, "Head pattern",
            example.prompt_stop, layer_names=[f"head {layer}.{head}" for layer, head in show])]))
    top = ranked[0]
    return Page("heads.html", "Head probing", f"most important head {top['head']} (+{top['ablation_loss_change']:.3f} nats)", sections)


STUDY = Study(
    "heads", "head probing: sink, previous-token, induction, entropy, ablation effects",
    lambda c: heads_study(c.model, c.example, c.config.ablation, c.config.show, c.config.ratio),
    options=("ratio", "ablation", "show"),
)
