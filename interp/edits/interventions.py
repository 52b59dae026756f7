"""The attention interventions as small values: the paper's three, the peer methods' (attention
temperature, ZeroTuning's sink scaling, a StreamingLLM window, ACT's sink calibration, PASTA's
steering), :class:`PerRow` (a batch whose rows differ), and :class:`HeadAblation`.

Each is a frozen dataclass (it describes itself, so a report can say exactly what was done) of one
of the two kinds in :mod:`interp.edits.intervention`: all but one edit attention patterns
(:class:`~interp.edits.intervention.PatternIntervention`), their edit functions in
:mod:`interp.edits.patterns`; :class:`HeadAblation` acts on the heads' outputs. Attach them with
:func:`interp.edits.plan.intervene`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from interp.edits import patterns
from interp.edits.presets import HEAD_PRESETS
from interp.edits.intervention import (
    Hook, HookFn, Intervention, LayerEdits, PatternIntervention, check_layers, queries_from, row_left_pad,
)

PAPER_SPAN = (4, 8)  # the paper's alternating-layer removal: layers 4 to 8 of LLaMA-2-7B's 32 ...
PAPER_STEP = 2  # ... every other one (4, 6, 8): the one place these numbers are written


def alternating_layers(first: int = PAPER_SPAN[0], last: int = PAPER_SPAN[1], step: int = PAPER_STEP) -> tuple[int, ...]:
    """Every ``step``-th layer from ``first`` to ``last`` inclusive (the paper's 4, 6, 8)."""
    return tuple(range(first, last + 1, step))


def _check_range(prompt_range: tuple[int, int], what: str) -> None:
    start, stop = prompt_range
    if not 0 <= start < stop:
        raise ValueError(
            f"{what}: prompt_range={prompt_range} is empty or negative; give (start, stop) "
            "token positions with 0 <= start < stop, counted from each row's first real token"
        )


def _queries(left_pad: Tensor, pattern: Tensor, stop: int, queries: Literal["after", "all"]) -> Tensor:
    if queries == "all":
        return torch.ones(pattern.shape[0], pattern.shape[-2], dtype=torch.bool, device=pattern.device)
    return queries_from(left_pad, pattern, stop)


@dataclass(frozen=True)
class TopLayerEmulation(PatternIntervention):
    """The paper's depth-scaled top-layer emulation.

    Layer 0's pattern defines ``M = A_0 > threshold`` per row and head, each query's own key
    position excluded; every later layer ``l`` scales the masked entries by
    ``1 + alpha * (1 - l / h)``, ``h = last_layer`` (default: the model's last layer index; the
    released code hard-codes 31, right for 7B only). No renormalisation unless asked. The mask is
    recomputed on every forward, so at each KV-cached decoding step it is the new query's row.
    ``boost_all`` scales every entry instead of the masked ones (the released code's
    ``boosting_self``).
    """

    alpha: float = 0.2
    threshold: float = 0.01
    last_layer: int | None = None
    renormalise: bool = False
    boost_all: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 1:
            raise ValueError(
                f"TopLayerEmulation: threshold={self.threshold} is outside (0, 1); the mask A_0 > threshold "
                "needs a threshold strictly between 0 and 1 (the paper: 0.01)"
            )
        if self.last_layer is not None and self.last_layer <= 0:
            raise ValueError(f"TopLayerEmulation: last_layer must be a positive layer index, got {self.last_layer}")

    def scale(self, layer: int, n_layers: int) -> float:
        return patterns.depth_scale(layer, self.alpha, self.last_layer or n_layers - 1)

    def check(self, n_layers: int) -> None:
        """Raise unless the factor ``1 + alpha (1 - l/h)`` is positive in every scaled layer."""
        if n_layers < 2:
            raise ValueError("TopLayerEmulation needs a model with at least 2 layers")
        if self.last_layer is not None and self.last_layer >= n_layers:
            raise ValueError(f"TopLayerEmulation: last_layer={self.last_layer} is not a layer of this {n_layers}-layer "
                             f"model; give h from 1 to {n_layers - 1} (default: the last, {n_layers - 1})")
        h = self.last_layer or n_layers - 1
        slopes = [1 - layer / h for layer in range(1, n_layers)]  # factor = 1 + alpha * slope
        low = max((-1 / c for c in slopes if c > 0), default=-math.inf)
        high = min((-1 / c for c in slopes if c < 0), default=math.inf)
        if not low < self.alpha < high:
            layer = min(range(1, n_layers), key=lambda l: self.scale(l, n_layers))
            raise ValueError(
                f"TopLayerEmulation: alpha={self.alpha} makes the factor 1 + alpha (1 - l/h) = "
                f"{self.scale(layer, n_layers):.3g} at layer {layer} (h={h}), which is not positive; with "
                f"h={h} on {n_layers} layers alpha must lie in ({low:.3g}, {high:.3g}) (the paper: 0.2)"
            )

    def edits(self, n_layers: int, left_pad: Tensor | None = None) -> LayerEdits:
        self.check(n_layers)
        state: dict[str, Tensor] = {}

        def record_mask(pattern: Tensor, hook: Any) -> Tensor:
            state["mask"] = patterns.emulation_mask(pattern, self.threshold)
            return pattern

        def make_scaler(layer: int) -> HookFn:
            factor = self.scale(layer, n_layers)
            if not (self.boost_all or self.renormalise):  # the paper's edit, as a value the fused path recognises
                return patterns.MaskedScale(lambda: state["mask"], factor)

            def scale(pattern: Tensor, hook: Any) -> Tensor:
                mask = torch.ones_like(pattern, dtype=torch.bool) if self.boost_all else state["mask"]
                edited = patterns.scale_masked(pattern, mask, factor)
                return patterns.renormalise(edited) if self.renormalise else edited

            return scale

        return {0: [record_mask], **{layer: [make_scaler(layer)] for layer in range(1, n_layers)}}


@dataclass(frozen=True)
class PromptRangeRemoval(PatternIntervention):
    """Remove attention to the prompt token range in chosen layers (default: 4, 6 and 8).

    ``prompt_range = (start, stop)`` counts from each row's first real token. By default only
    queries after the range lose it (``queries="after"``): the prompt is still read while it is
    being encoded, and what is measured is what the later text takes from it.
    """

    prompt_range: tuple[int, int]
    layers: tuple[int, ...] = field(default_factory=alternating_layers)
    renormalise: bool = False
    queries: Literal["after", "all"] = "after"

    def edits(self, n_layers: int, left_pad: Tensor | None = None) -> LayerEdits:
        _check_range(self.prompt_range, type(self).__name__)
        check_layers(self.layers, n_layers, type(self).__name__)
        start, stop = self.prompt_range

        def remove(pattern: Tensor, hook: Any) -> Tensor:
            row_pad = row_left_pad(left_pad, pattern)
            keys = patterns.positions_in_range(
                row_pad, torch.arange(pattern.shape[-1], device=pattern.device), start, stop
            )
            queries = _queries(row_pad, pattern, stop, self.queries)
            return patterns.remove_keys(pattern, keys, queries, self.renormalise)

        return {layer: [remove] for layer in self.layers}


@dataclass(frozen=True)
class AnchorAblation(PatternIntervention):
    """Within the prompt range, remove attention to the anchor tokens, or keep only them.

    ``anchors`` are row-relative token positions (e.g. from :func:`interp.detect_anchors`).
    ``keep_only=False`` removes them; ``keep_only=True`` is the counter-experiment: every other
    prompt-range key is removed and only the anchors stay. ``layers=None`` means all layers.
    """

    prompt_range: tuple[int, int]
    anchors: tuple[int, ...]
    keep_only: bool = False
    layers: tuple[int, ...] | None = None
    renormalise: bool = False
    queries: Literal["after", "all"] = "after"

    def __post_init__(self) -> None:
        object.__setattr__(self, "anchors", tuple(int(a) for a in self.anchors))
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(int(layer) for layer in self.layers))

    def edits(self, n_layers: int, left_pad: Tensor | None = None) -> LayerEdits:
        name = type(self).__name__
        _check_range(self.prompt_range, name)
        start, stop = self.prompt_range
        outside = [a for a in self.anchors if not start <= a < stop]
        if outside:
            raise ValueError(
                f"{name}: anchors {outside} lie outside prompt_range={self.prompt_range}; "
                "pass anchor positions inside the range"
            )
        layers = tuple(range(n_layers)) if self.layers is None else self.layers
        check_layers(layers, n_layers, name)
        anchors = torch.tensor(self.anchors, dtype=torch.long)

        def ablate(pattern: Tensor, hook: Any) -> Tensor:
            row_pad = row_left_pad(left_pad, pattern)
            key_pos = torch.arange(pattern.shape[-1], device=pattern.device)
            in_range = patterns.positions_in_range(row_pad, key_pos, start, stop)
            is_anchor = patterns.positions_in_set(row_pad, key_pos, anchors)
            keys = in_range & ~is_anchor if self.keep_only else in_range & is_anchor
            queries = _queries(row_pad, pattern, stop, self.queries)
            return patterns.remove_keys(pattern, keys, queries, self.renormalise)

        return {layer: [ablate] for layer in layers}


