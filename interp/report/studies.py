"""Each study: a function from (model, sequence, parameters) to a report page's sections.

The numbers come from the library (:mod:`interp.analysis`, :mod:`interp.anchors`,
:mod:`interp.effects`); this module only arranges them into figures and tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from jaxtyping import Int
from torch import Tensor

from interp.analysis import attention_entropy, attention_patterns
from interp.anchors import Anchors, detect_anchors, non_semantic_share
from interp.effects import Effect, intervention_effects
from interp.generation import prefix_length
from interp.interventions import (
    AnchorAblation, Intervention, check_layers, PromptRangeRemoval, TopLayerEmulation, alternating_layers, describe,
)
from interp.patterns import emulation_mask
from interp.report import figures
from interp.report.page import Section


@dataclass(frozen=True)
class Page:
    name: str
    title: str
    summary: str
    sections: list[Section]


@dataclass(frozen=True)
class Example:
    """A prompt (the instruction, the paper's prompt range) followed by a dialogue; when the
    dialogue ends in a reference answer, ``answer_start`` is where it begins, and the studies'
    greedy continuations are generated from there (what the model answers under each variant)."""

    ids: Int[Tensor, "1 pos"]
    prompt_stop: int
    tokens: tuple[str, ...]
    answer_start: int | None = None

    @classmethod
    def from_text(cls, model: Any, prompt: str, dialogue: str, answer: str = "") -> "Example":
        if not prompt or not dialogue:
            raise ValueError("both the prompt and the dialogue must be non-empty text")
        full = model.tokenizer(prompt + dialogue + answer).input_ids
        stop = prefix_length(model, full, prompt)
        if not 0 < stop < len(full):
            raise ValueError("the prompt must be followed by at least one dialogue token")
        answer_start = prefix_length(model, full, prompt + dialogue) if answer else None
        if answer_start is not None and not stop < answer_start < len(full):
            raise ValueError("the answer must add at least one token after the dialogue")
        ids = torch.tensor([full])
        return cls(ids, stop, tuple(model.to_str_tokens(ids[0])), answer_start)


def middle_layer(model: Any) -> int:
    return model.cfg.n_layers // 2


def _check_layer(model: Any, layer: int) -> int:
    check_layers([layer], model.cfg.n_layers, "layer", "choose layers within that range")
    return layer


def _effects_table(effects: Sequence[Effect]) -> tuple[list[str], list[list[Any]]]:
    header = ["variant", "KL(original || variant)", "top-1 agreement", "dialogue loss", "greedy continuation"]
    # An empty continuation means the model ended the sequence at once; say so rather than show a blank.
    return header, [[e.name, e.kl, e.top1_agreement, e.loss, e.continuation or "(end of sequence at once)"]
                    for e in effects]


def _continuation_note(example: Example) -> str:
    if example.answer_start is None:
        return "Greedy continuations start at the end of the dialogue."
    return (f"Greedy continuations start where the reference answer does (token {example.answer_start}, after "
            f"{example.tokens[example.answer_start - 1]!r}): what the model answers under each variant.")


def _variants_record(variants: dict[str, Sequence[Intervention]]) -> str:
    return "\n".join(f"{name}: {[describe(iv) for iv in ivs] or 'no intervention'}" for name, ivs in variants.items())


def attention_study(model: Any, example: Example, zoom_layers: Sequence[int] | None = None) -> Page:
    """The paper's Figure 2: every layer's attention matrix, head-mean and per head."""
    patterns = attention_patterns(model, example.ids)
    zoom = [_check_layer(model, layer) for layer in (zoom_layers or (0, middle_layer(model)))]
    anchors = detect_anchors(model, example.ids, prompt_range=(0, example.prompt_stop)).positions()
    sections = [Section(
        "Head-mean attention, every layer",
        f"{len(example.tokens)} tokens; the prompt is tokens 0 to {example.prompt_stop - 1} "
        "(red dotted line: prompt/dialogue boundary; red marks above: the anchor tokens). Each row is a query "
        "token, each column a key it attends to; colours follow attention ** 0.3 so ordinary attention shows "
        "beside the outliers (buttons switch the scale; hover for exact values). Move the slider to change layer.",
        figures=[figures.layer_heatmaps(patterns.mean(1), example.tokens, "Head-mean attention", example.prompt_stop,
                                        anchors=anchors)],
    )]
    for layer in zoom:
        sections.append(Section(f"Layer {layer}, per head", figures=[figures.head_grid(
            patterns[layer], example.tokens, f"Layer {layer}: every head", example.prompt_stop)]))
    on_first = patterns[:, :, example.prompt_stop:, 0].mean(dim=(1, 2))  # the dialogue's attention on token 0
    busiest = int(on_first.argmax())
    return Page("attention.html", "Per-layer attention matrices",
                f"{model.cfg.n_layers} layers x {model.cfg.n_heads} heads; the dialogue's attention on the first token "
                f"{float(on_first.min()):.2f} to {float(on_first.max()):.2f} of each row (most in layer {busiest}); "
                f"anchors {list(anchors)}", sections)


def anchor_study(model: Any, example: Example, ratio: float = 3.0) -> tuple[Page, Anchors]:
    """Anchor tokens: attention received per key, the detected anchors, their share, entropy."""
    anchors = detect_anchors(model, example.ids, prompt_range=(0, example.prompt_stop), ratio=ratio)
    per_layer = [anchors.layer(layer) for layer in range(model.cfg.n_layers)]
    union = anchors.positions()
    share = anchors.share(union)
    rows = [[layer, ", ".join(map(str, pos)) or "-", " ".join(repr(t) for t in anchors.strings(pos)) or "-",
             float(share[layer])] for layer, pos in enumerate(per_layer)]
    entropy = attention_entropy(attention_patterns(model, example.ids))
    sections = [
        Section("Attention received by prompt tokens", (
            f"Mean attention that the dialogue's queries (tokens {example.prompt_stop} on) pay to each prompt "
            f"token, averaged over heads. A token is an anchor in a layer when it receives at least {ratio}x "
            "the mean over prompt tokens."), figures=[figures.received_lines(anchors.received, example.tokens, per_layer)]),
        Section("Detected anchors", f"Union over layers: positions {list(union)}, tokens "
                f"{[t for t in anchors.strings(union)]}.",
                tables=[(["layer", "anchor positions", "tokens", "share of dialogue attention on all anchors"], rows)]),
        Section("Share of attention on anchors", figures=[figures.per_layer_bars(
            {"anchors (union)": share.tolist()}, "Share of the dialogue's attention that lands on anchors", "share")]),
        Section("Attention entropy", figures=[
            figures.layer_head_heatmap(entropy, "Mean attention entropy per head (nats)", "nats"),
            figures.per_layer_bars({"mean over heads": entropy.mean(-1).tolist()}, "Attention entropy per layer", "nats")]),
    ]
    summary = f"anchors {list(zip(union, anchors.strings(union)))}; max share {float(share.max()):.2f}"
    return Page("anchors.html", "Anchor tokens", summary, sections), anchors


def _effect_page(model: Any, example: Example, variants: dict[str, Sequence[Intervention]], name: str, title: str,
                 text: str, layer: int, max_new_tokens: int) -> Page:
    effects = intervention_effects(model, example.ids, example.prompt_stop, variants, max_new_tokens=max_new_tokens,
                                   generate_from=example.answer_start)
    maps = torch.stack([attention_patterns(model, example.ids, ivs)[layer].mean(0) for ivs in variants.values()])
    sections = [
        Section("Effects on the dialogue", f"{text} {_continuation_note(example)}", tables=[_effects_table(effects)],
                preformatted=_variants_record(variants)),
        Section(f"Layer {layer} attention under each variant", figures=[figures.layer_heatmaps(
            maps, example.tokens, f"Layer {layer} head-mean attention", example.prompt_stop, layer_names=list(variants))]),
    ]
    moved = "; ".join(f"{e.name}: KL {e.kl:.3f}, top-1 agreement {e.top1_agreement:.0%}" for e in effects[1:])
    return Page(name, title, f"logits moved (KL from the original, dialogue tokens) by {moved}", sections)


def ablation_study(model: Any, example: Example, anchors: Sequence[int], layer: int | None = None,
                   max_new_tokens: int = 32) -> Page:
    """The paper's Figure 3: anchors removed from the prompt range, and only anchors kept."""
    prompt = (0, example.prompt_stop)
    variants = {
        "original": [],
        "anchors removed": [AnchorAblation(prompt, tuple(anchors))],
        "only anchors kept": [AnchorAblation(prompt, tuple(anchors), keep_only=True)],
    }
    return _effect_page(model, example, variants, "ablation.html", "Anchor-token ablation and its counter-experiment",
                        f"Anchors {list(anchors)} within the prompt range, in every layer, for queries after the prompt.",
                        _check_layer(model, middle_layer(model) if layer is None else layer), max_new_tokens)


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
    return _effect_page(model, example, variants, "removal.html", "Alternating-layer prompt removal",
                        "Attention from the dialogue to the prompt range is removed in the listed layers.",
                        alternating[0], max_new_tokens)


def emulation_study(model: Any, example: Example, emulation: TopLayerEmulation | None = None,
                    layers: Sequence[int] | None = None, max_new_tokens: int = 32) -> Page:
    """The depth-scaled top-layer emulation, inspected: layer-0 mask, per-layer scale, before and after."""
    emulation = emulation or TopLayerEmulation()
    n = model.cfg.n_layers
    shown = [_check_layer(model, layer) for layer in (layers or (1, n // 2, n - 1))]
    before = attention_patterns(model, example.ids)
    after = attention_patterns(model, example.ids, [emulation])
    mask = emulation_mask(before[0][None], emulation.threshold)[0].float().mean(0)
    scales = [1.0] + [emulation.scale(layer, n) for layer in range(1, n)]
    compare = torch.stack([m for layer in shown for m in (before[layer].mean(0), after[layer].mean(0))])
    names = [f"layer {layer} {when}" for layer in shown for when in ("before", "after")]
    effects = intervention_effects(model, example.ids, example.prompt_stop,
                                   {"original": [], "top-layer emulation": [emulation]}, max_new_tokens=max_new_tokens,
                                   generate_from=example.answer_start)
    sections = [
        Section("Layer-0 mask", f"Share of heads with A_0 > {emulation.threshold} (own position excluded); "
                f"{float((mask > 0).float().mean()):.1%} of causal entries are selected by at least one head.",
                figures=[figures.layer_heatmaps(mask[None], example.tokens, "Layer-0 mask (share of heads)",
                                                example.prompt_stop, layer_names=["mask"], zmax=1.0)]),
        Section("Per-layer scale", f"1 + alpha (1 - l / h), alpha={emulation.alpha}, "
                f"h={emulation.last_layer or n - 1}; layer 0 only defines the mask.",
                figures=[figures.per_layer_bars({"scale": scales}, "Scale applied to masked entries", "factor")]),
        Section("Attention before and after", "Row sums exceed one after the edit: no renormalisation, as in the paper.",
                figures=[figures.layer_heatmaps(compare, example.tokens, "Head-mean attention", example.prompt_stop,
                                                layer_names=names)]),
        Section("Effects on the dialogue", _continuation_note(example), tables=[_effects_table(effects)],
                preformatted=f"{describe(emulation)}"),
    ]
    return Page("emulation.html", "Depth-scaled top-layer emulation",
                f"alpha={emulation.alpha}, threshold={emulation.threshold}; KL {effects[1].kl:.3f}", sections)


def heads_study(model: Any, example: Example, mode: str = "zero", show: Sequence[tuple[int, int]] = (),
                ratio: float = 3.0) -> Page:
    """Head probing: per-head scores, ablation effects, a ranked table and layer-by-head heatmaps."""
    from interp.heads import head_scores

    anchors = detect_anchors(model, example.ids, prompt_range=(0, example.prompt_stop), ratio=ratio).positions() or (0,)
    scores = head_scores(model, example.ids, example.prompt_stop, sinks=anchors, mode=mode)
    for layer, head in show:
        _check_layer(model, layer)
        if not 0 <= head < model.cfg.n_heads:
            raise ValueError(f"head {head} does not exist; layers have heads 0 to {model.cfg.n_heads - 1}")
    ranked = scores.ranked()
    maps = [
        figures.layer_head_heatmap(scores.ablation, f"Dialogue loss change when the head is {mode}-ablated", "nats"),
        figures.layer_head_heatmap(scores.sink, f"Sink/anchor score: attention to anchors {list(anchors)}", "share"),
        figures.layer_head_heatmap(scores.previous_token, "Previous-token score (TransformerLens detector)", "score"),
        figures.layer_head_heatmap(scores.induction, "Induction score on a repeated random sequence", "score"),
        figures.layer_head_heatmap(scores.entropy, "Attention entropy", "nats"),
    ]
    sections = [
        Section("Heads ranked by ablation effect", f"Each head's output (hook_z) {mode}-ablated alone; the change "
                f"in mean cross-entropy on the {example.ids.shape[1] - example.prompt_stop} dialogue tokens.",
                tables=[(["head", "loss change", "sink/anchor", "previous-token", "induction", "entropy"],
                         [[r["head"], r["ablation_loss_change"], r["sink"], r["previous_token"], r["induction"],
                           r["entropy"]] for r in ranked[:40]])]),
        Section("Layer-by-head maps", figures=maps),
    ]
    if show:
        patterns = attention_patterns(model, example.ids)
        sections.append(Section("Chosen heads", figures=[figures.layer_heatmaps(
            torch.stack([patterns[layer, head] for layer, head in show]), example.tokens, "Head pattern",
            example.prompt_stop, layer_names=[f"head {layer}.{head}" for layer, head in show])]))
    top = ranked[0]
    return Page("heads.html", "Head probing", f"most important head {top['head']} (+{top['ablation_loss_change']:.3f} nats)", sections)


def dropout_study(model: Any, other: Any, example: Example, names: tuple[str, str]) -> Page:
    """The paper's Figure 5: the same text's attention in two models, and their difference per layer."""
    other_ids = other.tokenizer(other.tokenizer.decode(example.ids[0], skip_special_tokens=True)).input_ids
    if other.cfg.n_layers != model.cfg.n_layers or other_ids != example.ids[0].tolist():
        raise ValueError("the two models must have the same depth and tokenizer to compare attention position by position")
    first = attention_patterns(model, example.ids).mean(1)
    second = attention_patterns(other, example.ids).mean(1)
    difference = second - first
    n = model.cfg.n_layers
    entropy = {names[0]: attention_entropy(first[:, None]).squeeze(-1).tolist(),
               names[1]: attention_entropy(second[:, None]).squeeze(-1).tolist()}
    prompt_share = {names[0]: first[:, example.prompt_stop:, :example.prompt_stop].sum(-1).mean(-1).tolist(),
                    names[1]: second[:, example.prompt_stop:, :example.prompt_stop].sum(-1).mean(-1).tolist()}
    sections = [
        Section(f"{names[0]} vs {names[1]}: head-mean attention per layer", figures=[
            figures.layer_heatmaps(torch.cat([first, second]), example.tokens, "Head-mean attention", example.prompt_stop,
                                   layer_names=[f"{names[0]} layer {i}" for i in range(n)] + [f"{names[1]} layer {i}" for i in range(n)]),
        ]),
        Section(f"Difference ({names[1]} minus {names[0]})", figures=[figures.difference_heatmaps(
            difference, example.tokens, "Attention difference", example.prompt_stop)]),
        Section("Per-layer summary", figures=[
            figures.per_layer_bars(entropy, "Attention entropy per layer (head-mean pattern)", "nats"),
            figures.per_layer_bars(prompt_share, "Share of the dialogue's attention on the prompt range", "share"),
            figures.per_layer_bars({"mean |difference|": difference.abs().mean(dim=(-1, -2)).tolist()},
                                   "Mean absolute difference per layer", "attention")]),
    ]
    per_layer = difference.abs().mean(dim=(-1, -2))
    top = int(per_layer.argmax())
    return Page("dropout.html", "Attention-dropout comparison",
                f"largest mean |difference| {float(per_layer[top]):.4f} in layer {top}; share of the dialogue's attention "
                f"on the prompt, mean over layers: {names[0]} {sum(prompt_share[names[0]]) / n:.2f}, "
                f"{names[1]} {sum(prompt_share[names[1]]) / n:.2f}", sections)



def finetuning_study(base: Any, tuned: dict[str, Any], example: Example, ratio: float = 3.0) -> Page:
    """What fine-tuning did to attention: a base model against its fine-tuned version(s) on the
    same text: per-layer attention side by side and the difference, the anchors each finds, the
    share of attention on non-semantic tokens and the entropy per layer. ``tuned`` maps a name to
    a model; with two (without and with attention dropout), the dropout comparison follows."""
    models = {"base": base, **tuned}
    for name, other in tuned.items():
        if other.cfg.n_layers != base.cfg.n_layers or other.tokenizer.get_vocab() != base.tokenizer.get_vocab():
            raise ValueError(f"{name} and the base model differ in depth or tokenizer: give the base that "
                             "was fine-tuned, so attention can be compared position by position")
    stop = example.prompt_stop
    patterns = {name: attention_patterns(m, example.ids) for name, m in models.items()}
    means = {name: p.mean(1) for name, p in patterns.items()}
    n = base.cfg.n_layers
    found = {name: detect_anchors(m, example.ids, prompt_range=(0, stop), ratio=ratio) for name, m in models.items()}
    anchor_rows = []
    for name, anchors in found.items():
        union = anchors.positions()
        share = anchors.share(union)
        anchor_rows.append([name, ", ".join(map(str, union)) or "-", " ".join(repr(t) for t in anchors.strings(union)) or "-",
                            float(share.mean()), float(share.max()), int(share.argmax())])
    semantic_share = {name: non_semantic_share(p, example.tokens, stop).tolist() for name, p in patterns.items()}
    entropy = {name: attention_entropy(p).mean(-1).tolist() for name, p in patterns.items()}
    sections = [
        Section("Head-mean attention per layer, side by side", figures=[figures.layer_heatmaps(
            torch.cat(list(means.values())), example.tokens, "Head-mean attention", stop,
            layer_names=[f"{name} layer {i}" for name in means for i in range(n)])]),
        *[Section(f"Difference: {name} minus base", figures=[figures.difference_heatmaps(
            means[name] - means["base"], example.tokens, f"Attention difference ({name} - base)", stop)])
          for name in tuned],
        Section("Anchors found in each model", f"Anchors in the prompt range (tokens 0 to {stop - 1}): keys that "
                f"receive at least {ratio}x the prompt's mean attention from the dialogue, in any layer; their share "
                "of the dialogue's attention, mean and largest over layers.",
                tables=[(["model", "anchor positions", "tokens", "share (mean over layers)", "share (largest)",
                          "layer of largest"], anchor_rows)]),
        Section("Attention on non-semantic tokens", "BOS, whitespace, newlines and punctuation: the share of the "
                "dialogue's attention they receive, per layer (mean over heads and dialogue tokens).",
                figures=[figures.per_layer_bars(semantic_share, "Share of attention on non-semantic tokens", "share")]),
        Section("Attention entropy per layer", figures=[figures.per_layer_bars(
            entropy, "Mean attention entropy per layer (mean over heads and queries)", "nats")]),
    ]
    if len(tuned) == 2:
        (first, one), (second, two) = tuned.items()
        comparison = dropout_study(one, two, example, (first, second))
        sections += [Section(f"Dropout comparison: {s.title}", s.text, s.raw_html, s.figures, s.tables, s.preformatted)
                     for s in comparison.sections]
    last = {name: values[-1] for name, values in semantic_share.items()}
    summary = "non-semantic share in the last layer: " + ", ".join(f"{k} {v:.2f}" for k, v in last.items())
    return Page("finetuning.html", "What fine-tuning did to attention", summary, sections)
