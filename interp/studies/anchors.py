"""Anchor tokens: received attention, detected anchors, share, entropy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from interp.analysis.attention import attention_entropy, attention_patterns
from interp.analysis.anchors import Anchors
from interp.report import figures
from interp.report.page import Page, Section
from interp.studies.base import Context, Example

if TYPE_CHECKING:
    from interp.model.load import InterpModel


def anchor_study(model: InterpModel, example: Example, anchors: Anchors) -> tuple[Page, Anchors]:
    """Anchor tokens: attention received per key, the detected anchors (``detect_anchors`` on the
    example's prompt range), their share and the sink's, entropy."""
    ratio = anchors.ratio
    per_layer = [anchors.layer(layer) for layer in range(model.cfg.n_layers)]
    union = anchors.positions(sink=False)  # the text's own anchors; the first token is the sink, apart
    share = anchors.share(union)
    sink = anchors.sink_share()
    rows = [[layer, ", ".join(str(p) for p in pos if p != anchors.sink) or "-",
             " ".join(repr(anchors.tokens[p]) for p in pos if p != anchors.sink) or "-", float(share[layer]),
             float(sink[layer])] for layer, pos in enumerate(per_layer)]
    entropy = attention_entropy(attention_patterns(model, example.ids))
    sections = [
        Section("Attention received by prompt tokens", (
            f"Mean attention that the dialogue's queries (tokens {example.prompt_stop} on) pay to each prompt "
            f"token, averaged over heads. A token is an anchor in a layer when it receives at least {ratio}x "
            "the mean over prompt tokens."), figures=[figures.received_lines(anchors.received, example.tokens, per_layer)]),
        Section("Detected anchors", f"Union over layers, the first token left out: positions {list(union)}, tokens "
                f"{[t for t in anchors.strings(union)]}. The first token ({anchors.tokens[anchors.sink]!r}) is an "
                "attention sink in most trained models: rows park attention there whatever the token is, so its "
                "share is shown apart; the ablation study removes the anchors with and without it.",
                tables=[(["layer", "anchor positions", "tokens", "share of dialogue attention on these anchors",
                          "share on the first token (sink)"], rows)]),
        Section("Share of attention on anchors and on the sink", figures=[figures.per_layer_bars(
            {"anchors (union, sink apart)": share.tolist(), "first token (sink)": sink.tolist()},
            "Share of the dialogue's attention that lands on anchors, and on the first token", "share")]),
        Section("Attention entropy", figures=[
            figures.layer_head_heatmap(entropy, "Mean attention entropy per head (nats)", "nats"),
            figures.per_layer_bars({"mean over heads": entropy.mean(-1).tolist()}, "Attention entropy per layer", "nats")]),
    ]
    summary = (f"anchors {list(zip(union, anchors.strings(union)))}: largest share {float(share.max()):.2f}; "
               f"first token (sink) largest share {float(sink.max()):.2f}")
    return Page("anchors.html", "Anchor tokens", summary, sections), anchors


def run(c: Context) -> Page:
    return anchor_study(c.model, c.example, c.anchors)[0]
