"""The harness's variants: which interventions each question is answered with.

A method is written on the command line as ``KIND`` or ``KIND:key=value,key=value``:

- ``emulation`` (``alpha``, ``threshold``, ``last_layer``, ``renormalise``, ``boost_all``): the
  top-layer emulation, the same for every question.
- ``prompt-removal`` (``first``, ``last``, ``step``, ``renormalise``): attention to the
  instruction removed in layers ``first..last`` every ``step`` (default 4, 6, 8).
- ``anchor-ablation`` and ``keep-anchors`` (``ratio``, ``renormalise``): the anchors are detected
  per question inside its instruction (the prompt range), then removed, or kept alone.
- Peers, the same for every question: ``temperature`` (``temperature``: the attention's),
  ``sink-scaling`` (``gamma``: ZeroTuning's first-token column), ``sink-window`` (``sinks``,
  ``window``: StreamingLLM's cache as a pattern edit), ``act`` (``heads``, ``beta``,
  ``threshold``: ACT's sink calibration); and per question, ``pasta`` (``heads``, ``alpha``,
  ``mode``: PASTA steering toward the prompt range). Their ``heads`` is a head-set file, a
  published set's name, or ``auto``: chosen before the run on held-out questions
  (:mod:`interp.accuracy.selected`; ``select``: how many heads are confirmed, default 8).

The prompt range of a question is its instruction, counted in tokens from its first token.
A method of one's own is made a kind by :func:`register_method` (from Python), or by a package's
entry point in the group ``interp.methods`` (from the command line).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from importlib.metadata import entry_points
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence, TYPE_CHECKING

import torch

from interp.validation import UsageError, checked, ratio

from interp.accuracy.prompts import PromptRange
from interp.analysis.anchors import detect_anchors
from interp.edits.intervention import Intervention, describe
from interp.edits.interventions import (
    PAPER_SPAN, PAPER_STEP, AnchorAblation, AttentionSteering, AttentionTemperature, PromptRangeRemoval,
    SinkCalibration, SinkScaling, SinkWindow, TopLayerEmulation, alternating_layers, head_set,
)
from interp.edits.presets import HEAD_PRESETS

if TYPE_CHECKING:
    from interp.model.load import InterpModel


class Method(Protocol):
    name: str  # the variant's name, e.g. "emulation(alpha=0.1)"
    kind: str  # e.g. "emulation"
    given: tuple[tuple[str, Any], ...]  # the parameters as given (what a sweep varies)

    def interventions(self, model: InterpModel, ids: Sequence[int],
                      prompt_range: tuple[int, int]) -> tuple[Intervention, ...]: ...

    def record(self) -> dict[str, Any]: ...


def _name(kind: str, params: dict[str, Any]) -> str:
    # File-name safe on every system (no ':' or '/'), and readable as the spec it came from.
    # A file (heads=path/to/set.json) is named by its stem.
    shown = {k: Path(v).stem if isinstance(v, str) and ("/" in v or "\\" in v or v.endswith(".json")) else v
             for k, v in params.items()}
    return kind + ("(" + ",".join(f"{k}={v}" for k, v in shown.items()) + ")" if params else "")


def _fields_record(method: Any) -> dict[str, Any]:
    """A method whose fields are its parameters, recorded as they are."""
    return {"method": method.name, **dataclasses.asdict(method), "given": dict(method.given)}


@dataclass(frozen=True)
class FixedMethod:
    """The same interventions for every question (e.g. the emulation)."""

    fixed: tuple[Intervention, ...]
    name: str
    kind: str = "fixed"
    given: tuple[tuple[str, Any], ...] = ()

    def interventions(self, model: InterpModel, ids: Sequence[int],
                      prompt_range: tuple[int, int]) -> tuple[Intervention, ...]:
        return self.fixed

    def record(self) -> dict[str, Any]:
        return {"method": self.name, "kind": self.kind, "given": dict(self.given),
                "interventions": [describe(iv) for iv in self.fixed]}


@dataclass(frozen=True)
class PromptRangeRemovalMethod:
    """Attention to each question's instruction removed in alternating layers."""

    first: int = PAPER_SPAN[0]
    last: int = PAPER_SPAN[1]
    step: int = PAPER_STEP
    renormalise: bool = False
    name: str = "prompt-removal"
    kind: str = "prompt-removal"
    given: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.first <= self.last:
            raise UsageError(f"method prompt-removal: first={self.first}, last={self.last} is an empty or negative "
                             "span of layers; give 0 <= first <= last")
        if self.step < 1:
            raise UsageError(f"method prompt-removal: step={self.step}; give a step of at least 1 (the paper: 2)")

    def interventions(self, model: InterpModel, ids: Sequence[int],
                      prompt_range: tuple[int, int]) -> tuple[Intervention, ...]:
        layers = alternating_layers(self.first, self.last, self.step)
        return (PromptRangeRemoval(prompt_range, layers=layers, renormalise=self.renormalise),)

    def record(self) -> dict[str, Any]:
        return _fields_record(self)


