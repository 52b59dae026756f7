"""The fast decoding path: the plain Hugging Face model, with the interventions' pattern edits
applied inside its attention.

The TransformerLens bridge runs every module through hook points, which costs 15-30% of a
decoding step on small models. For generation, :func:`interp.load_model` keeps a second module
tree of the Hugging Face model that shares every weight with the bridged one (no extra memory)
and runs transformers' own layers. Its attention is :func:`attention`, registered with
transformers' ``AttentionInterface``: eager attention that, after the softmax, passes the pattern
through the same edit functions the bridge's hooks run (an :class:`~interp.edits.plan.EditPlan`'s
``edits(left_pad)``). So each
edit has one source of truth, whichever path applies it; tests check that both give the same
logits and greedy tokens. The edits travel with each call, as a forward keyword that transformers
hands down to every layer's attention (:func:`edited`); no attention module holds them.

The emulation's scaled layers can also run without their pattern (:func:`fused_emulation`): two
FlexAttention passes, over every key and over the layer-0 mask's keys alone, combined by their
log-sum-exp (:func:`interp.edits.patterns.scaled_masked_output`). The default on CUDA, where
prefill would otherwise hold a ``[batch, head, query, key]`` pattern per layer.
"""

from __future__ import annotations

import copy
import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any, Callable, Iterator, TYPE_CHECKING

import torch
from torch import Tensor
from transformers import AttentionInterface, PreTrainedModel
from transformers.masking_utils import AttentionMaskInterface, eager_mask

from interp.edits.patterns import MaskedScale, scaled_masked_output
from interp.edits.sites import pattern_hook_name

if TYPE_CHECKING:
    from interp.model.load import InterpModel

NAME = "interp_edited"


class PatternSite:
    """What a hook function is told about where it runs, on this path as on the bridge's
    (``hook.name``, ``hook.layer()``): one contract, ``fn(pattern, hook=...) -> pattern``."""

    def __init__(self, layer: int) -> None:
        self.name = pattern_hook_name(layer)
        self._layer = layer

    def layer(self) -> int:
        return self._layer


Sited = dict[int, list[tuple[Callable, PatternSite]]]  # layer -> its edits, each with where it runs


def attention(module: torch.nn.Module, query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None,
              scaling: float, dropout: float = 0.0, softcap: float | None = None,
              pattern_edits: Sited | None = None, **kwargs: Any) -> tuple[Tensor, Tensor]:
    """transformers' eager attention (grouped-query, soft-capping, additive mask), with this
    layer's ``pattern_edits`` applied after the softmax. A layer without edits (and without
    soft-capping or dropout) never needs its pattern, so it runs fused scaled-dot-product attention."""
    site_edits = (pattern_edits or {}).get(module.layer_idx, ())
    plain = softcap is None and not (module.training and dropout)
    if not site_edits and plain:
        out = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask,
                                                               scale=scaling, enable_gqa=True)
        return out.transpose(1, 2).contiguous(), None
    if plain and len(site_edits) == 1 and isinstance(site_edits[0][0], MaskedScale) and _fuses(query):
        out = _fused_or_none(query, key, value, attention_mask, scaling, site_edits[0][0])
        if out is not None:
            return out.transpose(1, 2).contiguous(), None
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    if attention_mask is not None:
        scores = scores + attention_mask
    pattern = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    pattern = torch.nn.functional.dropout(pattern, p=dropout, training=module.training)
    for edit, site in site_edits:
        pattern = edit(pattern, hook=site)
    return torch.matmul(pattern, value).transpose(1, 2).contiguous(), pattern


_FUSED: ContextVar[bool | None] = ContextVar("interp_fused_emulation", default=None)


@contextmanager
def fused_emulation(enabled: bool | None = True) -> Iterator[None]:
    """Within the block, whether the fast path runs the emulation's scaled layers as two fused
    attention passes (True), forms their pattern (False), or decides by device (None, the default
    outside any block: fused on CUDA only; on the CPU, FlexAttention runs uncompiled, which is exact
    but forms the scores anyway, so the eager pattern stays the default there)."""
    token = _FUSED.set(enabled)
    try:
        yield
    finally:
        _FUSED.reset(token)


UNFUSED: dict[str, str] = {}  # device type -> why the fused passes failed there (by default, tried once)


def _fuses(query: Tensor) -> bool:
    enabled = _FUSED.get()
    return query.is_cuda and query.device.type not in UNFUSED if enabled is None else enabled


def _fused_or_none(query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None, scaling: float,
                   edit: MaskedScale) -> Tensor | None:
    """The fused output; where fusing is only the default (not asked for) and the compiled kernel
    fails on this device, ``None`` (the pattern is formed instead), said once in a warning."""
    try:
        return fused_masked_scale(query, key, value, attention_mask, scaling, edit)
    except Exception as err:  # a compiler's failure on this device must not end a run the eager path can do
        if _FUSED.get() is not None:  # asked for: the failure is the answer
            raise
        UNFUSED[query.device.type] = f"{type(err).__name__}: {str(err)[:500]}"
        warnings.warn(f"the fused emulation failed on {query.device.type} ({UNFUSED[query.device.type]}); the emulation "
                      "forms its pattern instead from now on (with fused_emulation(False) this is not tried)")
        return None


