"""The studies, one module each, collected in the order ``interp run`` runs them.

Adding a study means adding one module that defines ``STUDY`` (:class:`interp.studies.base.Study`)
and listing it here: its subcommand, its options, its place in ``interp run`` and its page follow.
"""

from interp.studies import (
    ablation, accuracy, anchors, attention, dropout, emulation, finetuning, heads, removal,
)
from interp.studies.base import Context, Example, Study

STUDIES: dict[str, Study] = {module.STUDY.name: module.STUDY for module in (
    attention, anchors, ablation, removal, emulation, heads, dropout, finetuning, accuracy)}

__all__ = ["STUDIES", "Context", "Example", "Study"]