@dataclass(frozen=True)
class AnchorAblationMethod:
    """Anchors detected inside each question's instruction, then removed (or kept alone)."""

    keep_only: bool
    ratio: float = 3.0
    sink: bool = True  # the first token (an attention sink) counts among the anchors when detected as one
    renormalise: bool = False
    name: str = "anchor-ablation"
    kind: str = "anchor-ablation"
    given: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        checked(f"method {self.kind}: ratio", ratio, str(self.ratio))

    def interventions(self, model: InterpModel, ids: Sequence[int],
                      prompt_range: tuple[int, int]) -> tuple[Intervention, ...]:
        anchors = detect_anchors(model, torch.tensor([list(ids)]), prompt_range=prompt_range, ratio=self.ratio)
        return (AnchorAblation(prompt_range, anchors.positions(sink=self.sink), keep_only=self.keep_only,
                               renormalise=self.renormalise),)

    def record(self) -> dict[str, Any]:
        return _fields_record(self)


@dataclass(frozen=True)
class SteeringMethod:
    """PASTA on each question: a span of its prompt emphasised (the other input keys weighted by
    ``alpha``) in the heads of a head set; keys generated after the prompt are not scaled.
    ``span``: ``instruction`` (the prompt range) or ``question`` (the question and its options; in
    log-likelihood scoring, which writes no instruction, both are the question)."""

    heads: Any
    alpha: float = 0.01
    mode: str = "exclude"
    span: str = "instruction"
    name: str = "pasta"
    kind: str = "pasta"
    given: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.span not in SPANS:
            raise ValueError(f"span={self.span!r}; choose {' or '.join(SPANS)}")
        AttentionSteering((0, 1), self.heads, self.alpha, self.mode)  # the parameters checked once, here

    def interventions(self, model: InterpModel, ids: Sequence[int],
                      prompt_range: PromptRange) -> tuple[Intervention, ...]:
        whole = prompt_range if isinstance(prompt_range, PromptRange) else PromptRange(*prompt_range)
        span = whole.question if self.span == "question" else tuple(whole)
        return (AttentionSteering(span, self.heads, self.alpha, self.mode, input_length=len(ids)),)

    def record(self) -> dict[str, Any]:
        return _fields_record(self)


SPANS = ("instruction", "question")  # what PASTA can emphasise


AUTO = "auto"  # heads=auto: the heads chosen on held-out questions before the run
SELECT = 8  # heads=auto: the heads confirmed by exact evaluation