@dataclass(frozen=True)
class HeadAblation(Intervention):
    """Replace attention heads' outputs (``hook_z``, before the output projection) by zero, or by
    given mean vectors (``means[(layer, head)]``, e.g. from :func:`interp.analysis.heads.mean_head_outputs`)."""

    heads: tuple[tuple[int, int], ...]
    means: dict[tuple[int, int], Tensor] | None = None

    def hooks(self, n_layers: int, left_pad: Tensor | None = None) -> list[Hook]:
        check_layers(sorted({layer for layer, _ in self.heads}), n_layers, type(self).__name__)
        missing = [h for h in self.heads if self.means is not None and h not in self.means]
        if missing:
            raise ValueError(f"HeadAblation: no mean given for heads {missing}; pass means for every head, or none to zero them")
        by_layer: dict[int, list[int]] = {}
        for layer, head in self.heads:
            by_layer.setdefault(layer, []).append(head)

        def make(layer: int) -> HookFn:
            def ablate(z: Tensor, hook: Any) -> Tensor:  # z: batch pos head d_head
                bad = [h for h in by_layer[layer] if not 0 <= h < z.shape[2]]
                if bad:
                    raise ValueError(f"HeadAblation: heads {bad} do not exist in layer {layer} ({z.shape[2]} heads)")
                z = z.clone()
                for head in by_layer[layer]:
                    z[:, :, head] = 0.0 if self.means is None else self.means[(layer, head)].to(z)
                return z

            return ablate

        return [(f"blocks.{layer}.attn.hook_z", make(layer)) for layer in by_layer]


