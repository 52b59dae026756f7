"""Head probing: per-head scores (sink/anchor, previous-token, induction, entropy) and the effect
of ablating each head on the dialogue loss: estimated for every head by attribution patching (one
forward and one backward pass), measured by ablation for the heads that matter most."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence, TYPE_CHECKING

import einops
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from scipy.stats import spearmanr
from torch import Tensor
from transformer_lens.head_detector import (
    compute_head_attention_similarity_score,
    get_induction_head_detection_pattern,
    get_previous_token_head_detection_pattern,
)

from interp.analysis.attention import attention_entropy, attention_patterns
from interp.analysis.effects import dialogue_loss
from interp.analysis.patching import gradients, site_names
from interp.edits.interventions import HeadAblation

if TYPE_CHECKING:
    from interp.model.load import InterpModel


@dataclass(frozen=True)
class HeadScores:
    """Layer-by-head tables. ``estimate`` is every head's attribution-patching estimate of the
    change in dialogue loss when it is ablated; ``exact`` is that change measured by ablating the
    head, for the confirmed heads (NaN elsewhere)."""

    sink: Float[Tensor, "layer head"]
    previous_token: Float[Tensor, "layer head"]
    induction: Float[Tensor, "layer head"]
    entropy: Float[Tensor, "layer head"]
    estimate: Float[Tensor, "layer head"]
    exact: Float[Tensor, "layer head"]
    ablation_mode: str

    def __repr__(self) -> str:  # the tables would fill a notebook cell
        n_layers, n_heads = self.sink.shape
        top = self.ranked()[0]
        return (f"HeadScores({n_layers} layers x {n_heads} heads, {self.ablation_mode} ablation, "
                f"{len(self.confirmed)} confirmed, top {top['head']} (estimate {top['estimate']:+.3f}), "
                f"Spearman {self.agreement():.2f})")

    @property
    def confirmed(self) -> list[tuple[int, int]]:
        return measured(self.exact)

    def agreement(self) -> float:
        """Spearman rank correlation of estimate and exact effect over the confirmed heads (NaN
        with fewer than three)."""
        return agreement(self.estimate, self.exact)

    def ranked(self) -> list[dict[str, Any]]:
        """Every head, most important first: by the exact effect where measured (the confirmed heads
        lead), then by the estimate."""
        n_layers, n_heads = self.sink.shape
        rows = [{"head": f"{layer}.{head}", "estimate": float(self.estimate[layer, head]),
                 "exact": None if self.exact[layer, head].isnan() else float(self.exact[layer, head]),
                 "sink": float(self.sink[layer, head]), "previous_token": float(self.previous_token[layer, head]),
                 "induction": float(self.induction[layer, head]), "entropy": float(self.entropy[layer, head])}
                for layer in range(n_layers) for head in range(n_heads)]
        return sorted(rows, key=lambda row: (row["exact"] is not None,
                                             row["exact"] if row["exact"] is not None else row["estimate"]),
                      reverse=True)


def measured(exact: Float[Tensor, "layer head"]) -> list[tuple[int, int]]:
    """The heads whose exact effect was measured (not NaN)."""
    return [(int(l), int(h)) for l, h in (~exact.isnan()).nonzero().tolist()]


def agreement(estimate: Float[Tensor, "layer head"], exact: Float[Tensor, "layer head"]) -> float:
    """Spearman rank correlation of estimate and exact effect over the measured heads (NaN with
    fewer than three)."""
    heads = measured(exact)
    if len(heads) < 3:
        return float("nan")
    return float(spearmanr([float(estimate[h]) for h in heads], [float(exact[h]) for h in heads]).statistic)


def detector_scores(patterns: Float[Tensor, "layer head query key"], detection: Tensor) -> Float[Tensor, "layer head"]:
    """TransformerLens's head-detector score of every head against a detection pattern."""
    return torch.tensor([[compute_head_attention_similarity_score(
        head.float(), detection.float(), exclude_bos=False, exclude_current_token=False, error_measure="mul")
        for head in layer] for layer in patterns])


def sink_scores(patterns: Float[Tensor, "layer head query key"], sinks: Sequence[int] = (0,)) -> Float[Tensor, "layer head"]:
    """Mean attention that queries after the sinks pay to them (BOS by default, or the anchors)."""
    start = max(sinks) + 1
    return patterns[:, :, start:, list(sinks)].sum(-1).mean(-1)


