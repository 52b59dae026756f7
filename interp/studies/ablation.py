"""Anchor-token ablation and keep-only counter-experiment (Figure 3)."""

from __future__ import annotations

from typing import Sequence, TYPE_CHECKING

from interp.analysis.anchors import detect_anchors
from interp.edits.interventions import AnchorAblation
from interp.report.page import Page
from interp.studies.base import Example, Study, check_layer, effect_page, middle_layer

if TYPE_CHECKING:
    from interp.model.load import InterpModel


def ablation_study(model: InterpModel, example: Example, anchors: Sequence[int], layer: int | None = None,
                   max_new_tokens: int = 32) -> Page:
    """The paper's Figure 3: anchors removed from the prompt range, and only anchors kept."""
    prompt = (0, example.prompt_stop)
    variants = {
        "original": [],
        "anchors removed": [AnchorAblation(prompt, tuple(anchors))],
        "only anchors kept": [AnchorAblation(prompt, tuple(anchors), keep_only=True)],
    }
    return effect_page(model, example, variants, "ablation.html", "Anchor-token ablation and its counter-experiment",
                        f"Anchors {list(anchors)} within the prompt range, in every layer, for queries after the prompt.",
                        check_layer(model, middle_layer(model) if layer is None else layer), max_new_tokens)


STUDY = Study(
    "ablation", "anchor-token ablation and keep-only counter-experiment (Figure 3)",
    lambda c: ablation_study(c.model, c.example, detect_anchors(c.model, c.example.ids, prompt_range=(0, c.example.prompt_stop), ratio=c.config.ratio).positions(), max_new_tokens=c.config.max_new_tokens),
    options=("ratio",),
)