@dataclass(frozen=True)
class HeadsToSelect:
    """ACT or PASTA with ``heads=auto`` before its heads are chosen: the harness selects them
    (:func:`interp.accuracy.selected.prepare`) and answers with :class:`SelectedHeads`."""

    parameters: tuple[tuple[str, Any], ...]  # the method's own (beta, threshold; alpha, mode)
    select: int = SELECT
    name: str = ""
    kind: str = ""
    given: tuple[tuple[str, Any], ...] = ()

    def interventions(self, model: InterpModel, ids: Sequence[int],
                      prompt_range: tuple[int, int]) -> tuple[Intervention, ...]:
        raise ValueError("heads=auto are chosen on held-out questions before the run "
                         "(interp.accuracy.selected.prepare, which evaluate calls); this method has not been prepared")

    def record(self) -> dict[str, Any]:
        return {"method": self.name, "kind": self.kind, "given": dict(self.given)}

    def with_heads(self, selection: dict[str, Any]) -> "SelectedHeads":
        """The method on the heads ``selection`` chose (its ``heads``: ``{layer: [head, ...]}``)."""
        build, _ = KINDS[self.kind]
        chosen = build({**dict(self.parameters), "heads": head_set(selection["heads"], f"method {self.name}")})
        return SelectedHeads(chosen, selection, self)


@dataclass(frozen=True)
class SelectedHeads:
    """A method on the heads that selection chose for this run, with how they were chosen (the
    record a resume and a rescore rebuild it from, without selecting again); named as asked."""

    method: Method
    selection: dict[str, Any] = dataclasses.field(compare=False)
    asked: HeadsToSelect

    @property
    def name(self) -> str:
        return self.asked.name

    @property
    def kind(self) -> str:
        return self.asked.kind

    @property
    def given(self) -> tuple[tuple[str, Any], ...]:
        return self.asked.given

    def interventions(self, model: InterpModel, ids: Sequence[int],
                      prompt_range: tuple[int, int]) -> tuple[Intervention, ...]:
        return self.method.interventions(model, ids, prompt_range)

    def record(self) -> dict[str, Any]:
        return {**self.method.record(), "method": self.name, "kind": self.kind, "given": dict(self.given),
                "selection": self.selection}


def _checked(build: Callable[[], Any], kind: str) -> Any:
    try:
        return build()
    except ValueError as err:
        raise UsageError(f"method {kind}: {err}") from None


