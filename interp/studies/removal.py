"""Alternating-layer prompt removal (Figure 4)."""

from __future__ import annotations

from typing import Any

from interp.interventions import PromptRangeRemoval, alternating_layers, check_layers
from interp.report.page import Page
from interp.studies.base import Argument, Example, Study, effect_page


def removal_study(model: Any, example: Example, first: int = 4, last: int = 8, max_new_tokens: int = 32) -> Page:
    """The paper's Figure 4: prompt-range attention removed in alternating middle layers."""
    check_layers([first, last], model.cfg.n_layers, "removal span", "pass --first/--last within that range")
    if first > last:
        raise ValueError(f"removal span: --first {first} comes after --last {last}; give first <= last")
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


STUDY = Study(
    "removal", "alternating-layer prompt removal (Figure 4)",
    lambda c: removal_study(c.model, c.example, c.args.first, c.args.last, c.args.max_new_tokens),
    arguments=(
        Argument(("--first",), dict(type=int, default=4, help="first layer of the removal span (default 4)")),
        Argument(("--last",), dict(type=int, default=8, help="last layer of the removal span (default 8)")),
    ),
)
