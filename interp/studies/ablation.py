"""Anchor-token ablation and keep-only counter-experiment (Figure 3)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from interp.analysis.anchors import Anchors
from interp.edits.interventions import AnchorAblation
from interp.report.page import Page
from interp.studies.base import Context, Example, check_layer, effect_page, middle_layer

if TYPE_CHECKING:
    from interp.model.load import InterpModel


def ablation_study(model: InterpModel, example: Example, anchors: Anchors, layer: int | None = None,
                   max_new_tokens: int = 32) -> Page:
    """The paper's Figure 3: anchors removed from the prompt range, and only anchors kept; each with
    the first token (the attention sink) counted among the anchors and without it."""
    prompt = (0, example.prompt_stop)
    text = anchors.positions(sink=False)
    with_sink = tuple(sorted({*text, anchors.sink}))
    variants = {
        "original": [],
        "anchors removed, sink kept": [AnchorAblation(prompt, text)],
        "anchors and sink removed": [AnchorAblation(prompt, with_sink)],
        "only anchors and sink kept": [AnchorAblation(prompt, with_sink, keep_only=True)],
        "only anchors kept, sink removed": [AnchorAblation(prompt, text, keep_only=True)],
    }
    return effect_page(model, example, variants, "ablation.html", "Anchor-token ablation and its counter-experiment",
                        f"Anchors {list(text)} ({' '.join(repr(t) for t in anchors.strings(text))}) within the prompt "
                        f"range, and the first token {anchors.tokens[anchors.sink]!r} (the sink) with or without them, "
                        "in every layer, for queries after the prompt.",
                        check_layer(model, middle_layer(model) if layer is None else layer), max_new_tokens)


def run(c: Context) -> Page:
    return ablation_study(c.model, c.example, c.anchors, max_new_tokens=c.config.max_new_tokens)
