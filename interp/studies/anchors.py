"""Anchor tokens: received attention, detected anchors, share, entropy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from interp.analysis.attention import attention_entropy, attention_patterns
from interp.analysis.anchors import Anchors, detect_anchors
from interp.report import figures
from interp.report.page import Page, Section
from interp.studies.base import Example, Study

if TYPE_CHECKING:
    from interp.model.load import InterpModel


def anchor_study(model: InterpModel, example: Example, ratio: float = 3.0) -> tuple[Page, Anchors]:
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


STUDY = Study(
    "anchors", "anchor tokens: received attention, detected anchors, share, entropy",
    lambda c: anchor_study(c.model, c.example, c.config.ratio)[0],
    options=("ratio",),
)
