"""Batched greedy generation with the interventions active at every step.

Rows are left-padded so that every row's next token sits in the last column; positions are
counted per row from its first real token, so a padded row computes exactly what it would alone.
The KV cache holds past keys and values; each step runs one query per row. Batches are kept full
(:func:`generate_stream`): a row that ends gives its slot to the next waiting prompt.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Hashable, Iterator, Sequence, TypeVar, TYPE_CHECKING

import torch
from jaxtyping import Int
from torch import Tensor
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from interp.model.chat import encode
from interp.model.fast_path import edited, plain_model
from interp.edits.intervention import Intervention
from interp.edits.plan import EditPlan, plan_edits

Row = TypeVar("Row")

if TYPE_CHECKING:
    from interp.model.load import InterpModel


def tokenize(model: InterpModel, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text, with BOS as the tokenizer adds it (:func:`interp.model.chat.encode`)."""
    if any(not text for text in texts):
        raise ValueError("cannot generate from an empty prompt; give at least one character of text")
    return [encode(model.tokenizer, text) for text in texts]


def prefix_length(model: InterpModel, full: Sequence[int], head: str) -> int:
    """How many tokens of ``full`` (a text tokenised as one) belong to its beginning ``head``:
    where ``head``'s own tokenisation stops agreeing with the whole's."""
    alone = encode(model.tokenizer, head)
    return next((i for i, (a, b) in enumerate(zip(full, alone)) if a != b), min(len(full), len(alone)))


def covering_length(model: InterpModel, full: Sequence[int], head: str) -> int:
    """How many tokens of ``full`` hold any of its beginning ``head``: :func:`prefix_length`, and
    the token that straddles the end of ``head``, where one does (a tokenizer that writes "83\\n\\n"
    as one token puts the last option and the newlines after it in it)."""
    agreed = prefix_length(model, full, head)
    return min(len(full), agreed + 1) if len(encode(model.tokenizer, head)) > agreed else agreed


def padded_batch(rows: Sequence[Sequence[int]], pad_id: int, device: torch.device | str = "cpu") -> tuple[
        Int[Tensor, "batch pos"], Int[Tensor, " batch"], Int[Tensor, "batch pos"], Int[Tensor, "batch pos"]]:
    """A forward's inputs for token rows of any lengths: left-padded ids, each row's padding count,
    the attention mask and the position ids (counted from each row's first real token)."""
    ids, left_pad = stack_left_padded(rows, pad_id)
    ids, left_pad = ids.to(device), left_pad.to(device)
    mask = (torch.arange(ids.shape[1], device=device)[None] >= left_pad[:, None]).long()
    return ids, left_pad, mask, (mask.cumsum(-1) - 1).clamp_min(0)


