"""What every study shares: the ``Context`` a study runs in, the ``Example`` sequence it studies,
and the helpers of the effect pages. (The registry, :data:`interp.studies.STUDIES`, says which
studies there are.)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Sequence, TYPE_CHECKING

import torch
from jaxtyping import Int
from torch import Tensor

from interp.analysis.anchors import Anchors, detect_anchors
from interp.analysis.attention import attention_patterns
from interp.analysis.effects import Effect, intervention_effects
from interp.decoding.generation import prefix_length
from interp.edits.intervention import Intervention, check_layers, describe
from interp.report import figures
from interp.report.page import Page, Section

if TYPE_CHECKING:
    from interp.config import StudyConfig
    from interp.model.load import InterpModel


@dataclass(frozen=True)
class Context:
    """What a study runs on: the model, the example, the run's settings, and a loader for the
    other models some studies compare with ((path, the option that named it) -> model). What
    several studies need of the example (its anchors) is computed once, by the first that asks."""

    model: InterpModel
    example: "Example"
    config: StudyConfig
    load: Callable[[str, str], InterpModel]

    @cached_property
    def anchors(self) -> Anchors:
        return detect_anchors(self.model, self.example.ids, prompt_range=(0, self.example.prompt_stop),
                              ratio=self.config.ratio)


@dataclass(frozen=True)
class Example:
    """A prompt (the instruction, the paper's prompt range) followed by a dialogue; when the
    dialogue ends in a reference answer, ``answer_start`` is where it begins, and the studies'
    greedy continuations are generated from there (what the model answers under each variant)."""

    ids: Int[Tensor, "1 pos"]
    prompt_stop: int
    tokens: tuple[str, ...]
    answer_start: int | None = None

    @classmethod
    def from_text(cls, model: InterpModel, prompt: str, dialogue: str, answer: str = "") -> "Example":
        if not prompt or not dialogue:
            raise ValueError("both the prompt and the dialogue must be non-empty text")
        full = model.tokenizer(prompt + dialogue + answer).input_ids
        stop = prefix_length(model, full, prompt)
        if not 0 < stop < len(full):
            raise ValueError("the prompt must be followed by at least one dialogue token")
        answer_start = prefix_length(model, full, prompt + dialogue) if answer else None
        if answer_start is not None and not stop < answer_start < len(full):
            raise ValueError("the answer must add at least one token after the dialogue")
        ids = torch.tensor([full])
        return cls(ids, stop, tuple(model.to_str_tokens(ids[0])), answer_start)


def middle_layer(model: InterpModel) -> int:
    return model.cfg.n_layers // 2


def check_layer(model: InterpModel, layer: int) -> int:
    check_layers([layer], model.cfg.n_layers, "layer", "choose layers within that range")
    return layer


def effects_table(effects: Sequence[Effect]) -> tuple[list[str], list[list[Any]]]:
    header = ["variant", "KL(original || variant)", "top-1 agreement", "dialogue loss", "greedy continuation"]
    # An empty continuation means the model ended the sequence at once; say so rather than show a blank.
    return header, [[e.name, e.kl, e.top1_agreement, e.loss, e.continuation or "(end of sequence at once)"]
                    for e in effects]


def continuation_note(example: Example) -> str:
    if example.answer_start is None:
        return "Greedy continuations start at the end of the dialogue."
    return (f"Greedy continuations start where the reference answer does (token {example.answer_start}, after "
            f"{example.tokens[example.answer_start - 1]!r}): what the model answers under each variant.")


def variants_record(variants: dict[str, Sequence[Intervention]]) -> str:
    return "\n".join(f"{name}: {[describe(iv) for iv in ivs] or 'no intervention'}" for name, ivs in variants.items())


def effect_page(model: InterpModel, example: Example, variants: dict[str, Sequence[Intervention]], name: str, title: str,
                 text: str, layer: int, max_new_tokens: int) -> Page:
    effects = intervention_effects(model, example.ids, example.prompt_stop, variants, max_new_tokens=max_new_tokens,
                                   generate_from=example.answer_start)
    maps = torch.stack([attention_patterns(model, example.ids, ivs)[layer].mean(0) for ivs in variants.values()])
    sections = [
        Section("Effects on the dialogue", f"{text} {continuation_note(example)}", tables=[effects_table(effects)],
                preformatted=variants_record(variants)),
        Section(f"Layer {layer} attention under each variant", figures=[figures.layer_heatmaps(
            maps, example.tokens, f"Layer {layer} head-mean attention", example.prompt_stop, layer_names=list(variants))]),
    ]
    moved = "; ".join(f"{e.name}: KL {e.kl:.3f}, top-1 agreement {e.top1_agreement:.0%}" for e in effects[1:])
    return Page(name, title, f"logits moved (KL from the original, dialogue tokens) by {moved}", sections)
