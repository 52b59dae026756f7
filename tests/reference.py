"""An independent reference: plain Hugging Face LLaMA with a hand-written eager attention.

It shares no code with ``interp``: the paper's edits are written again here, element by element,
inside an attention function registered with transformers' ``AttentionInterface``. Tests compare
the hooked model against it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from transformers import AttentionInterface, DynamicCache, LlamaForCausalLM
from transformers.masking_utils import AttentionMaskInterface, eager_mask

NAME = "interp_reference"


@dataclass
class Edit:
    """What the reference attention does: one of 'none', 'emulation', 'remove', 'anchors',
    'temperature', 'sink-scaling', 'sink-window'."""

    kind: str = "none"
    alpha: float = 0.2
    threshold: float = 0.01
    last_layer: int = 31
    prompt_range: tuple[int, int] = (0, 0)
    layers: tuple[int, ...] = ()
    anchors: tuple[int, ...] = ()
    keep_only: bool = False
    temperature: float = 1.0
    gamma: float = 1.0
    heads: tuple[int, ...] = ()  # sink-scaling: the heads edited (empty: all)
    sinks: int = 4
    window: int = 1
    beta: float = 0.4  # act
    by_layer: dict = field(default_factory=dict)  # act, pasta: {layer: [head, ...]}
    span: tuple[int, int] = (0, 0)  # pasta
    input_length: int = 10**9  # pasta: keys from here on (row-relative) are generated, not scaled
    mode: str = "exclude"  # pasta
    left_pad: list[int] = field(default_factory=list)
    state: dict = field(default_factory=dict)


EDIT = Edit()


def _repeat(x: torch.Tensor, groups: int) -> torch.Tensor:
    return x.repeat_interleave(groups, dim=1)


def reference_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, softcap=None, **kwargs):
    groups = query.shape[1] // key.shape[1]
    key, value = _repeat(key, groups), _repeat(value, groups)
    scores = (query @ key.transpose(-1, -2)) * scaling
    if softcap is not None:  # Gemma 2 caps the scores before the mask
        scores = softcap * torch.tanh(scores / softcap)
    if attention_mask is not None:
        scores = scores + attention_mask
    batch, heads, n_query, n_key = scores.shape
    layer = module.layer_idx
    e = EDIT
    pad = e.left_pad or [0] * batch
    if e.kind == "pasta" and layer in e.by_layer:  # the released hook: log(alpha) added to the mask's scores
        shift = math.log(e.alpha)
        scores = scores.clone()
        for b in range(batch):
            for j in range(n_key):
                own = j - pad[b]
                if own < 0 or own >= e.input_length:
                    continue
                inside = e.span[0] <= own < e.span[1]
                for h in e.by_layer[layer]:
                    if e.mode == "exclude" and not inside:
                        scores[b, h, :, j] += shift
                    elif e.mode == "include":
                        scores[b, h, :, j] += (shift if inside else 0.0) - shift
    weights = torch.softmax(scores.float(), dim=-1).to(query.dtype)
    if e.kind == "emulation":
        if layer == 0:
            mask = weights > e.threshold
            for i in range(n_query):
                mask[:, :, i, n_key - n_query + i] = False
            e.state["mask"] = mask
        else:
            factor = 1 + e.alpha * (1 - layer / e.last_layer)
            weights = torch.where(e.state["mask"], weights * factor, weights)
    elif e.kind in ("remove", "anchors") and (e.kind == "anchors" or layer in e.layers):
        start, stop = e.prompt_range
        weights = weights.clone()
        for b in range(batch):
            for i in range(n_query):
                if n_key - n_query + i - pad[b] < stop:
                    continue
                for j in range(n_key):
                    own = j - pad[b]
                    if not start <= own < stop:
                        continue
                    if e.kind == "anchors" and (own in e.anchors) == e.keep_only:
                        continue
                    weights[b, :, i, j] = 0.0
    elif e.kind == "temperature":  # the scores (before the mask) divided by the temperature, the softmax again
        raw = scores - attention_mask if attention_mask is not None else scores
        cooled = raw / e.temperature + (attention_mask if attention_mask is not None else 0)
        weights = torch.softmax(cooled.float(), dim=-1).to(query.dtype)
    elif e.kind == "sink-scaling":  # each row's first real token's weight times gamma, rows renormalised
        weights = weights.clone()
        for b in range(batch):
            for h in range(heads):
                if e.heads and h not in e.heads:
                    continue
                weights[b, h, :, pad[b]] *= e.gamma
                weights[b, h] /= weights[b, h].sum(-1, keepdim=True)
    elif e.kind == "sink-window":  # only the first `sinks` tokens and the last `window`, renormalised
        weights = weights.clone()
        for b in range(batch):
            for i in range(n_query):
                query_own = n_key - n_query + i - pad[b]
                for j in range(n_key):
                    own = j - pad[b]
                    if not (own < e.sinks or own > query_own - e.window):
                        weights[b, :, i, j] = 0.0
            weights[b] /= weights[b].sum(-1, keepdim=True)
    elif e.kind == "act" and layer in e.by_layer:
        weights = weights.clone()
        for b in range(batch):
            first_query = n_key - n_query  # the block's first query, as an index of the keys
            keys = list(range(pad[b], n_key))
            rows = [i for i in range(n_query) if first_query + i >= pad[b]]
            for h in e.by_layer[layer]:
                block = weights[b, h][rows][:, keys]  # real queries x real keys
                if len(rows) == len(keys):  # a whole prompt: the released column statistic
                    score = block.sum(0) / torch.arange(len(keys), 0, -1, dtype=block.dtype)
                else:  # one query at a decoding step: each entry against the threshold
                    score = block.sum(0) / len(rows)
                sinks = [j for j in range(len(keys)) if score[j] > e.threshold][1:]
                for r, i in enumerate(rows):
                    row = block[r]
                    rest = sum(row[k] for k in range(len(keys)) if k not in sinks)
                    if rest <= 0:
                        continue
                    moved = (1 - e.beta) * sum(row[j] for j in sinks)
                    new = [row[k] * e.beta if k in sinks else row[k] + moved * row[k] / rest for k in range(len(keys))]
                    weights[b, h, i, pad[b]:] = torch.stack([torch.as_tensor(v) for v in new])
    out = (weights @ value).transpose(1, 2).contiguous()
    return out, weights


AttentionInterface.register(NAME, reference_attention)
# The additive causal-and-padding mask that eager attention gets.
AttentionMaskInterface.register(NAME, eager_mask)


def reference_copy(model: LlamaForCausalLM) -> LlamaForCausalLM:
    """A separate copy of ``model`` running the reference attention."""
    ref = copy.deepcopy(model)
    ref.config._attn_implementation = NAME
    for layer in ref.model.layers:
        layer.self_attn.config._attn_implementation = NAME
    return ref.eval()


@torch.no_grad()
def reference_greedy(model: LlamaForCausalLM, ids: torch.Tensor, pad: list[int], steps: int) -> torch.Tensor:
    """Greedy decoding with Hugging Face's own KV cache, one token per step (no EOS stop)."""
    EDIT.left_pad = pad
    mask = torch.tensor([[0] * p + [1] * (ids.shape[1] - p) for p in pad], device=ids.device)
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    # A full cache in every layer: transformers' sliding-window cache layers drop old keys, so key
    # index would no longer be the position the edits count in (the window stays in the mask).
    out = model(ids, attention_mask=mask, position_ids=positions, past_key_values=DynamicCache(), use_cache=True)
    new = []
    for _ in range(steps):
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        new.append(nxt)
        mask = torch.cat([mask, torch.ones_like(nxt)], dim=1)
        positions = positions[:, -1:] + 1
        out = model(nxt, attention_mask=mask, position_ids=positions,
                    past_key_values=out.past_key_values, use_cache=True)
    return torch.cat(new, dim=1)
