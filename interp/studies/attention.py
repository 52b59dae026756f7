"""Per-layer attention matrices (Figure 2)."""

from __future__ import annotations

from typing import Sequence, TYPE_CHECKING

from interp.analysis.attention import attention_patterns
from interp.analysis.anchors import detect_anchors
from interp.report import figures
from interp.report.page import Page, Section
from interp.studies.base import Context, Example, check_layer, middle_layer

if TYPE_CHECKING:
    from interp.model.load import InterpModel


def attention_study(model: InterpModel, example: Example, zoom_layers: Sequence[int] | None = None) -> Page:
    """The paper's Figure 2: every layer's attention matrix, head-mean and per head."""
    patterns = attention_patterns(model, example.ids)
    zoom = [check_layer(model, layer) for layer in dict.fromkeys(zoom_layers or (0, middle_layer(model)))]  # each once
    anchors = detect_anchors(model, example.ids, prompt_range=(0, example.prompt_stop)).positions()
    sections = [Section(
        "Head-mean attention, every layer",
        f"{len(example.tokens)} tokens; the prompt is tokens 0 to {example.prompt_stop - 1} "
        "(red dotted line: prompt/dialogue boundary; red marks above: the anchor tokens). Each row is a query "
        "token, each column a key it attends to; colours follow attention ** 0.3 so ordinary attention shows "
        "beside the outliers (buttons switch the scale; hover for exact values). Move the slider to change layer.",
        figures=[figures.layer_heatmaps(patterns.mean(1), example.tokens, "Head-mean attention", example.prompt_stop,
                                        anchors=anchors)],
    )]
    for layer in zoom:
        sections.append(Section(f"Layer {layer}, per head", figures=[figures.head_grid(
            patterns[layer], example.tokens, f"Layer {layer}: every head", example.prompt_stop)]))
    on_first = patterns[:, :, example.prompt_stop:, 0].mean(dim=(1, 2))  # the dialogue's attention on token 0
    busiest = int(on_first.argmax())
    return Page("attention.html", "Per-layer attention matrices",
                f"{model.cfg.n_layers} layers x {model.cfg.n_heads} heads; the dialogue's attention on the first token "
                f"{float(on_first.min()):.2f} to {float(on_first.max()):.2f} of each row (most in layer {busiest}); "
                f"anchors {list(anchors)}", sections)


def run(c: Context) -> Page:
    return attention_study(c.model, c.example, c.config.zoom_layers)
