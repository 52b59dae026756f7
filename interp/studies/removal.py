"""Alternating-layer prompt removal (Figure 4)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from interp.edits.intervention import check_layers
from interp.edits.interventions import PAPER_SPAN, PromptRangeRemoval, alternating_layers
from interp.report.page import Page
from interp.studies.base import Context, Example, effect_page
from interp.validation import UsageError

if TYPE_CHECKING:
    from interp.model.load import InterpModel


def removal_span(n_layers: int, first: int | None = None, last: int | None = None) -> tuple[int, int]:
    """The layers ``first..last`` of the removal, checked against the model. By default the paper's
    4 to 8 where the model is deep enough, else its middle (1 to n-2: a 5-layer model gets 1 to 3)."""
    if n_layers < 3 and (first is None or last is None):
        raise UsageError(f"the removal study needs middle layers, and this model has {n_layers}; give --first and "
                         "--last, or leave the removal study out (run the other studies one by one)")
    default = PAPER_SPAN if n_layers > PAPER_SPAN[1] else (1, n_layers - 2)
    first = default[0] if first is None else first
    last = default[1] if last is None else last
    check_layers([first, last], n_layers, "--first/--last", "give layers in that range")
    if first > last:
        raise UsageError(f"--first {first} comes after --last {last}: the removal span is empty; give first <= last")
    return first, last


def removal_study(model: InterpModel, example: Example, first: int | None = None, last: int | None = None,
                  max_new_tokens: int = 32) -> Page:
    """The paper's Figure 4: prompt-range attention removed in alternating middle layers."""
    first, last = removal_span(model.cfg.n_layers, first, last)
    prompt = (0, example.prompt_stop)
    alternating = alternating_layers(first, last)
    variants = {
        "original (none removed)": [],
        f"alternating layers {list(alternating)}": [PromptRangeRemoval(prompt, layers=alternating)],
        f"all layers {first}-{last}": [PromptRangeRemoval(prompt, layers=tuple(range(first, last + 1)))],
    }
    return effect_page(model, example, variants, "removal.html", "Alternating-layer prompt removal",
                        "Attention from the dialogue to the prompt range is removed in the listed layers.",
                        alternating[0], max_new_tokens)


def run(c: Context) -> Page:
    return removal_study(c.model, c.example, c.config.first, c.config.last, c.config.max_new_tokens)
