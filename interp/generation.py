"""Batched greedy generation with the interventions active at every step.

Rows are left-padded so that every row's next token sits in the last column; positions are
counted per row from its first real token, so a padded row computes exactly what it would alone.
The KV cache holds past keys and values; each step runs one query per row through the hooks.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import torch
from jaxtyping import Int
from torch import Tensor
from transformers import DynamicCache

from interp.edited_attention import edits, plain_model
from interp.interventions import Intervention, model_hooks


def tokenize(model: Any, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text, with BOS as the tokenizer adds it."""
    if any(not text for text in texts):
        raise ValueError("cannot generate from an empty prompt; give at least one character of text")
    return [model.tokenizer(text).input_ids for text in texts]


def prefix_length(model: Any, full: Sequence[int], head: str) -> int:
    """How many tokens of ``full`` (a text tokenised as one) belong to its beginning ``head``:
    where ``head``'s own tokenisation stops agreeing with the whole's."""
    alone = model.tokenizer(head).input_ids
    return next((i for i, (a, b) in enumerate(zip(full, alone)) if a != b), min(len(full), len(alone)))


def stack_left_padded(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, " batch"]]:
    """Stack token rows to the right edge; returns the ids and each row's padding count."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
    return ids, torch.tensor([width - len(row) for row in rows], dtype=torch.long)


@contextmanager
def decoder(model: Any, interventions: Sequence[Intervention], left_pad: Int[Tensor, " batch"]) -> Iterator[Callable[..., Any]]:
    """The Hugging Face forward to decode with, the interventions attached for these rows.

    The plain model with the edits inside its attention where it can (:mod:`interp.edited_attention`);
    otherwise the bridge's wrapped model, which runs every hook (calling it directly skips the
    bridge's per-call bookkeeping, ~13% of a decoding step).
    """
    hooks = model_hooks(model, *interventions, left_pad=left_pad)
    plain = plain_model(model, hooks)
    if plain is None:
        with model.hooks(fwd_hooks=hooks):
            yield model.original_model
    else:
        with edits(plain, hooks):
            yield plain


def _eos_id(model: Any, eos_token_id: int | None) -> int:
    eos = eos_token_id if eos_token_id is not None else model.tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer defines no EOS token; pass eos_token_id=")
    return int(eos)


@torch.inference_mode()
def generate_ids(
    model: Any,
    ids: Int[Tensor, "batch pos"],
    *,
    max_new_tokens: int,
    left_pad: Int[Tensor, " batch"] | None = None,
    interventions: Sequence[Intervention] = (),
    eos_token_id: int | None = None,
) -> Int[Tensor, "batch new"]:
    """Greedy continuation of left-padded ``ids``, all rows at once; rows that stopped are padded with EOS."""
    if ids.ndim != 2 or ids.shape[1] == 0:
        raise ValueError(f"input ids must be a non-empty [batch, pos] tensor, got shape {tuple(ids.shape)}")
    left_pad = torch.zeros(ids.shape[0], dtype=torch.long) if left_pad is None else left_pad.cpu()
    rows = [row[pad:].tolist() for row, pad in zip(ids, left_pad.tolist())]
    return _collect(generate_stream(model, rows, max_new_tokens=max_new_tokens, batch_size=len(rows),
                                    interventions=interventions, eos_token_id=eos_token_id), len(rows), max_new_tokens)


def _collect(stream: Iterator[tuple[int, Tensor]], n_rows: int, max_new_tokens: int) -> Int[Tensor, "batch new"]:
    out = torch.empty(n_rows, max_new_tokens, dtype=torch.long)
    for index, new in stream:
        out[index] = new
    return out


class _Batch:
    """The rows decoding together: their KV cache, attention mask and next inputs, left-padded to
    one width (a row's padding count is its ``left_pad``)."""

    def __init__(self, cache: DynamicCache, mask: Tensor, tokens: Tensor, index: list[int]) -> None:
        self.cache, self.mask, self.tokens, self.index = cache, mask, tokens, index

    @property
    def left_pad(self) -> Tensor:
        return (self.mask == 0).sum(dim=1)  # padding only ever sits on the left

    @property
    def positions(self) -> Tensor:
        return self.mask.sum(dim=1, keepdim=True)  # the next token's position in its own row

    def widen(self, width: int) -> None:
        """Left-pad to ``width`` columns (padded keys are masked out, so nothing changes)."""
        extra = width - self.mask.shape[1]
        if extra > 0:
            self.mask = torch.nn.functional.pad(self.mask, (extra, 0))
            for layer in self.cache.layers:
                layer.keys = torch.nn.functional.pad(layer.keys, (0, 0, extra, 0))
                layer.values = torch.nn.functional.pad(layer.values, (0, 0, extra, 0))

    def join(self, other: "_Batch") -> "_Batch":
        width = max(self.mask.shape[1], other.mask.shape[1])
        self.widen(width)
        other.widen(width)
        self.mask, self.tokens = torch.cat([self.mask, other.mask]), torch.cat([self.tokens, other.tokens])
        for mine, theirs in zip(self.cache.layers, other.cache.layers):
            mine.keys, mine.values = torch.cat([mine.keys, theirs.keys]), torch.cat([mine.values, theirs.values])
        self.index += other.index
        return self

    def keep(self, rows: Tensor) -> None:
        """Keep only ``rows``, and drop the columns that are now padding in every row."""
        self.cache.batch_select_indices(rows)
        self.mask, self.tokens = self.mask[rows], self.tokens[rows]
        self.index = [self.index[i] for i in rows.tolist()]
        drop = int(self.left_pad.min()) if len(self.index) else 0
        if drop:
            self.mask = self.mask[:, drop:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[:, :, drop:], layer.values[:, :, drop:]


@torch.inference_mode()
def generate_stream(
    model: Any,
    rows: Sequence[Sequence[int]],
    *,
    max_new_tokens: int | Sequence[int],
    batch_size: int,
    interventions: Sequence[Intervention] = (),
    eos_token_id: int | None = None,
) -> Iterator[tuple[int, Int[Tensor, " new"]]]:
    """Greedy continuations of token ``rows`` with the KV cache, at most ``batch_size`` at a time,
    kept full: when a row ends (EOS or its ``max_new_tokens``, one for all or one per row), the
    next waiting row is prefilled and joins the running batch with its own positions and cache
    rows. Yields ``(row index, new ids)`` as rows finish, the ids EOS-padded to the row's limit.

    Rows are left-padded to a common width; positions count from each row's first real token and
    the interventions get each row's padding, so every row computes what it would alone.
    """
    limits = [max_new_tokens] * len(rows) if isinstance(max_new_tokens, int) else list(max_new_tokens)
    if len(limits) != len(rows) or min(limits, default=1) < 1:
        raise ValueError(f"max_new_tokens must be at least 1 (one number, or one per row), got {max_new_tokens}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if any(len(row) == 0 for row in rows):
        raise ValueError("every row needs at least one token to generate from")
    eos = _eos_id(model, eos_token_id)
    device = next(model.parameters()).device
    pad_id = (model.tokenizer.pad_token_id if model.tokenizer is not None else 0) or 0
    waiting = list(range(len(rows)))[::-1]  # popped from the end: in row order
    new: dict[int, list[int]] = {}

    def prefill(indices: list[int]) -> _Batch:
        ids, left_pad = stack_left_padded([rows[i] for i in indices], pad_id)
        ids, left_pad = ids.to(device), left_pad.to(device)
        mask = (torch.arange(ids.shape[1], device=device)[None] >= left_pad[:, None]).long()
        with decoder(model, interventions, left_pad) as forward:
            output = forward(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp_min(0),
                             past_key_values=DynamicCache(), use_cache=True, logits_to_keep=1)
        return _Batch(output.past_key_values, mask, output.logits[:, -1].argmax(-1, keepdim=True), indices)

    def finished(batch: _Batch) -> list[tuple[int, Tensor]]:
        """Record the batch's new tokens; drop and return the rows that ended."""
        ended = []
        for slot, (index, token) in enumerate(zip(batch.index, batch.tokens[:, 0].tolist())):
            new.setdefault(index, []).append(token)
            if token == eos or len(new[index]) == limits[index]:
                ended.append(slot)
        if not ended:
            return []
        done = []
        for slot in ended:
            index = batch.index[slot]
            ids = new.pop(index)
            done.append((index, torch.tensor(ids + [eos] * (limits[index] - len(ids)), dtype=torch.long)))
        batch.keep(torch.tensor([slot for slot in range(len(batch.index)) if slot not in ended], dtype=torch.long, device=device))
        return done

    running: _Batch | None = None
    while waiting or running is not None:
        free = batch_size - (len(running.index) if running is not None else 0)
        if waiting and free > 0:
            newcomers = prefill([waiting.pop() for _ in range(min(free, len(waiting)))])
            yield from finished(newcomers)
            if newcomers.index:
                running = newcomers if running is None else running.join(newcomers)
            if waiting and (running is None or len(running.index) < batch_size):
                continue  # rows ended at once: fill their slots before decoding
        if running is None or not running.index:
            running = None
            continue
        # The rows' padding is fixed until one ends or joins: the edits are built for it once.
        with decoder(model, interventions, running.left_pad) as forward:
            while True:
                running.mask = torch.cat([running.mask, torch.ones_like(running.mask[:, :1])], dim=1)
                output = forward(input_ids=running.tokens, attention_mask=running.mask,
                                 position_ids=running.positions - 1, past_key_values=running.cache,
                                 use_cache=True, logits_to_keep=1)
                running.cache, running.tokens = output.past_key_values, output.logits[:, -1].argmax(-1, keepdim=True)
                done = finished(running)
                if done:
                    break
        yield from done
        if not running.index:
            running = None


def generate(
    model: Any,
    inputs: str | Sequence[str] | Int[Tensor, "batch pos"],
    *,
    max_new_tokens: int,
    interventions: Sequence[Intervention] = (),
    eos_token_id: int | None = None,
    batch_size: int | None = None,
) -> Int[Tensor, "batch new"] | str | list[str]:
    """Greedy generation with the KV cache, batched with left padding, stopping per row at EOS.

    For a ``LongTensor[batch, pos]`` it returns the new ids ``LongTensor[batch, max_new_tokens]``
    (EOS-padded); for a string or list of strings, the decoded continuations. ``batch_size``
    caps the rows decoding at once; a row that ends gives its slot to the next (:func:`generate_stream`).
    """
    if isinstance(inputs, Tensor):
        rows = [row.tolist() for row in inputs]
    else:
        rows = tokenize(model, [inputs] if isinstance(inputs, str) else list(inputs))
    if not rows:
        raise ValueError("no inputs to generate from")
    new = _collect(generate_stream(model, rows, max_new_tokens=max_new_tokens, batch_size=batch_size or len(rows),
                                   interventions=interventions, eos_token_id=eos_token_id), len(rows), max_new_tokens)
    if isinstance(inputs, Tensor):
        return new
    texts = [decode_until_eos(model, row, eos_token_id) for row in new]
    return texts[0] if isinstance(inputs, str) else texts


def decode_until_eos(model: Any, row: Int[Tensor, " new"], eos_token_id: int | None = None) -> str:
    eos = _eos_id(model, eos_token_id)
    ids = row.tolist()
    return model.tokenizer.decode(ids[: ids.index(eos)] if eos in ids else ids, skip_special_tokens=True)
