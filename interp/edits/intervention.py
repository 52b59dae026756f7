"""What an intervention is: a small value that becomes edits of a forward pass.

Two kinds, told apart by type:

- :class:`PatternIntervention` edits attention patterns only (``blocks.{l}.attn.hook_pattern``).
  A subclass writes ``edits(n_layers, left_pad)``: per layer, the functions ``fn(pattern, hook=...)
  -> pattern`` to apply, in order. Both paths apply them (the bridge's hook points; the fast
  decoding path, inside the plain model's attention), :class:`~interp.edits.interventions.PerRow`
  batches them, and the edit functions themselves live in :mod:`interp.edits.patterns`.
- Any other :class:`Intervention` (head ablation at ``hook_z``) writes ``hooks(n_layers, left_pad)``
  and runs on the bridge only.

Positions in an intervention are row-relative (counted from each row's first real token); a
left-padded batch passes ``left_pad``, each row's padding count, and :func:`row_left_pad` and
:func:`queries_from` translate (what a new intervention needs to be right under batching and the
KV cache).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any, Callable, Sequence

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from interp.edits.patterns import Pattern, query_positions
from interp.edits.sites import pattern_hook_name

HookFn = Callable[..., Tensor]  # fn(tensor, hook=...) -> tensor
Hook = tuple[str, HookFn]
LayerEdits = dict[int, list[HookFn]]  # layer -> the functions applied to its attention pattern, in order


class Intervention(ABC):
    """An edit of the forward pass, as TransformerLens hooks on the bridge."""

    @abstractmethod
    def hooks(self, n_layers: int, left_pad: Int[Tensor, " batch"] | None = None) -> list[Hook]:
        """``(hook_name, fn)`` pairs for a model of ``n_layers`` layers and rows padded by ``left_pad``;
        raises ``ValueError`` naming the parameter when one does not fit the model."""


class PatternIntervention(Intervention):
    """An intervention that edits attention patterns only: write :meth:`edits`."""

    @abstractmethod
    def edits(self, n_layers: int, left_pad: Int[Tensor, " batch"] | None = None) -> LayerEdits:
        """Per layer, the pattern edits for rows padded by ``left_pad``; raises as :meth:`hooks` does."""

    def hooks(self, n_layers: int, left_pad: Int[Tensor, " batch"] | None = None) -> list[Hook]:
        return as_hooks(self.edits(n_layers, left_pad))


def as_hooks(edits: LayerEdits) -> list[Hook]:
    """Pattern edits as the bridge's hooks, on ``blocks.{l}.attn.hook_pattern``."""
    return [(pattern_hook_name(layer), fn) for layer, fns in edits.items() for fn in fns]


def describe(intervention: Any) -> dict[str, Any]:
    """A JSON-ready record of an intervention: its class and its parameters."""
    return {"intervention": type(intervention).__name__, **dataclasses.asdict(intervention)}


def check_layers(layers: Sequence[int], n_layers: int, what: str, fix: str = "pass layers= within that range") -> None:
    """Raise unless every layer index exists in a model of ``n_layers`` layers."""
    bad = [layer for layer in layers if not 0 <= layer < n_layers]
    if bad:
        raise ValueError(
            f"{what}: layers {bad} do not exist in a model with {n_layers} layers (valid: 0 to {n_layers - 1}); {fix}"
        )


def row_left_pad(left_pad: Int[Tensor, " batch"] | None, pattern: Pattern) -> Int[Tensor, " batch"]:
    """Each row's padding count on the pattern's device (zeros for ``None``: an unpadded batch)."""
    if left_pad is None:
        return torch.zeros(pattern.shape[0], dtype=torch.long, device=pattern.device)
    if left_pad.shape[0] != pattern.shape[0]:
        raise ValueError(
            f"left_pad has {left_pad.shape[0]} rows but the batch has {pattern.shape[0]}; "
            "pass one left-padding count per row"
        )
    return left_pad.to(pattern.device)


def queries_from(left_pad: Int[Tensor, " batch"], pattern: Pattern, start: int) -> Bool[Tensor, "batch query"]:
    """True for the pattern's queries at row-relative position ``start`` or later: right in a
    left-padded batch and at a KV-cached decoding step, where the queries are the last of the keys."""
    n_query, n_key = pattern.shape[-2:]
    return (query_positions(n_query, n_key, pattern.device)[None, :] - left_pad[:, None]) >= start
