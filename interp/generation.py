"""Batched greedy generation on the hooked model, interventions active at every step.

Rows are left-padded so that every row's next token sits in the last column; positions are
counted per row from its first real token, so a padded row computes exactly what it would alone.
The KV cache holds past keys and values; each step runs one query per row through the hooks.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from jaxtyping import Int
from torch import Tensor

from interp.interventions import Intervention, intervene


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
    """Greedy continuation of left-padded ``ids``; rows that stopped are padded with EOS."""
    if ids.ndim != 2 or ids.shape[1] == 0:
        raise ValueError(f"input ids must be a non-empty [batch, pos] tensor, got shape {tuple(ids.shape)}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    eos = _eos_id(model, eos_token_id)
    device = next(model.parameters()).device
    left_pad = (torch.zeros(ids.shape[0], dtype=torch.long) if left_pad is None else left_pad).to(device)
    positions = torch.arange(ids.shape[1], device=device)[None, :] - left_pad[:, None]
    mask = (positions >= 0).long()
    positions = positions.clamp_min(0)
    tokens, cache, step = ids.to(device), None, 0
    out = torch.full((ids.shape[0], max_new_tokens), eos, dtype=torch.long, device=device)
    rows = torch.arange(ids.shape[0], device=device)  # the rows still generating
    while step < max_new_tokens and len(rows):
        # Finished rows leave the batch (and the KV cache); the hooks are rebuilt for those left.
        with intervene(model, *interventions, left_pad=left_pad[rows]):
            while step < max_new_tokens:
                # The wrapped HF model runs the bridge's components, so every hook fires; calling it
                # directly skips the bridge's per-call bookkeeping (~13% of a decoding step here).
                # Only the last position's logits are needed: skips the prompt's unembedding.
                output = model.original_model(
                    input_ids=tokens, attention_mask=mask, position_ids=positions, past_key_values=cache,
                    use_cache=True, logits_to_keep=1,
                )
                cache = output.past_key_values
                nxt = output.logits[:, -1].argmax(dim=-1)
                out[rows, step] = nxt
                step += 1
                going = nxt != eos
                tokens, positions = nxt[:, None], positions[:, -1:] + 1
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
                if not going.all():
                    keep = torch.nonzero(going).flatten()
                    cache.batch_select_indices(keep)
                    rows, tokens, positions, mask = rows[keep], tokens[keep], positions[keep], mask[keep]
                    break
    return out.cpu()


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
    splits a long list into batches of that many rows.
    """
    if isinstance(inputs, Tensor):
        rows = [row.tolist() for row in inputs]
    else:
        rows = tokenize(model, [inputs] if isinstance(inputs, str) else list(inputs))
    if not rows:
        raise ValueError("no inputs to generate from")
    step = batch_size or len(rows)
    pad_id = model.tokenizer.pad_token_id if model.tokenizer is not None else 0
    chunks = []
    for begin in range(0, len(rows), step):
        ids, left_pad = stack_left_padded(rows[begin : begin + step], pad_id or 0)
        chunks.append(generate_ids(model, ids, max_new_tokens=max_new_tokens, left_pad=left_pad,
                                   interventions=interventions, eos_token_id=eos_token_id))
    new = torch.cat(chunks)
    if isinstance(inputs, Tensor):
        return new
    texts = [decode_until_eos(model, row, eos_token_id) for row in new]
    return texts[0] if isinstance(inputs, str) else texts


def decode_until_eos(model: Any, row: Int[Tensor, " new"], eos_token_id: int | None = None) -> str:
    eos = _eos_id(model, eos_token_id)
    ids = row.tolist()
    return model.tokenizer.decode(ids[: ids.index(eos)] if eos in ids else ids, skip_special_tokens=True)