def _on_heads(kind: str, build: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    """A head-editing kind's builder: ``heads=auto`` left to selection (the other parameters
    checked now, on no heads), any other ``heads`` built at once."""
    def make(params: dict[str, Any]) -> Any:
        heads, select = params.get("heads"), params.get("select")
        rest = {key: value for key, value in params.items() if key not in ("heads", "select")}
        if heads is None:
            raise UsageError(f"method {kind}: it needs heads=FILE (a JSON file of {{layer: [head, ...]}}), a published "
                             f"set ({', '.join(HEAD_PRESETS)}) or heads=auto (chosen on held-out questions before the "
                             "run): ACT and PASTA edit chosen heads only")
        if heads != AUTO:
            if select is not None:
                raise UsageError(f"method {kind}: select={select} counts the heads heads=auto confirms; with "
                                 f"heads={heads} nothing is selected: leave select out")
            return _checked(lambda: build(params), kind)
        if select is not None and select < 1:
            raise UsageError(f"method {kind}: select={select}; give at least 1 head to confirm")
        _checked(lambda: build({**rest, "heads": {}}), kind)
        return HeadsToSelect(tuple(rest.items()), SELECT if select is None else select)
    return make


# kind -> (builder from the parsed parameters, {parameter: type})
KINDS: dict[str, tuple[Any, dict[str, type]]] = {
    "emulation": (lambda p: FixedMethod((TopLayerEmulation(**p),), "", "emulation"),
                  {"alpha": float, "threshold": float, "last_layer": int, "renormalise": bool, "boost_all": bool}),
    "prompt-removal": (lambda p: PromptRangeRemovalMethod(**p, kind="prompt-removal"),
                       {"first": int, "last": int, "step": int, "renormalise": bool}),
    "anchor-ablation": (lambda p: AnchorAblationMethod(False, **p, kind="anchor-ablation"),
                        {"ratio": float, "sink": bool, "renormalise": bool}),
    "keep-anchors": (lambda p: AnchorAblationMethod(True, **p, kind="keep-anchors"),
                     {"ratio": float, "sink": bool, "renormalise": bool}),
    # peers of the paper's method: the same for every question
    "temperature": (lambda p: FixedMethod((AttentionTemperature(**p),), "", "temperature"), {"temperature": float}),
    "sink-scaling": (lambda p: FixedMethod((SinkScaling(**{"gamma": 1.0, **p}),), "", "sink-scaling"), {"gamma": float}),
    "sink-window": (lambda p: FixedMethod((SinkWindow(**p),), "", "sink-window"), {"sinks": int, "window": int}),
    "act": (_on_heads("act", lambda p: FixedMethod((SinkCalibration(**p),), "", "act")),
            {"heads": str, "select": int, "beta": float, "threshold": float}),
    "pasta": (_on_heads("pasta", lambda p: SteeringMethod(**p)),
              {"heads": str, "select": int, "alpha": float, "mode": str, "span": str}),
}


PLUGINS = "interp.methods"  # the entry-point group whose modules register kinds when loaded


def register_method(kind: str, build: Callable[[dict[str, Any]], Method], parameters: dict[str, type] | None = None) -> None:
    """Make ``kind`` a method wherever one is named: ``--method KIND:key=value``,
    ``evaluate(methods=["KIND"])``, and a rescore, which rebuilds each variant from its record.
    ``build`` makes the method from the parsed parameters (``parameters`` maps each one's name to
    its type: int, float, bool or str), for instance
    ``lambda p: FixedMethod((MyEdit(**p),), "")`` (its name and kind are set from the spec).

    From the command line, which has not imported one's module, a package names that module in
    its ``pyproject.toml`` (``[project.entry-points."interp.methods"] mine = "my_package.methods"``);
    it is imported, and so registers its kinds, the first time an unknown kind is asked for."""
    if not kind or any(c in kind for c in ":,=()/ "):
        raise ValueError(f"method kind {kind!r} must be a non-empty name without ':', ',', '=', '(', ')', '/' or spaces")
    if kind in KINDS and KINDS[kind][0] is not build:
        raise ValueError(f"method kind {kind!r} is already registered; choose another name")
    KINDS[kind] = (build, dict(parameters or {}))


def _load_plugins() -> None:
    for point in entry_points(group=PLUGINS):
        point.load()


def _value(kind: str, key: str, text: str, kind_of: type) -> Any:
    if kind_of is bool:
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"method {kind!r}: {key}={text!r} must be true or false")
        return text.lower() in ("true", "1")
    try:
        value = kind_of(text)
    except ValueError:
        raise UsageError(f"method {kind!r}: {key}={text!r} is not a valid {kind_of.__name__}") from None
    if kind_of is float and not math.isfinite(value):
        raise UsageError(f"method {kind!r}: {key}={text!r} is not a finite number")
    return value


def method_from_record(record: dict[str, Any]) -> Method:
    """The method a variant's settings file records (``method.record()``), built again (heads
    chosen by selection: the recorded ones)."""
    given = ",".join(f"{key}={value}" for key, value in record.get("given", {}).items())
    method = parse_method(f"{record['kind']}:{given}" if given else record["kind"])
    if isinstance(method, HeadsToSelect) and "selection" in record:
        return method.with_heads(record["selection"])
    return method


def parse_method(spec: str) -> Method:
    """``emulation``, ``emulation:alpha=0.1``, ``prompt-removal:first=2,last=6``, ``keep-anchors:ratio=4``."""
    kind, _, rest = spec.strip().partition(":")
    if kind not in KINDS:
        _load_plugins()
    if kind not in KINDS:
        raise ValueError(f"unknown method {kind!r} in {spec!r}; choose from {', '.join(KINDS)} "
                         "(parameters as KIND:key=value,key=value; a method of one's own: register_method)")
    build, allowed = KINDS[kind]
    params: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, text = part.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or key not in allowed:
            raise ValueError(f"method {kind!r}: {part!r} is not a parameter; it takes "
                             f"{', '.join(f'{k}=...' for k in allowed)}")
        params[key] = _value(kind, key, text.strip(), allowed[key])
    return dataclasses.replace(build(params), name=_name(kind, params), kind=kind, given=tuple(params.items()))
