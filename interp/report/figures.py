"""Plotly figures for attention studies. Each figure has a budget of matrix cells; longer
sequences are average-pooled to fit it, so that a 32-layer, 32-head model on a prompt of several
hundred tokens still gives pages of a few megabytes."""

from __future__ import annotations

from typing import Any, Sequence

import einops
import numpy as np
import plotly.colors as px_colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from jaxtyping import Float
from torch import Tensor

SLIDER_CELLS = 400_000  # all layers of one sequence, chosen with a slider
# Attention is mostly tiny with a few outliers (the anchors): colours follow value ** gamma, so
# ordinary attention is visible beside the outliers. The page switches between these scales.
SCALES = {"power 0.3 (default)": 0.3, "log-like (power 0.1)": 0.1, "linear": 1.0}
GRID_CELLS = 150_000  # every head of one layer, side by side


def tokens_within(cells: int, n_matrices: int, cap: int = 384) -> int:
    """How many token bins per axis let ``n_matrices`` square matrices fit in ``cells``."""
    return max(32, min(cap, int((cells / max(1, n_matrices)) ** 0.5)))


def pool(matrix: np.ndarray, labels: Sequence[str], max_tokens: int) -> tuple[np.ndarray, list[str], int]:
    """Average-pool the last two axes into at most ``max_tokens`` bins; returns the bin width."""
    n = matrix.shape[-1]
    width = max(1, -(-n // max_tokens))
    if width == 1:
        return matrix, list(labels), 1
    bins = -(-n // width)
    padded = np.zeros(matrix.shape[:-2] + (bins * width, bins * width), dtype=matrix.dtype)
    padded[..., :n, :n] = matrix
    pooled = einops.reduce(padded, "... (q w) (k v) -> ... q k", "mean", w=width, v=width)
    return pooled, [f"{labels[i]}…" for i in range(0, n, width)], width


def token_labels(tokens: Sequence[str]) -> list[str]:
    return [f"{i} {tok!r}"[:24] for i, tok in enumerate(tokens)]


def colorscale(gamma: float, diverging: bool = False, stops: int = 24) -> list[list[Any]]:
    """A plotly colour scale whose colour at a normalised value ``v`` is Viridis at ``v ** gamma``
    (RdBu, symmetrically about the middle, for ``diverging``): the data stay as they are, so the
    colour bar and the hover text read true values."""
    names = px_colors.sample_colorscale("RdBu" if diverging else "Viridis", [i / stops for i in range(stops + 1)])
    if not diverging:
        return [[(i / stops) ** (1 / gamma), names[i]] for i in range(stops + 1)]
    half = stops // 2
    return [[0.5 + (0.5 if i > half else -0.5) * (abs(i - half) / half) ** (1 / gamma), names[i]] for i in range(stops + 1)]


MASKED = "#d9d9d9"  # the cells a query cannot see (keys after it): grey, apart from the scale's zero


def causal_cells(matrices: np.ndarray) -> np.ndarray:
    """Square (pooled) attention matrices as float32, the bins wholly after their query bin set to
    NaN: drawn in the plot's background colour (``MASKED``), not as zero attention."""
    shown = matrices.astype(np.float32)
    n = shown.shape[-1]
    shown[..., np.triu_indices(n, 1)[0], np.triu_indices(n, 1)[1]] = np.nan
    return shown


def scale_buttons(diverging: bool = False, y: float = 1.09) -> list[dict[str, Any]]:
    """Buttons that switch the figure's colour scale (see ``SCALES``), at the right above the plot."""
    return [dict(type="buttons", direction="right", x=1, y=y, xanchor="right", yanchor="bottom",
                 buttons=[dict(label=name, method="relayout", args=[{"coloraxis.colorscale": colorscale(g, diverging)}])
                          for name, g in SCALES.items()])]


def mark_keys(fig: go.Figure, labels: Sequence[str], positions: Sequence[int], width: int, tokens: Sequence[str]) -> None:
    """A red mark above the key axis at each of ``positions`` (the anchors), its token on hover."""
    for position in positions:
        fig.add_annotation(x=labels[position // width], y=1.0, yref="paper", yanchor="bottom", text="▼",
                           showarrow=False, font=dict(color="red", size=11), hovertext=f"anchor {position} {tokens[position]!r}")


def caption(fig: go.Figure, text: str) -> go.Figure:
    """The sentence printed under the figure, saying how to read it."""
    fig.update_layout(meta={"caption": text})
    return fig


HEATMAP_CAPTION = ("Each row is a query token and each column a key it attends to; colour is the attention (a share "
                   "of the row, on a power scale: the buttons switch it, hover for exact values; grey: keys after "
                   "the query, which it cannot see); red dotted lines mark the prompt/dialogue boundary and red "
                   "triangles the anchors. Look for the bright columns: keys every later query attends to.")


def _boundary(fig: go.Figure, at: float, row: int | None = None, col: int | None = None) -> None:
    kwargs = {"row": row, "col": col} if row else {}
    fig.add_vline(x=at, line=dict(color="red", width=1, dash="dot"), **kwargs)
    fig.add_hline(y=at, line=dict(color="red", width=1, dash="dot"), **kwargs)


def layer_heatmaps(
    patterns: Float[Tensor, "layer query key"], tokens: Sequence[str], title: str,
    boundary: int | None = None, layer_names: Sequence[str] | None = None, zmax: float | None = None,
    anchors: Sequence[int] = (), cells: int = SLIDER_CELLS,
) -> go.Figure:
    """One attention matrix per layer, chosen with a slider; the prompt/dialogue boundary in red,
    the anchors marked above the key axis, colours on a power scale (switchable). ``cells``: the
    figure's budget (a page of several such figures gives each a share)."""
    data, labels, width = pool(patterns.numpy(), token_labels(tokens), tokens_within(cells, len(patterns)))
    names = list(layer_names or [f"layer {i}" for i in range(len(data))])
    fig = go.Figure()
    for i, matrix in enumerate(data):
        fig.add_trace(go.Heatmap(
            z=causal_cells(matrix), x=labels, y=labels, visible=i == 0, coloraxis="coloraxis",
            hovertemplate="query %{y}<br>key %{x}<br>attention %{z:.4f}<extra></extra>",
        ))
    steps = [dict(method="update", label=name, args=[{"visible": [j == i for j in range(len(data))]},
                                                     {"title": f"{title}: {name}"}])
             for i, name in enumerate(names)]
    fig.update_layout(
        title=dict(text=f"{title}: {names[0]}", y=0.98), height=860, margin=dict(t=110, b=190),
        sliders=[dict(steps=steps, currentvalue={"prefix": ""}, y=-0.22, yanchor="top")], updatemenus=scale_buttons(),
        yaxis=dict(autorange="reversed", title="query token (position, text)"),
        xaxis=dict(title="key token (position, text)"), plot_bgcolor=MASKED,
        coloraxis=dict(colorscale=colorscale(SCALES["power 0.3 (default)"]), cmin=0, cmax=zmax or float(data.max() or 1),
                       colorbar=dict(title="attention")),
    )
    if boundary is not None:
        _boundary(fig, boundary / width - 0.5)
    mark_keys(fig, labels, anchors, width, tokens)
    slider = "" if len(data) == 1 else " The slider changes the layer." if layer_names is None else \
        f" The slider chooses the matrix: {', '.join(names)}." if len(names) <= 6 else \
        f" The slider chooses one of {len(names)} matrices, from {names[0]} to {names[-1]}."
    return caption(fig, HEATMAP_CAPTION + slider)


def difference_heatmaps(
    difference: Float[Tensor, "layer query key"], tokens: Sequence[str], title: str, boundary: int | None = None,
    cells: int = SLIDER_CELLS,
) -> go.Figure:
    """Per-layer differences of two models' attention, on a diverging scale centred on zero."""
    fig = layer_heatmaps(difference, tokens, title, boundary, cells=cells)
    bound = float(difference.abs().max() or 1)
    fig.update_layout(coloraxis=dict(colorscale=colorscale(SCALES["power 0.3 (default)"], diverging=True), cmin=-bound,
                                     cmax=bound, cmid=0, colorbar=dict(title="difference")),
                      updatemenus=scale_buttons(diverging=True))
    return caption(fig, "Each cell is the change in attention from a query token (row) to a key (column): blue where "
                        "the second model attends more, red where it attends less, white where nothing changed (grey: keys "
                        "after the query). The slider changes the layer.")


def head_grid(
    patterns: Float[Tensor, "head query key"], tokens: Sequence[str], title: str, boundary: int | None = None,
) -> go.Figure:
    """Every head of one layer side by side, the title above the colour-scale buttons, the cells a
    query cannot see in grey, each panel's tokens on hover."""
    data, labels, width = pool(patterns.numpy(), token_labels(tokens), tokens_within(GRID_CELLS, len(patterns), 256))
    heads = len(data)
    cols = min(4, heads)
    rows = -(-heads // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"head {h}" for h in range(heads)],
                        horizontal_spacing=0.03, vertical_spacing=0.06)
    for h, matrix in enumerate(data):
        r, c = h // cols + 1, h % cols + 1
        fig.add_trace(go.Heatmap(z=causal_cells(matrix), x=labels, y=labels, coloraxis="coloraxis",
                                 hovertemplate=f"head {h}<br>query %{{y}}<br>key %{{x}}<br>attention %{{z:.4f}}"
                                               "<extra></extra>"), row=r, col=c)
        fig.update_yaxes(autorange="reversed", showticklabels=False, row=r, col=c)
        fig.update_xaxes(showticklabels=False, row=r, col=c)
        if boundary is not None:
            _boundary(fig, boundary / width - 0.5, r, c)
    height, top, bottom = 300 * rows + 60, 150, 40
    # In pixels: the title in the top 40, the buttons 50-80 above the panels (their titles sit just above them).
    fig.update_layout(title=dict(text=title, x=0.01, xanchor="left", y=1 - 12 / height, yanchor="top",
                                 yref="container"),
                      height=height, margin=dict(t=top, b=bottom), plot_bgcolor=MASKED,
                      coloraxis=dict(colorscale=colorscale(SCALES["power 0.3 (default)"]), cmin=0,
                                     colorbar=dict(title="attention")),
                      updatemenus=scale_buttons(y=1 + 50 / (height - top - bottom)))
    return caption(fig, "One panel per head, on one colour scale: rows are query tokens, columns the keys they "
                        "attend to (grey: keys after the query, which it cannot see); hover for the tokens and "
                        "values. Look for heads whose attention piles onto one column (a sink or anchor) and for the "
                        "diagonal stripe of previous-token heads.")


def received_lines(received: Float[Tensor, "layer key"], tokens: Sequence[str], anchors: Sequence[Sequence[int]]) -> go.Figure:
    """Attention received by each prompt key, one line per layer; detected anchors as markers."""
    labels = token_labels(tokens)[: received.shape[-1]]
    fig = go.Figure()
    for layer, row in enumerate(received.numpy()):
        fig.add_trace(go.Scatter(x=labels, y=row, mode="lines", name=f"layer {layer}",
                                 visible=True if layer < 8 else "legendonly"))
        if anchors[layer]:
            fig.add_trace(go.Scatter(x=[labels[p] for p in anchors[layer]], y=row[list(anchors[layer])],
                                     mode="markers", marker=dict(size=9, symbol="star"),
                                     name=f"anchors, layer {layer}", showlegend=False))
    fig.update_layout(title="Attention received by each prompt token (mean over later queries and heads)",
                      xaxis_title="key token (position, text)", yaxis_title="mean attention (share of a row)", height=480)
    return caption(fig, "Each line is a layer: how much the tokens after the prompt attend, on average, to each prompt "
                        "token; stars mark that layer's anchors. Click a legend entry to show or hide a layer.")


def per_layer_bars(values: dict[str, Sequence[float]], title: str, y_title: str) -> go.Figure:
    fig = go.Figure()
    for name, ys in values.items():
        fig.add_trace(go.Bar(x=list(range(len(ys))), y=list(ys), name=name))
    fig.update_layout(title=title, xaxis_title="layer", yaxis_title=y_title, barmode="group", height=380)
    return caption(fig, "One group of bars per layer, from the first (left) to the last" +
                   (f"; within a group, one bar each for {', '.join(values)}." if len(values) > 1 else "."))


def layer_head_heatmap(values: Float[Tensor, "layer head"], title: str, colorbar: str) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=values.numpy(), colorbar=dict(title=colorbar),
                               hovertemplate="layer %{y}<br>head %{x}<br>%{z:.4f}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="head", yaxis_title="layer", height=420,
                      yaxis=dict(autorange="reversed"))  # layer 0 at the top, as the caption says
    return caption(fig, "One cell per head (column) of each layer (row), layer 0 at the top; hover for the value.")
