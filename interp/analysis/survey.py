"""The attention studies' measures over many examples, one number per example, so that a claim
about them gets an interval: the studies' pages show one example in depth, this shows how far it
holds across held-out ones.

Per example (a prompt range followed by a dialogue that ends in its reference answer):
- ``anchor_share``: the share of the later tokens' attention that lands on the prompt range's
  anchors, the sink left out (:class:`~interp.analysis.anchors.Anchors`), mean over layers;
- ``sink_share``: the same for the first token alone;
- ``anchors``: how many anchors the prompt range has (sink left out);
- ``loss[variant]``: the mean cross-entropy of the reference answer's tokens under each
  intervention of the paper's Figures 3 and 4 (``original`` has none).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, TYPE_CHECKING

from interp.analysis.anchors import Anchors, detect_anchors
from interp.analysis.effects import dialogue_loss
from interp.edits.intervention import Intervention
from interp.edits.interventions import AnchorAblation, PromptRangeRemoval, alternating_layers

if TYPE_CHECKING:
    from interp.model.load import InterpModel
    from interp.studies.base import Example

ORIGINAL = "original"
ANCHORS_REMOVED = "anchors removed"
ONLY_ANCHORS = "only anchors and sink kept"
ALTERNATING = "prompt removed in alternating layers"


@dataclass
class Measures:
    """One model's measures, a list per measure with one entry per example (in example order)."""

    anchor_share: list[float] = field(default_factory=list)
    sink_share: list[float] = field(default_factory=list)
    anchors: list[int] = field(default_factory=list)
    loss: dict[str, list[float]] = field(default_factory=dict)


def variants(anchors: Anchors, prompt_stop: int, span: tuple[int, int]) -> dict[str, tuple[Intervention, ...]]:
    """The interventions of Figures 3 and 4 for one example: its anchors removed from the prompt
    range (the sink kept), only its anchors and the sink kept there, and the prompt range removed in
    the alternating layers of ``span``. An example whose prompt range has no anchor besides the
    sink has nothing to remove: its removal is no intervention."""
    prompt = (0, prompt_stop)
    text = anchors.positions(sink=False)
    return {
        ORIGINAL: (),
        ANCHORS_REMOVED: (AnchorAblation(prompt, text),) if text else (),
        ONLY_ANCHORS: (AnchorAblation(prompt, tuple(sorted({*text, anchors.sink})), keep_only=True),),
        ALTERNATING: (PromptRangeRemoval(prompt, layers=alternating_layers(*span)),),
    }


def survey(model: InterpModel, examples: Sequence[Example], span: tuple[int, int], *, ratio: float = 3.0,
           effects: bool = True) -> Measures:
    """``model``'s measures on each of ``examples`` (each must end in a reference answer);
    ``effects=False`` measures attention only (no intervention losses)."""
    measures = Measures()
    for example in examples:
        if example.answer_start is None:
            raise ValueError("every example needs a reference answer (Example.answer_start) to measure its loss")
        stop = example.prompt_stop
        anchors = detect_anchors(model, example.ids, prompt_range=(0, stop), ratio=ratio)
        measures.anchor_share.append(float(anchors.share(anchors.positions(sink=False)).mean()))
        measures.sink_share.append(float(anchors.sink_share().mean()))
        measures.anchors.append(len(anchors.positions(sink=False)))
        if effects:
            for name, interventions in variants(anchors, stop, span).items():
                measures.loss.setdefault(name, []).append(
                    dialogue_loss(model, example.ids, example.answer_start, interventions))
    return measures
