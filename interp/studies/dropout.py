"""Attention of two models (without and with attention dropout) and their difference (Figure 5)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from interp.analysis.attention import attention_entropy, attention_patterns
from interp.report import figures
from interp.report.page import Page, Section
from interp.studies.base import Context, Example

if TYPE_CHECKING:
    from interp.model.load import InterpModel


def dropout_study(model: InterpModel, other: InterpModel, example: Example, names: tuple[str, str], *,
                  cells: int = figures.SLIDER_CELLS, side_by_side: bool = True) -> Page:
    """The paper's Figure 5: the same text's attention in two models, and their difference per layer
    (``side_by_side=False`` leaves out the two models' own maps, for a page that shows them already)."""
    other_ids = other.tokenizer(other.tokenizer.decode(example.ids[0], skip_special_tokens=True)).input_ids
    if other.cfg.n_layers != model.cfg.n_layers or other_ids != example.ids[0].tolist():
        raise ValueError("the two models must have the same depth and tokenizer to compare attention position by position")
    first = attention_patterns(model, example.ids).mean(1)
    second = attention_patterns(other, example.ids).mean(1)
    difference = second - first
    n = model.cfg.n_layers
    entropy = {names[0]: attention_entropy(first[:, None]).squeeze(-1).tolist(),
               names[1]: attention_entropy(second[:, None]).squeeze(-1).tolist()}
    prompt_share = {names[0]: first[:, example.prompt_stop:, :example.prompt_stop].sum(-1).mean(-1).tolist(),
                    names[1]: second[:, example.prompt_stop:, :example.prompt_stop].sum(-1).mean(-1).tolist()}
    sections = [
        *([Section(f"{names[0]} vs {names[1]}: head-mean attention per layer", figures=[
            figures.layer_heatmaps(torch.cat([first, second]), example.tokens, "Head-mean attention", example.prompt_stop,
                                   layer_names=[f"{names[0]} layer {i}" for i in range(n)] +
                                   [f"{names[1]} layer {i}" for i in range(n)], cells=cells),
        ])] if side_by_side else []),
        Section(f"Difference ({names[1]} minus {names[0]})", figures=[figures.difference_heatmaps(
            difference, example.tokens, "Attention difference", example.prompt_stop, cells=cells)]),
        Section("Per-layer summary", figures=[
            figures.per_layer_bars(entropy, "Attention entropy per layer (head-mean pattern)", "nats"),
            figures.per_layer_bars(prompt_share, "Share of the dialogue's attention on the prompt range", "share"),
            figures.per_layer_bars({"mean |difference|": difference.abs().mean(dim=(-1, -2)).tolist()},
                                   "Mean absolute difference per layer", "attention")]),
    ]
    per_layer = difference.abs().mean(dim=(-1, -2))
    top = int(per_layer.argmax())
    return Page("dropout.html", "Attention-dropout comparison",
                f"largest mean |difference| {float(per_layer[top]):.4f} in layer {top}; share of the dialogue's attention "
                f"on the prompt, mean over layers: {names[0]} {sum(prompt_share[names[0]]) / n:.2f}, "
                f"{names[1]} {sum(prompt_share[names[1]]) / n:.2f}", sections)


def run(c: Context) -> Page:
    from interp.shipped import LABELS, TUNED, TUNED_DROPOUT, adapter

    path = c.config.compare_model or str(adapter(TUNED_DROPOUT))
    names = ("this model" if c.config.model else LABELS[TUNED],
             "compared" if c.config.compare_model else LABELS[TUNED_DROPOUT])
    return dropout_study(c.model, c.load(path, "--compare-model"), c.example, names)
