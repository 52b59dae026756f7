"""What an intervention does to the model's predictions on one prompt-plus-dialogue sequence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence, TYPE_CHECKING

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from interp.decoding.generation import decode_until_eos, generate_ids
from interp.edits.intervention import Intervention, PatternIntervention
from interp.edits.interventions import PerRow
from interp.edits.plan import intervene

if TYPE_CHECKING:
    from interp.model.load import InterpModel


@dataclass(frozen=True)
class Effect:
    """One intervention's effect, measured on the dialogue positions (after the prompt)."""

    name: str
    kl: float  # mean KL(original || intervened) of the next-token distributions
    top1_agreement: float  # share of positions whose argmax is unchanged
    loss: float  # mean next-token cross-entropy on the dialogue tokens
    continuation: str


@torch.no_grad()
def dialogue_logprobs(model: InterpModel, ids: Int[Tensor, "1 pos"], prompt_stop: int,
                      interventions: Sequence[Intervention] = ()) -> Float[Tensor, "dialogue vocab"]:
    """Log-probabilities of each dialogue token's prediction (positions ``prompt_stop - 1`` to the
    second last), under the interventions."""
    with intervene(model, *interventions):
        return model(ids)[0, prompt_stop - 1 : -1].float().log_softmax(-1)


def dialogue_loss(model: InterpModel, ids: Int[Tensor, "1 pos"], prompt_stop: int, interventions: Sequence[Intervention] = ()) -> float:
    """Mean next-token cross-entropy on the tokens after the prompt."""
    logp = dialogue_logprobs(model, ids, prompt_stop, interventions)
    return F.nll_loss(logp, ids[0, prompt_stop:].to(logp.device)).item()


@torch.no_grad()
def intervention_effects(
    model: InterpModel,
    ids: Int[Tensor, "1 pos"],
    prompt_stop: int,
    variants: Mapping[str, Sequence[Intervention]],
    *,
    max_new_tokens: int = 32,
    generate_from: int | None = None,
) -> list[Effect]:
    """Compare each variant (a list of interventions; an empty list is the original model)
    against the original: KL and top-1 agreement on the dialogue positions, the dialogue loss,
    and the greedy continuation of ``ids[:, :generate_from]`` (of all of ``ids`` by default)."""
    n = ids.shape[1]
    if generate_from is not None and not prompt_stop < generate_from <= n:
        raise ValueError(f"generate_from={generate_from} must lie after the prompt (token {prompt_stop}) and "
                         f"within the {n} tokens")
    if not 0 < prompt_stop < n - 1:
        raise ValueError(
            f"the prompt must end before the last two tokens (prompt_stop={prompt_stop}, {n} tokens); "
            "give a sequence with dialogue after the prompt"
        )
    base = dialogue_logprobs(model, ids, prompt_stop)
    targets = ids[0, prompt_stop:].to(base.device)
    names = list(variants)
    if all(isinstance(iv, PatternIntervention) for ivs in variants.values() for iv in ivs):
        # Pattern edits: every variant in one batch, a row each (the continuations run to their
        # full length together, then are cut at EOS, so no row leaves the batch early).
        batched = PerRow(tuple(tuple(ivs) for ivs in variants.values()))
        rows = ids.expand(len(names), -1)
        with intervene(model, batched):
            logps = model(rows)[:, prompt_stop - 1 : -1].float().log_softmax(-1)
        news = generate_ids(model, rows[:, :generate_from], max_new_tokens=max_new_tokens, interventions=[batched],
                            eos_token_id=-1)
    else:
        logps = torch.stack([dialogue_logprobs(model, ids, prompt_stop, ivs) for ivs in variants.values()])
        news = torch.cat([generate_ids(model, ids[:, :generate_from], max_new_tokens=max_new_tokens, interventions=ivs)
                          for ivs in variants.values()])
    effects = []
    for name, logp, new in zip(names, logps, news):
        effects.append(Effect(
            name=name,
            kl=F.kl_div(logp, base, log_target=True, reduction="batchmean").item(),
            top1_agreement=(logp.argmax(-1) == base.argmax(-1)).float().mean().item(),
            loss=F.nll_loss(logp, targets).item(),
            continuation=decode_until_eos(model, new),
        ))
    return effects
