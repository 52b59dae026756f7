"""Anchor tokens: key positions that receive outlier-high attention, found per layer.

Received attention is measured from a fixed set of queries that can all see every candidate
key (the queries after the prompt range, or the second half of the sequence), so early and late
keys are compared fairly under the causal mask. A key is an anchor when it receives at least
``ratio`` times the mean received by the candidate keys: most of the later text's attention stays
local, so the yardstick is the prompt's own average, not a uniform share of the whole row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Sequence, TYPE_CHECKING

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.analysis.attention import attention_patterns

if TYPE_CHECKING:
    from interp.model.load import InterpModel


def received_attention(
    pattern: Float[Tensor, "batch head query key"], query_start: int, key_stop: int
) -> Float[Tensor, " key"]:
    """Mean attention (over batch, heads and queries at positions >= ``query_start``) that
    each key before ``key_stop`` receives."""
    n_query, n_key = pattern.shape[-2:]
    first = query_start - (n_key - n_query)
    if not 0 <= first < n_query or not 0 < key_stop <= query_start:
        raise ValueError(
            f"need keys [0, {key_stop}) before queries from {query_start} within a sequence of "
            f"{n_key} tokens; give a prompt range that ends before the last token"
        )
    return pattern[:, :, first:, :key_stop].float().mean(dim=(0, 1, 2))


@dataclass(frozen=True)
class Anchors:
    """Per-layer anchor positions, their token strings and the attention they receive."""

    tokens: tuple[str, ...]
    received: Float[Tensor, "layer key"]
    ratio: float
    key_range: tuple[int, int]

    def __repr__(self) -> str:  # the tokens and the tensor would fill a notebook cell
        found = self.positions(sink=False)
        shown = ", ".join(f"{p} {self.tokens[p]!r}" for p in found[:8]) + (", ..." if len(found) > 8 else "")
        return (f"Anchors({len(found)} in keys {self.key_range[0]}-{self.key_range[1]} over {self.received.shape[0]} "
                f"layers, sink apart, ratio {self.ratio:g}: {shown})")

    def layer(self, layer: int) -> list[int]:
        start, stop = self.key_range
        candidates = self.received[layer, start:stop]
        outlier = candidates >= self.ratio * candidates.mean()
        return [start + int(i) for i in torch.nonzero(outlier).flatten()]

    def positions(self, layers: Sequence[int] | None = None, *, sink: bool = True) -> tuple[int, ...]:
        """The union of anchor positions over ``layers`` (all layers by default); ``sink=False``
        leaves out the sequence's first token (:attr:`sink`)."""
        layers = range(self.received.shape[0]) if layers is None else layers
        found = {p for layer in layers for p in self.layer(layer)}
        return tuple(sorted(found if sink else found - {self.sink}))

    @property
    def sink(self) -> int:
        """The first token: in most trained models an attention sink, which rows park attention on
        whatever it is (Xiao et al. 2023), so it is reported apart from the anchors that the text's
        own tokens become."""
        return 0

    def sink_share(self) -> Float[Tensor, " layer"]:
        """Per layer, the share of the measured queries' attention on the first token (zero when the
        key range starts after it)."""
        if self.key_range[0] > self.sink:
            return torch.zeros(self.received.shape[0])
        return self.received[:, self.sink]

    def strings(self, positions: Sequence[int]) -> list[str]:
        return [self.tokens[p] for p in positions]

    def share(self, positions: Sequence[int] | None = None) -> Float[Tensor, " layer"]:
        """Per layer, the share of the measured queries' attention that lands on ``positions``."""
        chosen = list(self.positions() if positions is None else positions)
        return self.received[:, chosen].sum(dim=-1)


@torch.no_grad()
def detect_anchors(
    model: InterpModel,
    tokens: str | Int[Tensor, "1 pos"],
    *,
    prompt_range: tuple[int, int] | None = None,
    ratio: float = 3.0,
) -> Anchors:
    """Find the anchor tokens of one sequence, per layer.

    With ``prompt_range=(start, stop)`` the keys are the prompt's and the queries all later
    tokens; without it, keys are the first half of the sequence and queries the second half.
    """
    ids = model.to_tokens(tokens) if isinstance(tokens, str) else tokens
    if ids.ndim != 2 or ids.shape[0] != 1:
        raise ValueError(f"detect_anchors takes one sequence, got shape {tuple(ids.shape)}")
    n = ids.shape[1]
    if prompt_range is None:
        start, stop = 0, n // 2
    else:
        start, stop = prompt_range
    if not 0 <= start < stop < n:
        raise ValueError(
            f"prompt_range={(start, stop)} does not fit a sequence of {n} tokens; it must satisfy "
            f"0 <= start < stop < {n} so that some tokens follow it"
        )
    patterns = attention_patterns(model, ids)
    received = torch.stack([received_attention(layer[None], stop, stop) for layer in patterns])
    return Anchors(tuple(model.to_str_tokens(ids[0])), received, ratio, (start, stop))


def non_semantic(tokens: Sequence[str], special: Collection[str]) -> list[bool]:
    """Which tokens carry no meaning of their own: the tokenizer's special tokens (``special``:
    ``tokenizer.all_special_tokens``, e.g. ``<s>``, ``<|im_start|>``), whitespace and newlines,
    punctuation (':', '.', ','), the kinds the paper finds drawing outlier attention."""
    return [t in special or not any(ch.isalnum() for ch in t.replace("\u2581", "")) for t in tokens]


def non_semantic_share(
    patterns: Float[Tensor, "layer head query key"], tokens: Sequence[str], query_start: int, special: Collection[str]
) -> Float[Tensor, " layer"]:
    """Per layer, the share of the attention of queries from ``query_start`` on (mean over heads
    and those queries) that lands on non-semantic tokens."""
    keys = torch.tensor(non_semantic(tokens, special), dtype=patterns.dtype)
    return (patterns[:, :, query_start:, :] * keys).sum(-1).mean(dim=(1, 2))
