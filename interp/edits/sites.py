"""Which layers of a bridged model let an edit at ``blocks.{l}.attn.hook_pattern`` change the output.

TransformerLens 4 bridges some architectures (LLaMA, Mistral, Qwen2/3, Gemma 2, ...) with an
attention that it computes itself, so the pattern hook sits inside the computation. Others (OPT,
GPT-J, GPT-Neo, Cohere, ...) keep the library's own attention and fire ``hook_pattern`` after it
has run: there the hook only observes, and an edit would silently do nothing. This module finds
out by measurement rather than by a list that would go stale with every TransformerLens release.
"""

from __future__ import annotations

import warnings
from typing import Sequence, TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge

    from interp.model.load import InterpModel

    Hooked = InterpModel | TransformerBridge  # what has the hook points: the handle, or a bare bridge


def pattern_hook_name(layer: int) -> str:
    return f"blocks.{layer}.attn.hook_pattern"


class PatternEditsIgnored(ValueError):
    """The model's bridge only observes attention patterns, so pattern edits cannot act."""


def architecture(model: Hooked) -> str:
    """The Hugging Face class the bridge wraps (e.g. ``OPTForCausalLM``)."""
    original = getattr(model, "original_model", None)
    return type(original).__name__ if original is not None else type(model).__name__


def editable_layers(model: Hooked) -> tuple[int, ...]:
    """The layers whose ``hook_pattern`` output flows into the model's output: measured once per
    :class:`interp.model.load.InterpModel` (which keeps the answer), or on a bare bridge each time."""
    known = getattr(model, "editable_layers", None)
    return known if isinstance(known, tuple) else measure_editable_layers(model)


def measure_editable_layers(model: Hooked) -> tuple[int, ...]:
    """Each layer's pattern is multiplied by its own scalar 1.0 (the output is unchanged) and the
    logits are differentiated with respect to those scalars: a layer whose hook only observes has
    no path to the logits. One forward and backward over two tokens."""
    n_layers = model.cfg.n_layers
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    # Callers may be inside torch.inference_mode (generation is); autograd needs it off.
    with torch.inference_mode(False), torch.enable_grad(), warnings.catch_warnings():
        ids = torch.zeros((1, 2), dtype=torch.long, device=device)  # any two tokens will do
        # The bridge warns on every observe-only layer; the error below says it once.
        warnings.simplefilter("ignore", UserWarning)
        scales = [torch.ones((), device=device, dtype=dtype, requires_grad=True) for _ in range(n_layers)]

        def scaler(layer: int):
            return lambda pattern, hook: pattern * scales[layer]

        hooks = [(pattern_hook_name(layer), scaler(layer)) for layer in range(n_layers)]
        with model.hooks(fwd_hooks=hooks):
            logits = model(ids)
        grads = torch.autograd.grad(logits.float().sum(), scales, allow_unused=True)
    return tuple(layer for layer, grad in enumerate(grads) if grad is not None)


def require_pattern_edits(model: Hooked, layers: Sequence[int]) -> None:
    """Raise :class:`PatternEditsIgnored` unless pattern edits act in every one of ``layers``."""
    if not layers:
        return
    ignored = sorted(set(layers) - set(editable_layers(model)))
    if ignored:
        every = len(ignored) == model.cfg.n_layers
        where = "any layer" if every else f"layers {ignored}"
        raise PatternEditsIgnored(
            f"{architecture(model)}: TransformerLens bridges this architecture with the library's own "
            f"attention, so blocks.{{l}}.attn.hook_pattern only observes the pattern in {where}, and an "
            "edit there would be ignored. Analysis (run_with_cache) works; for the attention "
            "interventions use an architecture whose bridge computes attention itself (LLaMA, "
            "Mistral, Qwen2, Qwen3, Gemma 2)"
        )