@torch.no_grad()
def mean_head_outputs(model: InterpModel, ids: Int[Tensor, "batch pos"]) -> dict[tuple[int, int], Tensor]:
    """Each head's ``hook_z`` averaged over batch and positions: the values for mean ablation."""
    names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(ids, names_filter=lambda name: name in names)
    return {(layer, head): cache[names[layer]][:, :, head].mean(dim=(0, 1))
            for layer in range(model.cfg.n_layers) for head in range(cache[names[layer]].shape[2])}


@torch.no_grad()
def ablation_effects(model: InterpModel, ids: Int[Tensor, "1 pos"], prompt_stop: int,
                     mode: Literal["zero", "mean"] = "zero",
                     heads: Sequence[tuple[int, int]] | None = None) -> Float[Tensor, "layer head"]:
    """Change in dialogue loss when each head of ``heads`` (default all) is ablated alone, measured:
    one forward pass per head (NaN for the heads not measured)."""
    base = dialogue_loss(model, ids, prompt_stop)
    means = mean_head_outputs(model, ids) if mode == "mean" else None
    effects = torch.full((model.cfg.n_layers, model.cfg.n_heads), float("nan"))
    every = [(layer, head) for layer in range(model.cfg.n_layers) for head in range(model.cfg.n_heads)]
    for layer, head in every if heads is None else heads:
        ablation = HeadAblation(((layer, head),), None if means is None else {(layer, head): means[(layer, head)]})
        effects[layer, head] = dialogue_loss(model, ids, prompt_stop, [ablation]) - base
    return effects


def attribution_effects(model: InterpModel, ids: Int[Tensor, "1 pos"], prompt_stop: int,
                        mode: Literal["zero", "mean"] = "zero") -> Float[Tensor, "layer head"]:
    """Attribution patching (Nanda 2023; Kramar et al. 2024, AtP): every head's ablation effect on
    the dialogue loss to first order, from one forward and one backward pass,
    ``sum over positions of (z_ablated - z) . dloss/dz`` at each head's output ``hook_z``. For
    another metric or a corrupted input, :func:`interp.analysis.patching.attribution_patching`."""

    def loss(logits: Tensor) -> Tensor:
        return F.cross_entropy(logits[0, prompt_stop - 1 : -1].float(), ids[0, prompt_stop:].to(logits.device))

    _, zs, grads = gradients(model, ids, loss, site_names(model, "heads"))
    effects = []
    for z, grad in zip(zs, grads):  # batch pos head d_head
        target = torch.zeros_like(z) if mode == "zero" else z.mean(dim=(0, 1), keepdim=True).expand_as(z)
        effects.append(einops.einsum(target - z, grad, "batch pos head d, batch pos head d -> head"))
    return torch.stack(effects).float().cpu()


def repeated_tokens(model: InterpModel, length: int = 40, seed: int = 0) -> Int[Tensor, "1 pos"]:
    """BOS, then a random token sequence twice: induction heads attend to the token after the
    previous occurrence of the current one."""
    generator = torch.Generator().manual_seed(seed)
    half = torch.randint(3, model.cfg.d_vocab, (length,), generator=generator)
    bos = model.tokenizer.bos_token_id if model.tokenizer.bos_token_id is not None else 1
    return torch.cat([torch.tensor([bos]), half, half])[None]


def head_scores(model: InterpModel, ids: Int[Tensor, "1 pos"], prompt_stop: int, *, sinks: Sequence[int] = (0,),
                mode: Literal["zero", "mean"] = "zero", confirm: int = 10) -> HeadScores:
    """Every head's scores on one prompt-plus-dialogue sequence (induction on a repeated sequence):
    every head's ablation effect estimated by attribution patching, and the ``confirm`` heads
    estimated to matter most measured by ablating them."""
    if not 0 < prompt_stop < ids.shape[1]:
        raise ValueError(f"prompt_stop={prompt_stop} must lie inside the sequence of {ids.shape[1]} tokens")
    with torch.no_grad():
        patterns = attention_patterns(model, ids)
        repeated = repeated_tokens(model)
        induction_patterns = attention_patterns(model, repeated)
    estimate = attribution_effects(model, ids, prompt_stop, mode)
    n_heads = model.cfg.n_heads
    order = estimate.flatten().argsort(descending=True)[:confirm].tolist()
    exact = ablation_effects(model, ids, prompt_stop, mode, [divmod(i, n_heads) for i in order])
    return HeadScores(
        sink=sink_scores(patterns, sinks),
        previous_token=detector_scores(patterns, get_previous_token_head_detection_pattern(ids[0].cpu())),
        induction=detector_scores(induction_patterns, get_induction_head_detection_pattern(repeated[0])),
        entropy=attention_entropy(patterns),
        estimate=estimate,
        exact=exact,
        ablation_mode=mode,
    )
