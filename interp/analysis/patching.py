"""Activation patching with any metric: run one input with an activation taken from another, and
see how a number computed from the logits moves.

Two sites: each head's output (``hook_z``, every position at once) and the residual stream
entering each layer at each position (``hook_resid_pre``). For both,

- :func:`activation_patching` measures the change exactly (one forward pass per site, batched);
- :func:`attribution_patching` estimates every site's change to first order from two forward
  passes and one backward pass (Nanda 2023; Kramar et al. 2024, AtP):
  ``(source activation - base activation) . d metric / d activation`` at the base run.

``ids`` is the run patched and ``source`` the input whose activations are patched into it: with
``ids`` corrupted and ``source`` clean, a site's change is how much of the clean behaviour it
restores (denoising, as TransformerLens's ``patching`` module measures); the other way round, how
much the corruption at that site alone breaks (noising). Both inputs must have the same shape.

A metric takes the logits of a run (``batch pos vocab``, the batch of ``ids``) and returns a
scalar tensor, differentiable for attribution: :func:`logit_difference` is the usual one.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, TYPE_CHECKING

import einops
import torch
from jaxtyping import Float, Int
from torch import Tensor

if TYPE_CHECKING:
    from interp.model.load import InterpModel

Metric = Callable[[Float[Tensor, "batch pos vocab"]], Float[Tensor, ""]]
Site = Literal["heads", "resid"]
HOOKS = {"heads": "blocks.{}.attn.hook_z", "resid": "blocks.{}.hook_resid_pre"}


def logit_difference(right: int, wrong: int, position: int = -1) -> Metric:
    """The logit of token ``right`` minus that of ``wrong`` at ``position``, averaged over the batch."""

    def metric(logits: Float[Tensor, "batch pos vocab"]) -> Float[Tensor, ""]:
        return (logits[:, position, right] - logits[:, position, wrong]).float().mean()

    return metric


def site_names(model: InterpModel, site: Site) -> list[str]:
    if site not in HOOKS:
        raise ValueError(f"unknown site {site!r}; use one of {', '.join(HOOKS)}")
    return [HOOKS[site].format(layer) for layer in range(model.cfg.n_layers)]


def gradients(model: InterpModel, ids: Int[Tensor, "batch pos"], metric: Metric,
              names: list[str]) -> tuple[float, list[Tensor], list[Tensor]]:
    """The metric of a run of ``ids``, and at each hook of ``names`` its activation and the
    metric's gradient there (one forward, one backward pass; no weight gradient is kept)."""
    kept: dict[str, Tensor] = {}

    def keeper(name: str) -> Callable[[Tensor, Any], Tensor]:
        # Keyed by the name asked for: TransformerLens 4 reports some hooks by an alias (hook_in).
        def keep(activation: Tensor, hook: Any) -> Tensor:
            kept[name] = activation
            return activation

        return keep

    def track(resid: Tensor, hook: Any) -> Tensor:
        # Frozen weights (a merged adapter's) build no graph: the residual stream is made to.
        return resid if resid.requires_grad else resid.detach().requires_grad_()

    hooks = [("blocks.0.hook_resid_pre", track), *[(name, keeper(name)) for name in names]]
    with torch.enable_grad(), model.hooks(fwd_hooks=hooks):
        value = metric(model(ids))
        grads = torch.autograd.grad(value, [kept[name] for name in names])
    return value.item(), [kept[name].detach() for name in names], list(grads)


@torch.no_grad()
def activations(model: InterpModel, ids: Int[Tensor, "batch pos"], names: list[str]) -> list[Tensor]:
    _, cache = model.run_with_cache(ids, names_filter=lambda name: name in names)
    return [cache[name] for name in names]


def _check_pair(ids: Tensor, source: Tensor) -> None:
    if ids.shape != source.shape:
        raise ValueError(f"ids {tuple(ids.shape)} and source {tuple(source.shape)} must have the same shape: "
                         "patching takes each position's activation from the same position of the other input "
                         "(pad or choose prompts of equal token length)")


def _by_site(difference: Tensor, grad: Tensor, site: Site) -> Tensor:
    if site == "heads":  # batch pos head d_head -> head
        return einops.einsum(difference, grad, "batch pos head d, batch pos head d -> head")
    return einops.einsum(difference, grad, "batch pos d, batch pos d -> pos")


def attribution_patching(model: InterpModel, ids: Int[Tensor, "batch pos"], source: Int[Tensor, "batch pos"],
                         metric: Metric, site: Site = "heads") -> Float[Tensor, "layer site"]:
    """Every site's first-order estimate of the change in ``metric`` when ``ids`` is run with that
    site's activation taken from the run of ``source``: ``layer head`` for heads, ``layer pos``
    for the residual stream. Two forward passes and one backward pass, whatever the model's size."""
    _check_pair(ids, source)
    names = site_names(model, site)
    _, base, grads = gradients(model, ids, metric, names)
    patched = activations(model, source, names)
    return torch.stack([_by_site(new - old, grad, site) for old, new, grad in zip(base, patched, grads)]).float().cpu()


@torch.no_grad()
def activation_patching(model: InterpModel, ids: Int[Tensor, "batch pos"], source: Int[Tensor, "batch pos"],
                        metric: Metric, site: Site = "heads", batch_size: int = 16) -> Float[Tensor, "layer site"]:
    """Every site's exact change in ``metric`` when ``ids`` is run with that site's activation
    taken from the run of ``source`` (``layer head`` or ``layer pos``, as
    :func:`attribution_patching`): one forward pass per site, ``batch_size`` sites at a time, each
    a copy of ``ids`` patched at one site."""
    _check_pair(ids, source)
    names = site_names(model, site)
    patched = activations(model, source, names)
    base = metric(model(ids)).item()
    n_sites = patched[0].shape[2] if site == "heads" else ids.shape[1]
    rows = ids.shape[0]
    every = [(layer, index) for layer in range(len(names)) for index in range(n_sites)]
    effects = torch.full((len(names), n_sites), float("nan"))
    for start in range(0, len(every), batch_size):
        chunk = every[start : start + batch_size]
        hooks = []
        for layer in {layer for layer, _ in chunk}:
            copies = [(copy, index) for copy, (l, index) in enumerate(chunk) if l == layer]

            def patch(activation: Tensor, hook: Any, copies=copies, new=patched[layer]) -> Tensor:
                activation = activation.clone()
                for copy, index in copies:
                    block = slice(copy * rows, (copy + 1) * rows)
                    if site == "heads":
                        activation[block, :, index] = new[:, :, index]
                    else:
                        activation[block, index] = new[:, index]
                return activation

            hooks.append((names[layer], patch))
        with model.hooks(fwd_hooks=hooks):
            logits = model(ids.repeat(len(chunk), 1))
        for copy, (layer, index) in enumerate(chunk):
            effects[layer, index] = metric(logits[copy * rows : (copy + 1) * rows]).item() - base
    return effects
