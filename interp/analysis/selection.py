"""Head selection for the methods that edit chosen heads (ACT, PASTA), by attribution patching.

ACT keeps the heads whose calibration alone raises accuracy on a calibration set (one evaluation
run per head); PASTA profiles each head steered alone. Both ask the same question of every head:
what does the method, applied to this head alone, do to the model's answers? Here it is answered
to first order for every head at once: one forward and one backward pass per batch of held-out
examples give the gradient of the loss on their reference answers at every attention pattern, and
a head's estimate is ``(edited pattern - pattern) . d loss / d pattern`` summed over its entries,
the method's edit made on the unedited pattern. The ``k`` heads estimated to lower the loss most
are then measured exactly (one evaluation each with the method on that head alone), and those
that do lower it form the head set, written as JSON that ``heads=FILE`` takes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, TYPE_CHECKING

import einops
import torch
from jaxtyping import Float
from torch import Tensor
from tqdm import tqdm

from interp.analysis.heads import agreement, measured
from interp.decoding import DEFAULT_BATCH_SIZE
from interp.decoding.generation import decoder, padded_batch
from interp.edits.intervention import LayerEdits, PatternIntervention
from interp.edits.interventions import AttentionSteering, PerRow, SinkCalibration

if TYPE_CHECKING:
    from interp.model.load import InterpModel


@dataclass(frozen=True)
class Reference:
    """A held-out example: a context, its reference answer after it (``ids[answer_start:]``), and
    the prompt range inside the context (what PASTA emphasises)."""

    ids: tuple[int, ...]
    answer_start: int
    prompt_range: tuple[int, int]
    id: str = ""

    def __post_init__(self) -> None:
        if not 0 < self.answer_start < len(self.ids):
            raise ValueError(f"reference {self.id or '?'}: answer_start={self.answer_start} leaves no context or no "
                             f"answer in its {len(self.ids)} tokens")


HeadSet = dict[int, list[int]]
Build = Callable[[HeadSet, Reference], PatternIntervention]  # the method on these heads, for this example


def act(beta: float = 0.4, threshold: float = 0.1) -> Build:
    """ACT's sink calibration (:class:`~interp.edits.interventions.SinkCalibration`)."""
    SinkCalibration({}, beta, threshold)  # the parameters checked once, here
    return lambda heads, ref: SinkCalibration(heads, beta, threshold)


def pasta(alpha: float = 0.01, mode: str = "exclude") -> Build:
    """PASTA's steering toward each example's prompt range; its answer is not scaled
    (:class:`~interp.edits.interventions.AttentionSteering`)."""
    AttentionSteering((0, 1), {}, alpha, mode)  # type: ignore[arg-type]
    return lambda heads, ref: AttentionSteering(ref.prompt_range, heads, alpha, mode,  # type: ignore[arg-type]
                                                input_length=ref.answer_start)


# kind -> (its builder, {parameter: type}); the heads are what selection chooses
METHODS: dict[str, tuple[Callable[..., Build], dict[str, type]]] = {
    "act": (act, {"beta": float, "threshold": float}),
    "pasta": (pasta, {"alpha": float, "mode": str}),
}


def parse_selection(spec: str) -> tuple[str, dict[str, Any]]:
    """``act``, ``act:beta=0.3`` or ``pasta:alpha=0.05,mode=include`` as (kind, parameters),
    checked by building the method once."""
    kind, _, rest = spec.strip().partition(":")
    if kind not in METHODS:
        raise ValueError(f"{spec!r}: heads are selected for {' or '.join(METHODS)} (KIND or KIND:key=value,...)")
    build, allowed = METHODS[kind]
    parameters: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, text = part.partition("=")
        if not eq or key.strip() not in allowed:
            raise ValueError(f"{spec!r}: {part!r} is not a parameter of {kind}; it takes "
                             f"{', '.join(f'{k}=...' for k in allowed)}")
        try:
            parameters[key.strip()] = allowed[key.strip()](text.strip())
        except ValueError:
            raise ValueError(f"{spec!r}: {part!r} is not a {allowed[key.strip()].__name__}") from None
    build(**parameters)
    return kind, parameters


