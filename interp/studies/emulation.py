"""Depth-scaled top-layer emulation, inspected."""

from __future__ import annotations

from typing import Sequence, TYPE_CHECKING

import torch
from interp.analysis.attention import attention_patterns
from interp.analysis.effects import intervention_effects
from interp.edits.intervention import describe
from interp.edits.interventions import TopLayerEmulation
from interp.edits.patterns import emulation_mask
from interp.report import figures
from interp.report.page import Page, Section
from interp.studies.base import Context, Example, check_layer, continuation_note, effects_table

if TYPE_CHECKING:
    from interp.model.load import InterpModel


def emulation_study(model: InterpModel, example: Example, emulation: TopLayerEmulation | None = None,
                    layers: Sequence[int] | None = None, max_new_tokens: int = 32) -> Page:
    """The depth-scaled top-layer emulation, inspected: layer-0 mask, per-layer scale, before and after."""
    emulation = emulation or TopLayerEmulation()
    n = model.cfg.n_layers
    shown = [check_layer(model, layer) for layer in (layers or (1, n // 2, n - 1))]
    before = attention_patterns(model, example.ids)
    after = attention_patterns(model, example.ids, [emulation])
    mask = emulation_mask(before[0][None], emulation.threshold)[0].float().mean(0)
    scales = [1.0] + [emulation.scale(layer, n) for layer in range(1, n)]
    compare = torch.stack([m for layer in shown for m in (before[layer].mean(0), after[layer].mean(0))])
    names = [f"layer {layer} {when}" for layer in shown for when in ("before", "after")]
    effects = intervention_effects(model, example.ids, example.prompt_stop,
                                   {"original": [], "top-layer emulation": [emulation]}, max_new_tokens=max_new_tokens,
                                   generate_from=example.answer_start)
    sections = [
        Section("Layer-0 mask", f"Share of heads with A_0 > {emulation.threshold} (own position excluded); "
                f"{float((mask > 0).float().mean()):.1%} of causal entries are selected by at least one head.",
                figures=[figures.layer_heatmaps(mask[None], example.tokens, "Layer-0 mask (share of heads)",
                                                example.prompt_stop, layer_names=["mask"], zmax=1.0)]),
        Section("Per-layer scale", f"1 + alpha (1 - l / h), alpha={emulation.alpha}, "
                f"h={emulation.last_layer or n - 1}; layer 0 only defines the mask.",
                figures=[figures.per_layer_bars({"scale": scales}, "Scale applied to masked entries", "factor")]),
        Section("Attention before and after", "Row sums exceed one after the edit: no renormalisation, as in the paper.",
                figures=[figures.layer_heatmaps(compare, example.tokens, "Head-mean attention", example.prompt_stop,
                                                layer_names=names)]),
        Section("Effects on the dialogue", continuation_note(example), tables=[effects_table(effects)],
                preformatted=f"{describe(emulation)}"),
    ]
    return Page("emulation.html", "Depth-scaled top-layer emulation",
                f"alpha={emulation.alpha}, threshold={emulation.threshold}; KL {effects[1].kl:.3f}", sections)


def run(c: Context) -> Page:
    return emulation_study(c.model, c.example, TopLayerEmulation(c.config.alpha, c.config.threshold,
                                                                     c.config.last_layer),
                              max_new_tokens=c.config.max_new_tokens)
