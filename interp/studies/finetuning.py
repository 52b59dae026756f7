"""What fine-tuning did to attention: a base model against its fine-tuned version(s) (--tuned)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from interp.analysis.attention import attention_entropy, attention_patterns
from interp.analysis.anchors import detect_anchors, non_semantic_share
from interp.report import figures
from interp.report.page import Page, Section
from interp.studies.base import Context, Example
from interp.studies.dropout import dropout_study

if TYPE_CHECKING:
    from interp.model.load import InterpModel


def finetuning_study(base: InterpModel, tuned: dict[str, InterpModel], example: Example, ratio: float = 3.0) -> Page:
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
    special = base.tokenizer.all_special_tokens
    semantic_share = {name: non_semantic_share(p, example.tokens, stop, special).tolist() for name, p in patterns.items()}
    entropy = {name: attention_entropy(p).mean(-1).tolist() for name, p in patterns.items()}
    # Several slider figures on one page: each gets a share of one figure's budget.
    cells = figures.SLIDER_CELLS // 3
    sections = [
        Section("Head-mean attention per layer, side by side", figures=[figures.layer_heatmaps(
            torch.cat(list(means.values())), example.tokens, "Head-mean attention", stop,
            layer_names=[f"{name} layer {i}" for name in means for i in range(n)], cells=cells)]),
        *[Section(f"Difference: {name} minus base", figures=[figures.difference_heatmaps(
            means[name] - means["base"], example.tokens, f"Attention difference ({name} - base)", stop, cells=cells)])
          for name in tuned],
        Section("Anchors found in each model", f"Anchors in the prompt range (tokens 0 to {stop - 1}): keys that "
                f"receive at least {ratio}x the prompt's mean attention from the dialogue, in any layer; their share "
                "of the dialogue's attention, mean and largest over layers.",
                tables=[(["model", "anchor positions", "tokens", "share (mean over layers)", "share (largest)",
                          "layer of largest"], anchor_rows)]),
        Section("Attention on non-semantic tokens", f"The tokenizer's special tokens ({', '.join(special)}), "
                "whitespace, newlines and punctuation: the share of the "
                "dialogue's attention they receive, per layer (mean over heads and dialogue tokens).",
                figures=[figures.per_layer_bars(semantic_share, "Share of attention on non-semantic tokens", "share")]),
        Section("Attention entropy per layer", figures=[figures.per_layer_bars(
            entropy, "Mean attention entropy per layer (mean over heads and queries)", "nats")]),
    ]
    if len(tuned) == 2:
        (first, one), (second, two) = tuned.items()
        comparison = dropout_study(one, two, example, (first, second), cells=cells, side_by_side=False)
        sections += [Section(f"Dropout comparison: {s.title}", s.text, s.raw_html, s.figures, s.tables, s.preformatted)
                     for s in comparison.sections]
    last = {name: values[-1] for name, values in semantic_share.items()}
    summary = "non-semantic share in the last layer: " + ", ".join(f"{k} {v:.2f}" for k, v in last.items())
    return Page("finetuning.html", "What fine-tuning did to attention", summary, sections)


def tuned_models(c: Context) -> dict[str, InterpModel]:
    """The fine-tuned model of ``--tuned``, or both of a ``--pair`` folder."""
    from pathlib import Path

    folder = Path(c.config.tuned)
    pair = {"tuned": folder / "without-dropout", "tuned with dropout": folder / "with-dropout"}
    if all(p.is_dir() for p in pair.values()):
        return {label: c.load(str(path), "--tuned") for label, path in pair.items()}
    return {"tuned": c.load(str(folder), "--tuned")}


def run(c: Context) -> Page:
    from interp.shipped import BASE, TUNED_DROPOUT, adapter

    if c.config.tuned:
        return finetuning_study(c.model, tuned_models(c), c.example, c.config.ratio)
    # The shipped pair (the main job's model is the one without dropout) against the wheel's base.
    tuned = {"tuned": c.model, "tuned with dropout": c.load(str(adapter(TUNED_DROPOUT)), "--tuned")}
    return finetuning_study(c.load(BASE, "--model"), tuned, c.example, c.config.ratio)