@dataclass
class HeadSelection:
    """Every head's estimated change in the reference answers' loss (mean negative log-likelihood
    per example, nats) when the method edits it alone; the exact change for the ``k`` confirmed
    heads (NaN elsewhere); the chosen heads, those confirmed to lower the loss, best first."""

    method: str
    parameters: dict[str, Any]
    estimate: Float[Tensor, "layer head"]
    exact: Float[Tensor, "layer head"]
    base_loss: float
    examples: list[str]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def confirmed(self) -> list[tuple[int, int]]:
        return measured(self.exact)

    @property
    def chosen(self) -> list[tuple[int, int]]:
        helping = [head for head in self.confirmed if self.exact[head] < 0]
        return sorted(helping, key=lambda head: float(self.exact[head]))

    @property
    def heads(self) -> HeadSet:
        """The chosen heads as ``{layer: [head, ...]}``, what ``SinkCalibration`` and
        ``AttentionSteering`` take."""
        out: HeadSet = {}
        for layer, head in sorted(self.chosen):
            out.setdefault(layer, []).append(head)
        return out

    def agreement(self) -> float:
        """Spearman rank correlation of estimate and exact change over the confirmed heads (NaN
        with fewer than three)."""
        return agreement(self.estimate, self.exact)

    def save(self, path: str | Path) -> Path:
        """The head set as JSON (``heads`` is what ``act:heads=FILE`` and ``pasta:heads=FILE``
        read), with how it was chosen."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "heads": {str(layer): heads for layer, heads in self.heads.items()},
            "method": self.method, "parameters": self.parameters, "base_loss": self.base_loss,
            "confirmed": [{"head": f"{l}.{h}", "estimate": float(self.estimate[l, h]), "exact": float(self.exact[l, h])}
                          for l, h in sorted(self.confirmed, key=lambda head: float(self.exact[head]))],
            "agreement": self.agreement(), "seconds": self.seconds, "examples": self.examples,
            "estimate": self.estimate.tolist(),
        }
        path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        return path


class _Keep(PatternIntervention):
    """Every layer's pattern kept as it flows (in the autograd graph): what the gradient is taken at."""

    def __init__(self, kept: dict[int, Tensor]) -> None:
        self.kept = kept

    def edits(self, n_layers: int, left_pad: Tensor | None = None) -> LayerEdits:
        def make(layer: int) -> Callable[..., Tensor]:
            def keep(pattern: Tensor, hook: Any) -> Tensor:
                self.kept[layer] = pattern
                return pattern

            return keep

        return {layer: [make(layer)] for layer in range(n_layers)}


def _batches(refs: Sequence[Reference], batch_size: int) -> list[list[Reference]]:
    ordered = sorted(refs, key=lambda ref: -len(ref.ids))  # similar lengths together: little padding
    return [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]


def _answer_nll(logits: Tensor, ids: Tensor, batch: Sequence[Reference]) -> Tensor:
    """Each row's summed negative log-likelihood of its answer (rows right-aligned by left padding)."""
    logprobs = logits.float().log_softmax(-1)
    width = ids.shape[1]
    out = []
    for b, ref in enumerate(batch):
        n = len(ref.ids) - ref.answer_start
        targets = ids[b, width - n :]
        out.append(-logprobs[b, width - n - 1 : width - 1].gather(-1, targets[:, None]).sum())
    return torch.stack(out)


def _inputs(model: InterpModel, batch: Sequence[Reference]) -> tuple[Tensor, ...]:
    pad = model.tokenizer.pad_token_id or 0
    return padded_batch([list(ref.ids) for ref in batch], pad, next(model.parameters()).device)


