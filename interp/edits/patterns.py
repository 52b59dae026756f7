"""Pure functions on attention patterns: no model, no hooks, testable on any tensor.

A pattern is the post-softmax attention of one layer, ``[batch, head, query, key]``. During
KV-cached decoding the queries are the last ``query`` positions of the ``key`` sequence, so a
query's own key position is ``key - query + i``. Positions are those of the padded batch;
``left_pad[b]``, the padding tokens before row ``b``'s first real token, translates a row's own
positions into them.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

Pattern = Float[Tensor, "batch head query key"]


def query_positions(n_query: int, n_key: int, device: torch.device | None = None) -> Int[Tensor, " query"]:
    """Absolute positions of the queries: the last ``n_query`` of ``n_key`` (KV cache aware)."""
    if n_query > n_key:
        raise ValueError(f"a pattern cannot have more queries ({n_query}) than keys ({n_key})")
    return torch.arange(n_key - n_query, n_key, device=device)


def own_position(n_query: int, n_key: int, device: torch.device | None = None) -> Bool[Tensor, "query key"]:
    """True where a key is the query's own position."""
    keys = torch.arange(n_key, device=device)
    return query_positions(n_query, n_key, device)[:, None] == keys[None, :]


def emulation_mask(pattern0: Pattern, threshold: float) -> Bool[Tensor, "batch head query key"]:
    """The paper's mask ``M = A_0 > threshold``, each query's own key position excluded."""
    n_query, n_key = pattern0.shape[-2:]
    return (pattern0 > threshold) & ~own_position(n_query, n_key, pattern0.device)


def depth_scale(layer: int, alpha: float, last_layer: int) -> float:
    """The paper's per-layer factor ``1 + alpha * (1 - layer / last_layer)``."""
    if last_layer <= 0:
        raise ValueError(f"last_layer must be positive, got {last_layer}")
    return 1.0 + alpha * (1.0 - layer / last_layer)


def renormalise(pattern: Pattern) -> Pattern:
    """Rescale every query row to sum to one; rows with no attention left stay zero."""
    total = pattern.sum(dim=-1, keepdim=True)
    return torch.where(total > 0, pattern / total.clamp_min(torch.finfo(pattern.dtype).tiny), pattern)


def scale_masked(pattern: Pattern, mask: Bool[Tensor, "batch head query key"], factor: float) -> Pattern:
    """Multiply the masked entries by ``factor``, leave the rest untouched (no renormalisation).
    The mask may come from another layer's device (layer 0's, on a model split over GPUs)."""
    return torch.where(mask.to(pattern.device), pattern * factor, pattern)


def positions_in_range(
    left_pad: Int[Tensor, " batch"], positions: Int[Tensor, " pos"], start: int, stop: int
) -> Bool[Tensor, "batch pos"]:
    """True where a padded-batch position falls in ``[start, stop)`` of its row's own tokens."""
    own = positions[None, :] - left_pad[:, None]
    return (own >= start) & (own < stop)


def positions_in_set(
    left_pad: Int[Tensor, " batch"], positions: Int[Tensor, " pos"], members: Int[Tensor, " member"]
) -> Bool[Tensor, "batch pos"]:
    """True where a padded-batch position is one of ``members`` (row-relative positions)."""
    own = positions[None, :] - left_pad[:, None]
    return (own[..., None] == members.to(own.device)[None, None, :]).any(dim=-1)


def remove_keys(
    pattern: Pattern,
    keys: Bool[Tensor, "batch key"],
    queries: Bool[Tensor, "batch query"],
    renormalise_rows: bool = False,
) -> Pattern:
    """Zero the attention that the selected queries pay to the selected keys."""
    cut = queries[:, None, :, None] & keys[:, None, None, :]
    edited = pattern.masked_fill(cut, 0.0)
    if not renormalise_rows:
        return edited
    # Only edited rows are renormalised; the others already sum to one.
    touched = cut.any(dim=-1, keepdim=True)
    return torch.where(touched, renormalise(edited), edited)