def stack_left_padded(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, " batch"]]:
    """Stack token rows to the right edge; returns the ids and each row's padding count."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
    return ids, torch.tensor([width - len(row) for row in rows], dtype=torch.long)


def by_interventions(rows: Sequence[Row], interventions: Callable[[Row], Hashable],
                     length: Callable[[Row], int]) -> list[list[Row]]:
    """``rows`` in groups that share one set of interventions (a batch runs one set), each in
    order of ``length`` (rows of similar length waste less on padding)."""
    groups: dict[Hashable, list[Row]] = {}
    for row in rows:
        groups.setdefault(interventions(row), []).append(row)
    return [sorted(group, key=length) for group in groups.values()]


@contextmanager
def decoder(model: InterpModel, plan: EditPlan | Sequence[Intervention],
            left_pad: Int[Tensor, " batch"] | None) -> Iterator[Callable[..., Any]]:
    """The Hugging Face forward to decode with, ``plan``'s edits attached for these rows (a plan
    made once for many batches, or interventions, then checked here).

    The plain model with the edits inside its attention where it can (:mod:`interp.model.fast_path`);
    otherwise the bridge's wrapped model, which runs every hook (calling it directly skips the
    bridge's per-call bookkeeping, ~13% of a decoding step).
    """
    plan = _as_plan(model, plan)
    plain = plain_model(model) if plan.patterns_only else None
    if plain is None:
        with model.hooks(fwd_hooks=plan.hooks(left_pad)):
            yield model.original_model
    else:
        with edited(plain, plan.edits(left_pad)):
            yield plain


def _as_plan(model: InterpModel, interventions: EditPlan | Sequence[Intervention]) -> EditPlan:
    return interventions if isinstance(interventions, EditPlan) else plan_edits(model, *interventions)


def _eos_id(model: InterpModel, eos_token_id: int | None) -> int:
    eos = eos_token_id if eos_token_id is not None else model.tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer defines no EOS token; pass eos_token_id=")
    return int(eos)


@torch.inference_mode()
def generate_ids(
    model: InterpModel,
    ids: Int[Tensor, "batch pos"],
    *,
    max_new_tokens: int,
    left_pad: Int[Tensor, " batch"] | None = None,
    interventions: Sequence[Intervention] | EditPlan = (),
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


class GrowingLayer(DynamicLayer):
    """A KV cache layer whose keys and values sit in buffers with room to grow: a decoding step
    writes its column in place, where transformers' ``DynamicLayer`` copies the whole cache to
    append it (which, with continuous batching's wide batches, costs more than the attention)."""

    def update(self, key_states: Tensor, value_states: Tensor, *args: Any, **kwargs: Any) -> tuple[Tensor, Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            self.set(key_states, value_states)
            return self.keys, self.values
        n, new = self.keys.shape[-2], key_states.shape[-2]
        if n + new > self._keys.shape[-2]:
            self.set(self.keys, self.values, room=n + new)
        self._keys[:, :, n : n + new], self._values[:, :, n : n + new] = key_states, value_states
        self.keys, self.values = self._keys[:, :, : n + new], self._values[:, :, : n + new]
        return self.keys, self.values

    def set(self, keys: Tensor, values: Tensor, room: int = 0) -> None:
        """Hold ``keys`` and ``values`` (rows selected, padded or joined), with room for
        ``room`` columns or half as many again as they have, whichever is more."""
        n = keys.shape[-2]
        capacity = max(room, n + n // 2 + 16)
        self._keys = keys.new_empty(*keys.shape[:2], capacity, keys.shape[-1])
        self._values = values.new_empty(*values.shape[:2], capacity, values.shape[-1])
        self._keys[:, :, :n], self._values[:, :, :n] = keys, values
        self.keys, self.values = self._keys[:, :, :n], self._values[:, :, :n]

    def batch_select_indices(self, indices: Tensor) -> None:
        self.set(self.keys[indices], self.values[indices])


def new_cache() -> DynamicCache:
    """A KV cache of :class:`GrowingLayer` layers that keeps every layer's keys (none of
    transformers' sliding-window layers, which drop old keys): key index = padded position in every
    layer, so row-relative ranges and the emulation's layer-0 mask line up; sliding-window models
    still apply their window in the mask."""
    cache = DynamicCache()
    cache.layer_class_to_replicate = GrowingLayer
    return cache


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
                layer.set(torch.nn.functional.pad(layer.keys, (0, 0, extra, 0)),
                          torch.nn.functional.pad(layer.values, (0, 0, extra, 0)))

    def join(self, other: "_Batch") -> "_Batch":
        width = max(self.mask.shape[1], other.mask.shape[1])
        self.widen(width)
        other.widen(width)
        self.mask, self.tokens = torch.cat([self.mask, other.mask]), torch.cat([self.tokens, other.tokens])
        for mine, theirs in zip(self.cache.layers, other.cache.layers):
            mine.set(torch.cat([mine.keys, theirs.keys]), torch.cat([mine.values, theirs.values]))
        self.index += other.index
        return self

    def replace(self, slots: list[int], other: "_Batch") -> None:
        """Put ``other``'s rows, no wider than this batch, into ``slots`` in place (no copy of the
        rest of the cache)."""
        extra = self.mask.shape[1] - other.mask.shape[1]
        at = torch.tensor(slots, device=self.mask.device)
        self.mask[at] = torch.nn.functional.pad(other.mask, (extra, 0))
        self.tokens[at] = other.tokens
        for mine, theirs in zip(self.cache.layers, other.cache.layers):
            mine.keys[at] = torch.nn.functional.pad(theirs.keys, (0, 0, extra, 0))  # views of the buffers
            mine.values[at] = torch.nn.functional.pad(theirs.values, (0, 0, extra, 0))
        for slot, index in zip(slots, other.index):
            self.index[slot] = index

    def keep(self, rows: Tensor) -> None:
        """Keep only ``rows``."""
        self.cache.batch_select_indices(rows)
        self.mask, self.tokens = self.mask[rows], self.tokens[rows]
        self.index = [self.index[i] for i in rows.tolist()]

    def trim(self) -> None:
        """Drop the columns that are padding in every row, once they are an eighth of the width
        (each trim copies the cache)."""
        drop = int(self.left_pad.min()) if self.index else 0
        if drop and drop >= self.mask.shape[1] // 8:
            self.mask = self.mask[:, drop:]
            for layer in self.cache.layers:
                layer.set(layer.keys[:, :, drop:], layer.values[:, :, drop:])


@torch.inference_mode()
def generate_stream(
    model: InterpModel,
    rows: Sequence[Sequence[int]],
    *,
    max_new_tokens: int | Sequence[int],
    batch_size: int,
    interventions: Sequence[Intervention] | EditPlan = (),
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
    plan = _as_plan(model, interventions)
    device = next(model.parameters()).device
    pad_id = (model.tokenizer.pad_token_id if model.tokenizer is not None else 0) or 0
    waiting = list(range(len(rows)))[::-1]  # popped from the end: in row order
    new: dict[int, list[int]] = {}

    def prefill(indices: list[int]) -> _Batch:
        ids, left_pad, mask, positions = padded_batch([rows[i] for i in indices], pad_id, device)
        with decoder(model, plan, left_pad) as forward:
            output = forward(input_ids=ids, attention_mask=mask, position_ids=positions,
                             past_key_values=new_cache(), use_cache=True, logits_to_keep=1)
        return _Batch(output.past_key_values, mask, output.logits[:, -1].argmax(-1, keepdim=True), indices)

    def record(batch: _Batch) -> list[int]:
        """Record the batch's new tokens; the slots whose rows ended."""
        ended = []
        for slot, (index, token) in enumerate(zip(batch.index, batch.tokens[:, 0].tolist())):
            new.setdefault(index, []).append(token)
            if token == eos or len(new[index]) == limits[index]:
                ended.append(slot)
        return ended

    def release(batch: _Batch, slots: list[int]) -> list[tuple[int, Tensor]]:
        out = []
        for slot in slots:
            index = batch.index[slot]
            ids = new.pop(index)
            out.append((index, torch.tensor(ids + [eos] * (limits[index] - len(ids)), dtype=torch.long)))
        return out

    def without(batch: _Batch, slots: list[int]) -> None:
        if slots:
            batch.keep(torch.tensor([s for s in range(len(batch.index)) if s not in slots], dtype=torch.long, device=device))

    def admit(n: int) -> tuple[_Batch, list[tuple[int, Tensor]]]:
        """Prefill the next ``n`` waiting rows; those that end on their first token come back finished."""
        newcomers = prefill([waiting.pop() for _ in range(n)])
        ended = record(newcomers)
        done = release(newcomers, ended)
        without(newcomers, ended)
        return newcomers, done

    running: _Batch | None = None
    while True:
        free = batch_size - (len(running.index) if running is not None else 0)
        if waiting and free > 0:
            newcomers, done = admit(min(free, len(waiting)))
            yield from done
            if newcomers.index:
                running = newcomers if running is None else running.join(newcomers)
            continue
        if running is None:
            return
        # The rows' padding is fixed until one ends: the edits are built for it once.
        with decoder(model, plan, running.left_pad) as forward:
            while True:
                running.mask = torch.cat([running.mask, torch.ones_like(running.mask[:, :1])], dim=1)
                output = forward(input_ids=running.tokens, attention_mask=running.mask,
                                 position_ids=running.positions - 1, past_key_values=running.cache,
                                 use_cache=True, logits_to_keep=1)
                running.cache, running.tokens = output.past_key_values, output.logits[:, -1].argmax(-1, keepdim=True)
                ended = record(running)
                if ended:
                    break
        yield from release(running, ended)
        # Waiting rows take the ended slots in place where they fit; the rest of the slots go.
        newcomers = None
        if waiting:
            newcomers, done = admit(min(len(ended), len(waiting)))
            yield from done
            if newcomers.index and newcomers.mask.shape[1] <= running.mask.shape[1]:
                placed, ended = ended[: len(newcomers.index)], ended[len(newcomers.index):]
                running.replace(placed, newcomers)
                newcomers = None
        without(running, ended)
        if newcomers is not None and newcomers.index:
            running = running.join(newcomers) if running.index else newcomers
        if not running.index:
            running = None
        else:
            running.trim()


def generate(
    model: InterpModel,
    inputs: str | Sequence[str] | Int[Tensor, "batch pos"],
    *,
    max_new_tokens: int,
    interventions: Sequence[Intervention] | EditPlan = (),
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


def decode_until_eos(model: InterpModel, row: Int[Tensor, " new"], eos_token_id: int | None = None) -> str:
    eos = _eos_id(model, eos_token_id)
    ids = row.tolist()
    return model.tokenizer.decode(ids[: ids.index(eos)] if eos in ids else ids, skip_special_tokens=True)
