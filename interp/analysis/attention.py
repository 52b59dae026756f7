"""Per-layer attention of one sequence, read from the hooked model's cache."""

from __future__ import annotations

from typing import Sequence, TYPE_CHECKING

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.edits.intervention import Intervention
from interp.edits.plan import intervene
from interp.edits.sites import pattern_hook_name

if TYPE_CHECKING:
    from interp.model.load import InterpModel


@torch.no_grad()
def attention_patterns(
    model: InterpModel, ids: Int[Tensor, "1 pos"], interventions: Sequence[Intervention] = ()
) -> Float[Tensor, "layer head query key"]:
    """Every layer's post-softmax attention (after any interventions) for one sequence."""
    if ids.ndim != 2 or ids.shape[0] != 1 or ids.shape[1] == 0:
        raise ValueError(f"give one non-empty sequence of token ids [1, pos], got shape {tuple(ids.shape)}")
    names = [pattern_hook_name(layer) for layer in range(model.cfg.n_layers)]
    with intervene(model, *interventions):
        _, cache = model.run_with_cache(ids, names_filter=lambda name: name in names)
    return torch.stack([cache[name][0].float().cpu() for name in names])


def attention_entropy(patterns: Float[Tensor, "layer head query key"]) -> Float[Tensor, "layer head"]:
    """Mean over queries of each head's attention entropy, in nats."""
    logs = torch.where(patterns > 0, patterns.clamp_min(1e-30).log(), torch.zeros_like(patterns))
    return -(patterns * logs).sum(-1).mean(-1)