@dataclass(frozen=True)
class PerRow(PatternIntervention):
    """Row ``i`` of the batch under ``by_row[i]`` (each a tuple of pattern interventions; an
    empty one is the original model): several edited versions of one text in one batched pass
    instead of one pass each. Each row's edits are built for it and applied to that row's slice
    of the pattern, so state an intervention keeps within a forward (the emulation's layer-0
    mask) stays its own."""

    by_row: tuple[tuple[Any, ...], ...]

    def edits(self, n_layers: int, left_pad: Tensor | None = None) -> LayerEdits:
        if not all(isinstance(iv, PatternIntervention) for ivs in self.by_row for iv in ivs):
            raise ValueError("PerRow batches pattern interventions only (PatternIntervention); run the others apart")
        rows: list[LayerEdits] = []
        for row, ivs in enumerate(self.by_row):
            mine: LayerEdits = {}
            for iv in ivs:
                for layer, fns in iv.edits(n_layers, None if left_pad is None else left_pad[row : row + 1]).items():
                    mine.setdefault(layer, []).extend(fns)
            rows.append(mine)

        def make(layer: int) -> HookFn:
            def edit(pattern: Tensor, hook: Any) -> Tensor:
                if pattern.shape[0] != len(rows):
                    raise ValueError(f"PerRow has {len(rows)} variants but the batch has {pattern.shape[0]} rows; "
                                     "give one row per variant")
                out = []
                for row, mine in enumerate(rows):
                    part = pattern[row : row + 1]
                    for fn in mine.get(layer, []):
                        part = fn(part, hook=hook)
                    out.append(part)
                return torch.cat(out)

            return edit

        layers = sorted({layer for mine in rows for layer in mine})
        return {layer: [make(layer)] for layer in layers}


def _layers_or_all(layers: tuple[int, ...] | None, n_layers: int, what: str) -> tuple[int, ...]:
    chosen = tuple(range(n_layers)) if layers is None else tuple(layers)
    check_layers(chosen, n_layers, what)
    return chosen


@dataclass(frozen=True)
class AttentionTemperature(PatternIntervention):
    """Every row of the pattern raised to ``1 / temperature`` and renormalised, in ``layers`` (all:
    ``None``): the scores divided by ``temperature`` before the softmax. Below 1 sharpens, above 1
    flattens."""

    temperature: float
    layers: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not self.temperature > 0 or not math.isfinite(self.temperature):
            raise ValueError(f"AttentionTemperature: temperature={self.temperature}; give a positive number (1: unchanged)")
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(int(layer) for layer in self.layers))

    def edits(self, n_layers: int, left_pad: Tensor | None = None) -> LayerEdits:
        layers = _layers_or_all(self.layers, n_layers, type(self).__name__)
        return {layer: [lambda pattern, hook: patterns.with_temperature(pattern, self.temperature)] for layer in layers}


