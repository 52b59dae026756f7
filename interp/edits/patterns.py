"""Pure functions on attention patterns: no model, no hooks, testable on any tensor.

A pattern is the post-softmax attention of one layer, ``[batch, head, query, key]``. During
KV-cached decoding the queries are the last ``query`` positions of the ``key`` sequence, so a
query's own key position is ``key - query + i``. Positions are those of the padded batch;
``left_pad[b]``, the padding tokens before row ``b``'s first real token, translates a row's own
positions into them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

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


def scaled_masked_output(
    out: Float[Tensor, "batch head query d_head"], lse: Float[Tensor, "batch head query"],
    out_masked: Float[Tensor, "batch head query d_head"], lse_masked: Float[Tensor, "batch head query"],
    factor: float,
) -> Float[Tensor, "batch head query d_head"]:
    """What ``scale_masked(A, M, factor) @ V`` gives, from two attention passes that never form ``A``:
    ``out, lse`` of attention over every key, ``out_masked, lse_masked`` of attention over the keys
    in ``M`` alone. ``(A * M) V = exp(lse_masked - lse) out_masked``, so the result is
    ``out + (factor - 1) exp(lse_masked - lse) out_masked``. A row with no key in ``M`` has
    ``lse_masked = -inf``: its share is 0 and its output ``out`` (any NaN of the empty pass dropped)."""
    work = torch.promote_types(out.dtype, torch.float32)  # float16 outputs are combined in float32
    share = torch.exp(lse_masked.to(work) - lse.to(work)).nan_to_num(0.0)
    masked = torch.where(share[..., None] > 0, out_masked.to(work), 0.0)
    return (out.to(work) + (factor - 1.0) * share[..., None] * masked).to(out.dtype)


@dataclass(frozen=True)
class MaskedScale:
    """The edit ``scale_masked(pattern, mask(), factor)`` as a value, so that a path that computes
    attention without forming the pattern (the fast path's fused emulation) can recognise it and
    compute the same output by :func:`scaled_masked_output`. ``mask`` is called when the edit runs
    (the emulation's layer-0 mask exists only once layer 0 has run in this forward)."""

    mask: Callable[[], Bool[Tensor, "batch head query key"]]
    factor: float

    def __call__(self, pattern: Pattern, hook: Any = None) -> Pattern:
        return scale_masked(pattern, self.mask(), self.factor)


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


def with_temperature(pattern: Pattern, temperature: float) -> Pattern:
    """Each row raised to ``1 / temperature`` and renormalised: the softmax of the scores divided by
    ``temperature`` (below 1 sharper, above 1 flatter); zero entries (masked keys) stay zero."""
    return renormalise(pattern.clamp_min(0) ** (1.0 / temperature))


def scale_columns(pattern: Pattern, keys: Bool[Tensor, "batch key"], factor: float,
                  heads: Bool[Tensor, " head"] | None = None) -> Pattern:
    """The selected keys' entries multiplied by ``factor`` in the selected heads (all: ``None``),
    those rows renormalised (ZeroTuning's edit of the first token's column)."""
    chosen = keys[:, None, None, :]
    if heads is not None:
        chosen = chosen & heads.to(pattern.device)[None, :, None, None]
    return renormalise(torch.where(chosen, pattern * factor, pattern))


def window_keys(left_pad: Int[Tensor, " batch"], n_query: int, n_key: int, sinks: int,
                window: int) -> Bool[Tensor, "batch query key"]:
    """True for the keys a StreamingLLM cache keeps for each query: its row's first ``sinks``
    tokens and its ``window`` most recent (its own included)."""
    device = left_pad.device
    keys = torch.arange(n_key, device=device)[None, None, :] - left_pad[:, None, None]
    queries = query_positions(n_query, n_key, device)[None, :, None] - left_pad[:, None, None]
    return (keys < sinks) | (keys > queries - window)


def calibrate_sinks(pattern: Pattern, left_pad: Int[Tensor, " batch"], heads: Bool[Tensor, " head"],
                    beta: float, threshold: float) -> Pattern:
    """ACT's calibration (Yu et al., 2024) in the selected heads. A key's score is its attention
    summed over the row's real queries that see it, divided by their number; the sinks are the keys
    scoring above ``threshold``, less the first of them. Their entries are multiplied by ``beta``
    and the mass removed from each query's row goes to its other keys in proportion to their
    weights. Over a whole prompt this is the released code's column statistic; at a KV-cached
    decoding step (one query) it is its per-step test, each entry against the threshold."""
    n_query, n_key = pattern.shape[-2:]
    device = pattern.device
    query_own = query_positions(n_query, n_key, device)[None, :] - left_pad[:, None]  # [batch, query]
    key_own = torch.arange(n_key, device=device)[None, :] - left_pad[:, None]  # [batch, key]
    real = query_own >= 0
    sees = real[:, :, None] & (key_own[:, None, :] >= 0) & (key_own[:, None, :] <= query_own[:, :, None])
    counts = sees.sum(dim=1)  # [batch, key]
    score = (pattern * real[:, None, :, None]).sum(dim=2) / counts[:, None, :].clamp_min(1)
    sinks = (score > threshold) & (counts[:, None, :] > 0)  # [batch, head, key]
    first = sinks.to(torch.uint8).argmax(dim=-1, keepdim=True)  # the lowest sink (0 where none: no sink there)
    sinks = sinks & (torch.arange(n_key, device=device) != first) & heads.to(device)[None, :, None]
    chosen = sinks[:, :, None, :]
    moved = (1.0 - beta) * (pattern * chosen).sum(dim=-1, keepdim=True)
    rest = (pattern * ~chosen).sum(dim=-1, keepdim=True)
    edited = torch.where(chosen, pattern * beta, pattern + moved * pattern / rest.clamp_min(torch.finfo(pattern.dtype).tiny))
    return torch.where(rest > 0, edited, pattern)  # a row with no other key keeps its sinks as they were


def steer(pattern: Pattern, inside: Bool[Tensor, "batch key"], inputs: Bool[Tensor, "batch key"],
          heads: Bool[Tensor, " head"], alpha: float, mode: str) -> Pattern:
    """PASTA's steering (Zhang et al., 2024) in the selected heads, as its released code adds
    ``log(alpha)`` to the scores: ``exclude`` scales the input keys outside the emphasised span by
    ``alpha``; ``include`` scales those inside it by ``alpha`` and then every input key by
    ``1/alpha`` (what its multi-section hook does). Keys after the input (generated) are not
    scaled; every edited row renormalised (a softmax of the shifted scores)."""
    if mode == "exclude":
        factor = torch.where(inputs & ~inside, alpha, 1.0)
    else:
        factor = torch.where(inputs & inside, alpha, 1.0) * torch.where(inputs, 1.0 / alpha, 1.0)
    factor = factor.to(pattern.dtype)[:, None, None, :]
    chosen = heads.to(pattern.device)[None, :, None, None]
    return torch.where(chosen, renormalise(pattern * factor), pattern)