def _two_passes(query: Tensor, key: Tensor, value: Tensor, additive: Tensor | None, mask: Tensor,
                scaling: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Attention's output and log-sum-exp over every key, and over the keys of ``mask`` alone."""
    from torch.nn.attention.flex_attention import AuxRequest, flex_attention

    def everywhere(score: Tensor, b: Tensor, h: Tensor, q: Tensor, k: Tensor) -> Tensor:
        return score if additive is None else score + additive[b, 0, q, k]

    def inside(score: Tensor, b: Tensor, h: Tensor, q: Tensor, k: Tensor) -> Tensor:
        return torch.where(mask[b, h, q, k], everywhere(score, b, h, q, k), -float("inf"))

    out, full = flex_attention(query, key, value, score_mod=everywhere, scale=scaling, enable_gqa=True,
                               return_aux=AuxRequest(lse=True))
    out_masked, masked = flex_attention(query, key, value, score_mod=inside, scale=scaling, enable_gqa=True,
                                        return_aux=AuxRequest(lse=True))
    return out, full.lse, out_masked, masked.lse


@cache
def _compiled_two_passes() -> Callable[..., tuple[Tensor, Tensor, Tensor, Tensor]]:
    # Compiled, FlexAttention is one fused kernel per pass that never forms the scores; the score
    # functions are made inside the compiled function, so new masks are new inputs, not new code.
    return torch.compile(_two_passes, dynamic=True)


def fused_masked_scale(query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None, scaling: float,
                       edit: MaskedScale) -> Tensor:
    """``edit`` applied to this layer's pattern, then the pattern times the values, computed as two
    FlexAttention passes (compiled on CUDA; uncompiled elsewhere, exact but dense)."""
    passes = _compiled_two_passes() if query.is_cuda else _two_passes
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*flex_attention called without torch.compile.*")
        out, lse, out_masked, lse_masked = passes(query, key, value, attention_mask, edit.mask().to(query.device), scaling)
    return scaled_masked_output(out, lse, out_masked, lse_masked, edit.factor)


AttentionInterface.register(NAME, attention)
AttentionMaskInterface.register(NAME, eager_mask)  # the additive mask eager attention takes


def plain_copy(hf: PreTrainedModel) -> PreTrainedModel:
    """A module tree of ``hf`` that shares its weights and buffers, running :func:`attention`
    (made before the bridge rewires ``hf``)."""
    shared = {id(t): t for t in [*hf.parameters(), *hf.buffers()]}
    # A placed model's modules carry accelerate's hooks, which hold the offloaded weights: shared
    # too, so the copy moves the same weights in and out (and holds no second copy of them).
    shared |= {id(hook): hook for module in hf.modules() if (hook := getattr(module, "_hf_hook", None)) is not None}
    plain = copy.deepcopy(hf, memo=shared)
    for module in plain.modules():  # the copy has its own configs
        if getattr(module, "config", None) is not None:
            module.config._attn_implementation = NAME
    return plain.eval()


def plain_model(model: InterpModel) -> PreTrainedModel | None:
    """The plain model to decode with (``model.plain``), or ``None`` where only the bridge can do
    it: a model without a plain copy, or hooks attached to the bridge by the caller (they would
    not fire on the plain model)."""
    plain = getattr(model, "plain", None)
    if plain is None:
        return None
    bridge = model.bridge
    if any(point._forward_hooks or point._forward_pre_hooks for point in bridge.hook_dict.values()):
        return None
    # Parameters are shared objects and follow a move of the bridge; buffers (rotary frequencies)
    # are replaced by one, so the copy's are moved after them. A model placed over several
    # devices is never moved (TransformerLens refuses to).
    device = next(bridge.parameters()).device
    if not getattr(plain, "hf_device_map", None) and any(buffer.device != device for buffer in plain.buffers()):
        plain.to(device)
    return plain


@contextmanager
def edited(plain: PreTrainedModel, by_layer: dict[int, list[Callable]]) -> Iterator[PreTrainedModel]:
    """The plain model with ``by_layer``'s pattern edits inside its attention, for the duration of
    the block: a forward pre-hook adds them to every call as the keyword ``pattern_edits``, which
    transformers hands down to each layer's attention. (Not passed by the caller: Hugging Face
    ``generate``, which lm-evaluation-harness calls, refuses keywords it does not know.)"""
    sited = {layer: [(fn, PatternSite(layer)) for fn in fns] for layer, fns in by_layer.items()}

    def add_edits(module: torch.nn.Module, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        return args, {**kwargs, "pattern_edits": sited}

    handle = plain.register_forward_pre_hook(add_edits, with_kwargs=True)
    try:
        yield plain
    finally:
        handle.remove()
