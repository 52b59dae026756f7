"""The studies, in the order ``interp run`` runs them: what each is called, what it shows, which
options it reads and whether ``interp run`` includes it.

Adding a study means adding one module here whose ``run(context) -> Page`` computes its numbers
with the library and lays them out with :mod:`interp.report` (:mod:`interp.studies.base` holds what
studies share), and one entry below: its subcommand, options, place in ``interp run`` and page follow.
The registry imports no study: a study's module is imported when it runs, so that the command line
builds its options (and answers ``--help``) without loading torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, TYPE_CHECKING

if TYPE_CHECKING:
    from interp.config import StudyConfig
    from interp.report.page import Page
    from interp.studies.base import Context


@dataclass(frozen=True)
class Study:
    name: str  # also its module's: interp.studies.<name>
    help: str
    options: tuple[str, ...] = ()  # the StudyConfig fields it reads: its subcommand's own options
    in_run: Callable[[StudyConfig], bool] = lambda config: True  # does `interp run` include it?
    command: bool = True  # does it have a subcommand of its own?

    def run(self, context: Context) -> Page:
        return importlib.import_module(f"interp.studies.{self.name}").run(context)


STUDIES: dict[str, Study] = {study.name: study for study in (
    Study("attention", "per-layer attention matrices (Figure 2)", ("zoom_layers",)),
    Study("anchors", "anchor tokens: received attention, detected anchors, share, entropy", ("ratio",)),
    Study("ablation", "anchor-token ablation and keep-only counter-experiment (Figure 3)", ("ratio",)),
    Study("removal", "alternating-layer prompt removal (Figure 4)", ("first", "last")),
    Study("emulation", "depth-scaled top-layer emulation, inspected", ("alpha", "threshold", "last_layer")),
    Study("methods", "the paper's emulation beside ACT, PASTA, ZeroTuning, attention temperature and a sink window"),
    Study("heads", "head probing: sink, previous-token, induction, entropy, ablation effects",
          ("ratio", "ablation", "show", "confirm", "for_method", "select", "select_from", "select_data",
           "select_examples")),
    # The main job's finetuning page compares the shipped pair already (its Figure 5 sections).
    Study("dropout", "attention of two models (without and with attention dropout) and their difference (Figure 5)",
          ("compare_model",), in_run=lambda config: bool(config.compare_model)),
    Study("finetuning", "what fine-tuning did to attention: a base model against its fine-tuned version(s) (--tuned; "
                        "default: the shipped SmolLM2 pair against its base)",
          ("ratio", "tuned"), in_run=lambda config: bool(config.tuned) or not config.model),
    Study("accuracy", "CoT accuracy on held-out structured questions (the structured benchmark), baseline vs each method "
                      "(shipped model only)",
          ("questions", "cot_tokens", "table_pairs", "method"), in_run=lambda config: not config.model,
          command=False),  # `interp accuracy` is the harness's own command
)}

__all__ = ["STUDIES", "Study"]