@dataclass(frozen=True)
class SinkScaling(PatternIntervention):
    """ZeroTuning's edit (Han et al., 2025): the first token's column, or the keys of ``span``
    (``(start, stop)`` counted from each row's first real token), multiplied by ``gamma`` in
    ``layers`` and ``heads`` (all: ``None``), every row renormalised."""

    gamma: float
    layers: tuple[int, ...] | None = None
    heads: tuple[int, ...] | None = None
    span: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not self.gamma >= 0 or not math.isfinite(self.gamma):
            raise ValueError(f"SinkScaling: gamma={self.gamma}; give a number of at least 0 (1: unchanged)")
        for name in ("layers", "heads", "span"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(int(v) for v in value))

    def edits(self, n_layers: int, left_pad: Tensor | None = None) -> LayerEdits:
        name = type(self).__name__
        layers = _layers_or_all(self.layers, n_layers, name)
        start, stop = self.span if self.span is not None else (0, 1)
        _check_range((start, stop), name)

        def make(layer: int) -> HookFn:
            def scale(pattern: Tensor, hook: Any) -> Tensor:
                row_pad = row_left_pad(left_pad, pattern)
                keys = patterns.positions_in_range(row_pad, torch.arange(pattern.shape[-1], device=pattern.device),
                                                   start, stop)
                heads = None if self.heads is None else _heads_mask(self.heads, pattern, name, layer)
                return patterns.scale_columns(pattern, keys, self.gamma, heads)

            return scale

        return {layer: [make(layer)] for layer in layers}


@dataclass(frozen=True)
class SinkWindow(PatternIntervention):
    """The StreamingLLM cache (Xiao et al., 2024) as a pattern edit: each query attends to its row's
    first ``sinks`` tokens and its ``window`` most recent ones (its own included; ``None``: its own
    alone), the rest get zero weight and rows are renormalised, in ``layers`` (all: ``None``).
    Positions are not re-indexed as StreamingLLM's rolling cache does: the kept keys keep their
    original rotary positions."""

    sinks: int = 4
    window: int | None = None
    layers: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.sinks < 0 or (self.window is not None and self.window < 1):
            raise ValueError(f"SinkWindow: sinks={self.sinks}, window={self.window}; give sinks >= 0 and window >= 1")
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(int(layer) for layer in self.layers))

    def edits(self, n_layers: int, left_pad: Tensor | None = None) -> LayerEdits:
        layers = _layers_or_all(self.layers, n_layers, type(self).__name__)

        def keep(pattern: Tensor, hook: Any) -> Tensor:
            row_pad = row_left_pad(left_pad, pattern)
            kept = patterns.window_keys(row_pad, pattern.shape[-2], pattern.shape[-1], self.sinks, self.window or 1)
            return patterns.renormalise(pattern * kept[:, None].to(pattern.dtype))

        return {layer: [keep] for layer in layers}


HeadSet = tuple[tuple[int, tuple[int, ...]], ...]  # ((layer, (head, ...)), ...): hashable, so plans compare


def head_set(heads: Any, what: str) -> HeadSet:
    """``{layer: [head, ...]}`` (or its items, a JSON file of it as :func:`interp.select_heads`
    writes, or a published set's name in :data:`interp.edits.presets.HEAD_PRESETS`) as a sorted,
    hashable head set."""
    if isinstance(heads, str) and heads in HEAD_PRESETS:
        heads = HEAD_PRESETS[heads]
    elif isinstance(heads, (str, Path)):
        import json

        try:
            heads = json.loads(Path(heads).read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"{what}: heads={str(heads)!r} is neither a readable JSON file of {{layer: [head, ...]}} "
                             f"({err}) nor a published set ({', '.join(HEAD_PRESETS)})") from None
        heads = heads.get("heads", heads) if isinstance(heads, dict) else heads
    items = heads.items() if isinstance(heads, dict) else heads
    try:
        return tuple(sorted((int(layer), tuple(sorted(int(h) for h in chosen))) for layer, chosen in items))
    except (TypeError, ValueError):
        raise ValueError(f"{what}: heads must map each layer to a list of heads, e.g. {{2: [0, 5]}}; got {heads!r}") from None


