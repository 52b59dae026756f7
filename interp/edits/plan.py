"""Interventions resolved against a model: checked once, then applied by whichever path runs them.

:func:`plan_edits` checks every parameter against the model (layers exist, the emulation's factor
is positive, the bridge lets a pattern edit act in each edited layer) and returns an
:class:`EditPlan`. Generation, the forced-answer pass, lm-evaluation-harness and the studies take
the plan: its pattern edits go inside the fast path's attention, its hooks onto the bridge. Only
the rows' padding is left to give: the edits are made for it when a batch of rows starts
(``plan.edits(left_pad)``), and a plan made for no padding is reused as it is.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence, TYPE_CHECKING

from jaxtyping import Int
from torch import Tensor

from interp.edits.intervention import Hook, Intervention, LayerEdits, PatternIntervention, as_hooks
from interp.edits.sites import require_pattern_edits

if TYPE_CHECKING:
    from interp.model.load import InterpModel


@dataclass(frozen=True)
class EditPlan:
    """``interventions`` checked against a model of ``n_layers`` layers; equal plans (the same
    interventions) share a batch."""

    interventions: tuple[Intervention, ...]
    n_layers: int
    edited_layers: tuple[int, ...]  # the layers whose pattern is edited
    unpadded: tuple[LayerEdits, list[Hook]] = field(compare=False, repr=False)  # built while checking

    @property
    def patterns_only(self) -> bool:
        """Whether every intervention edits patterns only (the fast path can apply it)."""
        return all(isinstance(iv, PatternIntervention) for iv in self.interventions)

    def _built(self, left_pad: Int[Tensor, " batch"] | None) -> tuple[LayerEdits, list[Hook]]:
        if left_pad is None or not bool(left_pad.any()):
            return self.unpadded
        return _build(self.interventions, self.n_layers, left_pad)

    def edits(self, left_pad: Int[Tensor, " batch"] | None = None) -> LayerEdits:
        """Every pattern edit by layer, in the interventions' order (what the fast path applies);
        raises for a plan with other hooks, which need the bridge (see :attr:`patterns_only`)."""
        if not self.patterns_only:
            raise ValueError("this plan holds interventions that are not pattern edits; apply its hooks() on the bridge")
        return self._built(left_pad)[0]

    def hooks(self, left_pad: Int[Tensor, " batch"] | None = None) -> list[Hook]:
        """Every hook on the bridge, in the interventions' order."""
        return self._built(left_pad)[1]


def _build(interventions: Sequence[Intervention], n_layers: int,
           left_pad: Int[Tensor, " batch"] | None) -> tuple[LayerEdits, list[Hook]]:
    """The pattern edits merged by layer, and every intervention's hooks in order (pattern ones
    included, so that order holds on the bridge when kinds are mixed)."""
    merged: LayerEdits = {}
    hooks: list[Hook] = []
    for iv in interventions:
        if isinstance(iv, PatternIntervention):
            edits = iv.edits(n_layers, left_pad)
            for layer, fns in edits.items():
                merged.setdefault(layer, []).extend(fns)
            hooks += as_hooks(edits)
        elif isinstance(iv, Intervention):
            hooks += iv.hooks(n_layers, left_pad)
        else:
            raise TypeError(f"{iv!r} is not an interp intervention; subclass interp.PatternIntervention (edits of "
                            "the attention pattern) or interp.Intervention (other hooks)")
    return merged, hooks


def plan_edits(model: InterpModel, *interventions: Intervention | EditPlan) -> EditPlan:
    """The interventions checked against ``model``; raises ``ValueError`` naming the parameter
    that does not fit, or :class:`~interp.edits.sites.PatternEditsIgnored` where the model's
    bridge would ignore a pattern edit. A plan given alone comes back as it is."""
    if len(interventions) == 1 and isinstance(interventions[0], EditPlan):
        return interventions[0]
    if any(isinstance(iv, EditPlan) for iv in interventions):
        raise TypeError("pass either one EditPlan or interventions, not both")
    n_layers = model.cfg.n_layers
    unpadded = _build(interventions, n_layers, None)  # type: ignore[arg-type]
    layers = tuple(sorted(unpadded[0]))
    require_pattern_edits(model, layers)
    return EditPlan(tuple(interventions), n_layers, layers, unpadded)  # type: ignore[arg-type]


@contextmanager
def intervene(model: InterpModel, *interventions: Intervention | EditPlan,
              left_pad: Int[Tensor, " batch"] | None = None) -> Iterator[Any]:
    """Attach the interventions' hooks to the bridge for the duration of the block (forward passes
    and generation alike); always detach on exit. They compose in the order given.

    ``left_pad`` gives, per batch row, how many padding tokens precede its first real token,
    so that row-relative ranges land on the right positions in a left-padded batch.
    """
    with model.hooks(fwd_hooks=plan_edits(model, *interventions).hooks(left_pad)):
        yield model
