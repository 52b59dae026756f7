"""How many questions fit in one batch: ``--batch-size auto``.

Per row, generation holds a KV cache of 2 (keys and values) x layers x KV heads x head size x the
dtype's bytes per column, over as many columns as its buffers have (:func:`cache_columns`: more
than the longest prompt plus the new tokens, since buffers grow ahead and padding waits to be
trimmed), and during the prefill one layer's eager attention scores for the longest prompt
(heads x prompt^2, float32). The weights are already on the device when the batch is chosen, so
the free memory is what the rows share; a margin is kept for activations and the allocator.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from interp.model.load import InterpModel

MARGIN = 0.9  # the share of free memory the rows may take


@dataclass(frozen=True)
class BatchFit:
    batch_size: int
    free_bytes: int
    weight_bytes: int
    kv_bytes_per_token: int
    tokens_per_row: int
    prefill_bytes_per_row: int

    @property
    def bytes_per_row(self) -> int:
        return self.kv_bytes_per_token * self.tokens_per_row + self.prefill_bytes_per_row

    def explain(self) -> str:
        gib = 2**30
        return (f"--batch-size auto: {self.batch_size} rows; free memory {self.free_bytes / gib:.2f} GiB (weights "
                f"{self.weight_bytes / gib:.2f} GiB already loaded), {MARGIN:.0%} of it for rows of "
                f"{self.bytes_per_row / gib:.3f} GiB each: a KV cache of {self.tokens_per_row} columns x "
                f"{self.kv_bytes_per_token / 2**10:.1f} KiB, plus {self.prefill_bytes_per_row / 2**20:.1f} MiB of "
                "prefill attention scores")


def kv_bytes_per_token(model: InterpModel) -> int:
    """2 (keys, values) x layers x KV heads x head size x bytes per element."""
    cfg = model.cfg
    kv_heads = getattr(cfg, "n_key_value_heads", None) or cfg.n_heads
    return 2 * cfg.n_layers * kv_heads * cfg.d_head * torch.empty((), dtype=cfg.dtype).element_size()


def free_memory(device: torch.device) -> int:
    """Free bytes on the device: CUDA's own count, or the machine's available memory for the CPU."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def fit_batch(model: InterpModel, longest_prompt: int, max_new_tokens: int, n_rows: int, free_bytes: int | None = None) -> BatchFit:
    """The largest batch (at most ``n_rows``) whose rows fit in the free memory."""
    device = next(model.parameters()).device
    return fit(
        free_bytes=free_memory(device) if free_bytes is None else free_bytes,
        weight_bytes=sum(p.numel() * p.element_size() for p in model.parameters()),
        kv_bytes_per_token=kv_bytes_per_token(model), n_heads=model.cfg.n_heads,
        longest_prompt=longest_prompt, max_new_tokens=max_new_tokens, n_rows=n_rows, n_layers=model.cfg.n_layers,
    )


def cache_columns(longest_prompt: int, max_new_tokens: int, n_layers: int) -> int:
    """The most KV-cache columns a row can hold at once, counted in one layer's worth
    (:class:`interp.decoding.generation.GrowingLayer` and the kept-full batch):

    - the batch is as wide as its longest row, at most ``longest_prompt + max_new_tokens``, plus the
      padding columns every row shares, trimmed once they are an eighth of the width: 8/7 of it;
    - a layer's buffers hold half as many columns again as they use, plus 16 (room to grow in place);
    - while one layer's buffers are replaced (growing, widening, a row joining) its old buffers and
      the joined or padded copy are held too: two more buffers, on one layer of ``n_layers``.
    """
    width = math.ceil((longest_prompt + max_new_tokens) * 8 / 7)
    buffer = width + width // 2 + 16
    return math.ceil(buffer * (n_layers + 2) / n_layers)


def fit(*, free_bytes: int, weight_bytes: int, kv_bytes_per_token: int, n_heads: int, longest_prompt: int,
        max_new_tokens: int, n_rows: int, n_layers: int) -> BatchFit:
    """:func:`fit_batch` from the numbers alone (what a projection for a model not at hand uses)."""
    found = BatchFit(
        batch_size=0, free_bytes=free_bytes, weight_bytes=weight_bytes, kv_bytes_per_token=kv_bytes_per_token,
        tokens_per_row=cache_columns(longest_prompt, max_new_tokens, n_layers),
        prefill_bytes_per_row=n_heads * longest_prompt**2 * 4,
    )
    rows = int(MARGIN * free_bytes // found.bytes_per_row)
    if rows < 1:
        raise ValueError(f"even one row needs {found.bytes_per_row / 2**30:.2f} GiB and the device has "
                         f"{free_bytes / 2**30:.2f} GiB free; lower --max-new-tokens, use a smaller dtype or a larger device")
    return BatchFit(**{**found.__dict__, "batch_size": min(rows, n_rows)})