def _check_heads(heads: HeadSet, n_layers: int, what: str) -> None:
    check_layers([layer for layer, _ in heads], n_layers, what)


def _heads_mask(chosen: tuple[int, ...], pattern: Tensor, what: str, layer: int) -> Tensor:
    bad = [h for h in chosen if not 0 <= h < pattern.shape[1]]
    if bad:
        raise ValueError(f"{what}: heads {bad} do not exist in layer {layer} ({pattern.shape[1]} heads)")
    mask = torch.zeros(pattern.shape[1], dtype=torch.bool, device=pattern.device)
    mask[list(chosen)] = True
    return mask


@dataclass(frozen=True)
class SinkCalibration(PatternIntervention):
    """ACT (Yu et al., ICML 2024, "Unveiling and Harnessing Hidden Attention Sinks"), its released
    ``atten_process_eval``: in the chosen heads (``{layer: [head, ...]}`` or a head-set file), the
    sinks other than the first are scaled by ``beta`` and their mass given to the row's other keys
    (:func:`interp.edits.patterns.calibrate_sinks`). Per row over its real tokens, at prefill and at
    every decoding step."""

    heads: Any
    beta: float = 0.4
    threshold: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "heads", head_set(self.heads, type(self).__name__))
        if not 0 <= self.beta <= 1:
            raise ValueError(f"SinkCalibration: beta={self.beta}; give a share in [0, 1] (ACT: 0.4)")
        if not 0 < self.threshold < 1:
            raise ValueError(f"SinkCalibration: threshold={self.threshold}; give a number in (0, 1) (ACT: 0.1)")

    def edits(self, n_layers: int, left_pad: Tensor | None = None) -> LayerEdits:
        name = type(self).__name__
        _check_heads(self.heads, n_layers, name)

        def make(layer: int, chosen: tuple[int, ...]) -> HookFn:
            def calibrate(pattern: Tensor, hook: Any) -> Tensor:
                return patterns.calibrate_sinks(pattern, row_left_pad(left_pad, pattern),
                                                _heads_mask(chosen, pattern, name, layer), self.beta, self.threshold)

            return calibrate

        return {layer: [make(layer, chosen)] for layer, chosen in self.heads if chosen}


@dataclass(frozen=True)
class AttentionSteering(PatternIntervention):
    """PASTA (Zhang et al., ICLR 2024, "Tell Your Model Where to Attend"), its released
    ``pastalib/pasta.py``: in the chosen heads, the input keys outside ``span`` (``mode="exclude"``)
    weighted by ``alpha`` and the rows renormalised (:func:`interp.edits.patterns.steer`).
    ``span = (start, stop)`` counts from each row's first real token, like a prompt range;
    ``input_length`` is where the input ends (keys from there on, generated, are not scaled; ``None``:
    every key is input). At prefill and at every decoding step."""

    span: tuple[int, int]
    heads: Any
    alpha: float = 0.01
    mode: Literal["exclude", "include"] = "exclude"
    input_length: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "heads", head_set(self.heads, type(self).__name__))
        object.__setattr__(self, "span", tuple(int(v) for v in self.span))
        if not self.alpha > 0:
            raise ValueError(f"AttentionSteering: alpha={self.alpha}; give a positive weight (PASTA: 0.01)")
        if self.mode not in ("exclude", "include"):
            raise ValueError(f"AttentionSteering: mode={self.mode!r}; choose 'exclude' or 'include'")

    def edits(self, n_layers: int, left_pad: Tensor | None = None) -> LayerEdits:
        name = type(self).__name__
        _check_range(self.span, name)
        _check_heads(self.heads, n_layers, name)
        start, stop = self.span

        def make(layer: int, chosen: tuple[int, ...]) -> HookFn:
            def steer(pattern: Tensor, hook: Any) -> Tensor:
                row_pad = row_left_pad(left_pad, pattern)
                keys = torch.arange(pattern.shape[-1], device=pattern.device)
                inside = patterns.positions_in_range(row_pad, keys, start, stop)
                inputs = patterns.positions_in_range(row_pad, keys, 0, self.input_length or pattern.shape[-1])
                return patterns.steer(pattern, inside, inputs, _heads_mask(chosen, pattern, name, layer), self.alpha,
                                      self.mode)

            return steer

        return {layer: [make(layer, chosen)] for layer, chosen in self.heads if chosen}
