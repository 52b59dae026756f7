"""Heads chosen for a run: ACT's and PASTA's ``heads=auto``.

Before the run, each such method's heads are selected by attribution patching
(:func:`interp.analysis.selection.select_heads`) on held-out questions of the same benchmark (none
of the run's own), their reference answers written as log-likelihood scoring writes them (the
run's form; ``cloze`` for a generated run). The chosen heads and how they were chosen are recorded
in the variant's settings file, so that a resume or a rescore applies the same heads without
selecting again, and written beside it (:func:`heads_file`, what ``heads=FILE`` reads).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Collection, Sequence, TYPE_CHECKING

from interp.accuracy.benchmarks import BENCHMARKS
from interp.accuracy.data import Item
from interp.accuracy.methods import HeadsToSelect, Method, method_from_record
from interp.files import read_json
from interp.validation import UsageError

if TYPE_CHECKING:
    from interp.model.load import InterpModel

EXAMPLES = 64  # held-out questions a selection reads


@dataclass(frozen=True)
class HeldOut:
    """Questions of a benchmark that a run does not ask (:func:`held_out_questions` makes them)."""

    benchmark: str
    data: str | None
    asked: Collection[tuple[str, tuple[str, ...]]]  # the run's (question, options)
    pairs: tuple[int, int] | None = None  # structured questions: their tables' sizes

    @cached_property
    def questions(self) -> list[Item]:
        """The first :data:`EXAMPLES` of them, read once (the check that some are left reads them too)."""
        from interp.accuracy.loglik import selection_items

        return selection_items(self.benchmark, self.data, EXAMPLES, exclude=self.asked, pairs=self.pairs)

    @property
    def source(self) -> str:
        from interp.accuracy.loglik import SELECTION_SEED

        if BENCHMARKS[self.benchmark].generated:
            return f"structured questions of seed {SELECTION_SEED}" + (
                f", tables of {self.pairs[0]}-{self.pairs[1]} pairs" if self.pairs else "")
        return f"the last questions of each {self.benchmark} subject's file, none of the run's"


def check_held_out(methods: Sequence[Method], held_out: HeldOut | None) -> None:
    """Refuse, before anything is recorded or computed, a ``heads=auto`` with no question to choose on."""
    for method in methods:
        if isinstance(method, HeadsToSelect):
            if held_out is None:
                raise UsageError(f"--method {method.name}: heads=auto are chosen on held-out questions of the "
                                 "benchmark, and none were given (evaluate(..., held_out=...)); give heads=FILE, or "
                                 "held-out questions")
            if not held_out.questions:
                raise UsageError(f"--method {method.name}: no held-out questions are left to choose heads on (the run "
                                 "asks every question of the benchmark); lower --limit, or choose them with `interp "
                                 f"heads --for {method.kind}` on other questions and give heads=FILE")


def prepare(model: InterpModel, methods: Sequence[Method], names: Sequence[str], out: Path,
            held_out: HeldOut | None, form: str, progress: bool = True) -> list[Method]:
    """``methods`` with every ``heads=auto`` resolved: the heads its variant's settings file
    records, or else selected now on ``held_out.questions``."""
    return [_resolved(model, method, name, out, held_out, form, progress) if isinstance(method, HeadsToSelect)
            else method for method, name in zip(methods, names)]


def _resolved(model: InterpModel, method: HeadsToSelect, name: str, out: Path, held_out: HeldOut | None,
              form: str, progress: bool) -> Method:
    from interp.accuracy.loglik import references
    from interp.analysis.selection import METHODS, select_heads

    settings = out / f"{name}.settings.json"
    recorded = read_json(settings).get("method") if settings.is_file() else None
    if recorded and "selection" in recorded:  # a resume: the heads this variant was answered with
        return method_from_record(recorded)
    items = held_out.questions if held_out is not None else []
    if not items:
        check_held_out([method], held_out)  # raises, naming what is missing
    refs = [ref for ref in references(model, items, form) if len(ref.ids) <= int(model.cfg.n_ctx)]  # fit the model
    if not refs:
        raise UsageError(f"--method {name}: every held-out question exceeds the model's context of {model.cfg.n_ctx} "
                         f"tokens; choose the heads with `interp heads --for {method.kind}` and give heads=FILE")
    print(f"{name}: choosing heads on {len(refs)} held-out questions ({form} references)", flush=True)
    chosen = select_heads(model, method.kind, refs, method.select,
                          parameters={key: value for key, value in method.parameters if key in METHODS[method.kind][1]},
                          progress=progress)
    if not chosen.heads:
        raise UsageError(f"--method {name}: none of the {method.select} heads confirmed lowers the loss of the "
                         f"held-out answers, so there is no head to edit; raise select=, or give heads=FILE")
    chosen.save(out / heads_file(name))
    print(f"{name}: heads {', '.join(f'{l}.{h}' for l, h in chosen.chosen)} (of {method.select} confirmed; rank "
          f"correlation of estimate and exact {chosen.agreement():.2f})", flush=True)
    return method.with_heads(_record(chosen, form, method.select, held_out.source))


def heads_file(variant: str) -> str:
    """The name of the head-set file written beside a variant (no comma: ``heads=FILE`` takes it)."""
    return variant.replace(",", "_") + ".heads.json"


def _record(chosen: Any, form: str, select: int, source: str) -> dict[str, Any]:
    """What the settings file keeps of a selection (no timings: a resume compares it whole)."""
    return {
        "heads": {str(layer): heads for layer, heads in chosen.heads.items()},
        "select": select, "form": form, "held_out": source, "examples": chosen.examples,
        "base_loss": chosen.base_loss,
        "confirmed": [{"head": f"{l}.{h}", "estimate": float(chosen.estimate[l, h]), "exact": float(chosen.exact[l, h])}
                      for l, h in sorted(chosen.confirmed, key=lambda head: float(chosen.exact[head]))],
    }


def held_out_questions(benchmark: str, data: str | Path | None, run: Sequence[Item],
                       pairs: tuple[int, int] | None = None) -> HeldOut:
    """Questions of ``benchmark`` (its files in ``data``) that a run of ``run`` does not ask, for
    its ``heads=auto``."""
    return HeldOut(benchmark, None if data is None else str(data),
                   frozenset((item.question, item.options) for item in run), pairs)