def answer_loss(model: InterpModel, refs: Sequence[Reference], build: Build | None = None,
                heads: HeadSet | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> float:
    """Mean over ``refs`` of the reference answer's negative log-likelihood, with the method
    ``build`` on ``heads`` (none: the model as it is)."""
    total = 0.0
    with torch.no_grad():
        for batch in _batches(refs, batch_size):
            ids, left_pad, mask, positions = _inputs(model, batch)
            plan = [] if build is None else [PerRow(tuple((build(heads or {}, ref),) for ref in batch))]
            with decoder(model, plan, left_pad) as forward:
                logits = forward(input_ids=ids, attention_mask=mask, position_ids=positions).logits
            total += float(_answer_nll(logits, ids, batch).sum())
    return total / len(refs)


def estimate_effects(model: InterpModel, refs: Sequence[Reference], build: Build,
                     batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = False) -> tuple[Float[Tensor, "layer head"], float]:
    """Every head's first-order change in :func:`answer_loss` when ``build``'s method edits it
    alone, and the unedited loss: one forward and one backward pass per batch."""
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    every = {layer: list(range(n_heads)) for layer in range(n_layers)}
    estimate = torch.zeros(n_layers, n_heads, dtype=torch.float64)
    base = 0.0
    for batch in tqdm(_batches(refs, batch_size), disable=not progress, desc="attribution", unit="batch"):
        ids, left_pad, mask, positions = _inputs(model, batch)
        kept: dict[int, Tensor] = {}
        with torch.enable_grad(), decoder(model, [_Keep(kept)], left_pad) as forward:
            # The embeddings as the graph's leaf: frozen weights build no graph of their own.
            embeds = forward.get_input_embeddings()(ids).detach().requires_grad_()
            logits = forward(inputs_embeds=embeds, attention_mask=mask, position_ids=positions).logits
            loss = _answer_nll(logits, ids, batch).sum() / len(refs)
            grads = torch.autograd.grad(loss, [kept[layer] for layer in range(n_layers)])
        base += float(loss.detach())
        # Each head's edit depends on its own pattern only, so every head edited at once gives each
        # head's edit alone; made on the unedited pattern (first order).
        edits = PerRow(tuple((build(every, ref),) for ref in batch)).edits(n_layers, left_pad)
        with torch.no_grad():
            for layer, grad in enumerate(grads):
                clean = kept[layer].detach()
                edited = clean
                for fn in edits.get(layer, []):
                    edited = fn(edited, hook=None)
                estimate[layer] += einops.einsum((edited - clean).double(), grad.double(),
                                                 "batch head q k, batch head q k -> head").cpu()
    return estimate.float(), base


def select_heads(model: InterpModel, method: str | Build, examples: Sequence[Reference], k: int = 8, *,
                 parameters: dict[str, Any] | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 progress: bool = True) -> HeadSelection:
    """Rank every head by the first-order effect of ``method`` (``"act"``, ``"pasta"``, or a
    :data:`Build`) applied to it alone on the loss of the examples' reference answers, confirm the
    ``k`` estimated to lower it most by exact evaluation, and keep those that do
    (:attr:`HeadSelection.heads`; :meth:`HeadSelection.save` writes the file ``heads=FILE`` takes).
    ``examples`` must be held out from the questions the heads will be evaluated on."""
    parameters = dict(parameters or {})
    if isinstance(method, str):
        if method not in METHODS:
            raise ValueError(f"select_heads: method {method!r}; choose from {', '.join(METHODS)}, or pass a function "
                             "(heads, reference) -> intervention")
        unknown = set(parameters) - set(METHODS[method][1])
        if unknown:
            raise ValueError(f"select_heads: {method} takes no such parameter {sorted(unknown)}; it takes "
                             f"{', '.join(METHODS[method][1])}")
        build, name = METHODS[method][0](**parameters), method
    else:
        build, name = method, getattr(method, "__name__", "custom")
    if not examples:
        raise ValueError("select_heads needs held-out examples (interp.accuracy.loglik.references(model, items)); "
                         "got none")
    n_heads = model.cfg.n_layers * model.cfg.n_heads
    if not 0 < k <= n_heads:
        raise ValueError(f"select_heads: k={k}; give 1 to {n_heads} (the model's heads)")
    started = time.perf_counter()
    estimate, base = estimate_effects(model, examples, build, batch_size, progress)
    estimated = time.perf_counter() - started
    exact = torch.full_like(estimate, float("nan"))
    order = estimate.flatten().argsort()[:k].tolist()  # most negative first: the loss falls most
    for index in tqdm(order, disable=not progress, desc="confirm", unit="head"):
        layer, head = divmod(index, model.cfg.n_heads)
        exact[layer, head] = answer_loss(model, examples, build, {layer: [head]}, batch_size) - base
    seconds = {"estimate": estimated, "confirm": time.perf_counter() - started - estimated}
    return HeadSelection(name, parameters, estimate, exact, base, [ref.id for ref in examples], seconds)
