"""Head probing: per-head scores (sink/anchor, previous-token, induction, entropy) and the effect
of ablating each head on the dialogue loss."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence, TYPE_CHECKING

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens.head_detector import (
    compute_head_attention_similarity_score,
    get_induction_head_detection_pattern,
    get_previous_token_head_detection_pattern,
)

from interp.analysis.attention import attention_entropy, attention_patterns
from interp.analysis.effects import dialogue_loss
from interp.edits.interventions import HeadAblation

if TYPE_CHECKING:
    from interp.model.load import InterpModel


@dataclass(frozen=True)
class HeadScores:
    """Layer-by-head tables; ``ablation`` is the change in dialogue loss when the head is ablated."""

    sink: Float[Tensor, "layer head"]
    previous_token: Float[Tensor, "layer head"]
    induction: Float[Tensor, "layer head"]
    entropy: Float[Tensor, "layer head"]
    ablation: Float[Tensor, "layer head"]
    ablation_mode: str

    def ranked(self) -> list[dict[str, Any]]:
        """Every head, most important (largest loss increase when ablated) first."""
        n_layers, n_heads = self.sink.shape
        rows = [{"head": f"{layer}.{head}", "ablation_loss_change": float(self.ablation[layer, head]),
                 "sink": float(self.sink[layer, head]), "previous_token": float(self.previous_token[layer, head]),
                 "induction": float(self.induction[layer, head]), "entropy": float(self.entropy[layer, head])}
                for layer in range(n_layers) for head in range(n_heads)]
        return sorted(rows, key=lambda row: row["ablation_loss_change"], reverse=True)


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
                     mode: Literal["zero", "mean"] = "zero", layers: Sequence[int] | None = None) -> Float[Tensor, "layer head"]:
    """Change in dialogue loss when each head (of ``layers``, default all) is ablated alone."""
    base = dialogue_loss(model, ids, prompt_stop)
    means = mean_head_outputs(model, ids) if mode == "mean" else None
    effects = torch.full((model.cfg.n_layers, model.cfg.n_heads), float("nan"))
    for layer in layers if layers is not None else range(model.cfg.n_layers):
        for head in range(model.cfg.n_heads):
            ablation = HeadAblation(((layer, head),), None if means is None else {(layer, head): means[(layer, head)]})
            effects[layer, head] = dialogue_loss(model, ids, prompt_stop, [ablation]) - base
    return effects


def repeated_tokens(model: InterpModel, length: int = 40, seed: int = 0) -> Int[Tensor, "1 pos"]:
    """BOS, then a random token sequence twice: induction heads attend to the token after the
    previous occurrence of the current one."""
    generator = torch.Generator().manual_seed(seed)
    half = torch.randint(3, model.cfg.d_vocab, (length,), generator=generator)
    bos = model.tokenizer.bos_token_id if model.tokenizer.bos_token_id is not None else 1
    return torch.cat([torch.tensor([bos]), half, half])[None]


@torch.no_grad()
def head_scores(model: InterpModel, ids: Int[Tensor, "1 pos"], prompt_stop: int, *, sinks: Sequence[int] = (0,),
                mode: Literal["zero", "mean"] = "zero", layers: Sequence[int] | None = None) -> HeadScores:
    """Every head's scores on one prompt-plus-dialogue sequence (induction on a repeated sequence)."""
    if not 0 < prompt_stop < ids.shape[1]:
        raise ValueError(f"prompt_stop={prompt_stop} must lie inside the sequence of {ids.shape[1]} tokens")
    patterns = attention_patterns(model, ids)
    repeated = repeated_tokens(model)
    return HeadScores(
        sink=sink_scores(patterns, sinks),
        previous_token=detector_scores(patterns, get_previous_token_head_detection_pattern(ids[0].cpu())),
        induction=detector_scores(attention_patterns(model, repeated), get_induction_head_detection_pattern(repeated[0])),
        entropy=attention_entropy(patterns),
        ablation=ablation_effects(model, ids, prompt_stop, mode, layers),
        ablation_mode=mode,
    )
