"""Drawing primitives shared by every diagram in the book.

A diagram is laid out in *units* (one unit is one grid cell, about the size of a short label). `canvas`
turns a width and height in units into a figure whose text stays legible at the book's page width
(about 800 px), so a diagram never needs font sizes of its own below `FONT`.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

# One meaning, one colour, in every chapter (soft fills, so black text stays readable on them).
COLORS = {
    "token": "#dbe9f6",  # token ids, embeddings, inputs
    "query": "#fde0c5",
    "key": "#d4edda",
    "value": "#e8dcf2",
    "attention": "#fbd0d9",
    "mlp": "#fff2b3",
    "norm": "#e2e2e2",
    "residual": "#c6dbef",
    "output": "#f6d5c3",
    "masked": "#bdbdbd",
    "data": "#eef3e2",
    "state": "#f2e6d9",
    "plain": "#ffffff",
}
EDGE = "#444444"
FONT = 11  # points; the smallest text a diagram uses is FONT - 2
# 20 units wide = 8.4 inches: 840 px at matplotlib's default 100 dpi (the PNG holds twice the pixels,
# see minigpt.setup_figures), which the book scales to its text column (790 px at most) when shown.
INCHES_PER_UNIT = 0.42


def canvas(width: float, height: float, title: str | None = None) -> tuple[plt.Figure, plt.Axes]:
    """An empty diagram `width` x `height` units, y pointing up, (0, 0) at the bottom left."""
    fig, ax = plt.subplots(
        figsize=(width * INCHES_PER_UNIT, height * INCHES_PER_UNIT + (0.4 if title else 0))
    )
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=FONT + 1, loc="left")
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.92 if title else 0.99)
    return fig, ax


def box(
    ax: plt.Axes,
    x: float,
    y: float,
    w: float,
    h: float,
    label: str = "",
    color: str = "plain",
    fontsize: float = FONT,
    rounded: bool = True,
    **text_kwargs,
) -> tuple[float, float, float, float]:
    """A labelled box with its bottom-left corner at (x, y); returns (x, y, w, h) for placing arrows."""
    fill = COLORS.get(color, color)
    style = "round,pad=0,rounding_size=0.15" if rounded else "square,pad=0"
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle=style, facecolor=fill, edgecolor=EDGE, linewidth=1.2))
    if label:
        ax.text(x + w / 2, y + h / 2, label, ha="center", va="center", fontsize=fontsize, **text_kwargs)
    return x, y, w, h


def arrow(
    ax: plt.Axes,
    start: tuple[float, float],
    end: tuple[float, float],
    label: str | None = None,
    color: str = EDGE,
    curve: float = 0.0,
    label_offset: tuple[float, float] = (0.0, 0.12),
    fontsize: float = FONT - 1,
    **kwargs,
) -> None:
    """An arrow from `start` to `end`, curved by `curve` (the arc's bend), labelled just above its middle."""
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>",
            mutation_scale=14,
            color=color,
            linewidth=1.3,
            connectionstyle=f"arc3,rad={curve}",
            shrinkA=2,
            shrinkB=2,
            **kwargs,
        )
    )
    if label:
        mx, my = (start[0] + end[0]) / 2 + label_offset[0], (start[1] + end[1]) / 2 + label_offset[1]
        ax.text(mx, my, label, ha="center", va="bottom", fontsize=fontsize, color=color)


def grid(
    ax: plt.Axes,
    x: float,
    y: float,
    cells: Sequence[Sequence[object]],
    colors: Sequence[Sequence[str]] | str | None = None,
    cell: float = 1.0,
    fontsize: float = FONT - 1,
) -> tuple[float, float, float, float]:
    """A matrix of labelled cells, row 0 at the top, its bottom-left corner at (x, y).

    `cells` holds each cell's text (anything printable; "" for none); `colors` is one colour name for all
    cells, or one per cell. Returns (x, y, width, height) of the whole grid.
    """
    rows, cols = len(cells), max(len(r) for r in cells)
    for i, row in enumerate(cells):
        for j, value in enumerate(row):
            fill = colors if isinstance(colors, str) or colors is None else colors[i][j]
            fill = COLORS.get(fill or "plain", fill or "plain")
            cx, cy = x + j * cell, y + (rows - 1 - i) * cell
            ax.add_patch(Rectangle((cx, cy), cell, cell, facecolor=fill, edgecolor=EDGE, linewidth=0.8))
            if value != "":
                ax.text(cx + cell / 2, cy + cell / 2, str(value), ha="center", va="center", fontsize=fontsize)
    return x, y, cols * cell, rows * cell


def heat_grid(
    ax: plt.Axes,
    x: float,
    y: float,
    values: np.ndarray,
    cmap: str = "Blues",
    cell: float = 1.0,
    fmt: str = "{:.2f}",
    masked: np.ndarray | None = None,
    fontsize: float = FONT - 2,
    vmax: float | None = None,
) -> tuple[float, float, float, float]:
    """A matrix of numbers as coloured, labelled cells (row 0 at the top); `masked` cells are grey, blank."""
    values = np.asarray(values, dtype=float)
    colormap = plt.get_cmap(cmap)
    top = vmax if vmax is not None else max(float(np.nanmax(np.abs(values))), 1e-12)
    rows, cols = values.shape
    for i in range(rows):
        for j in range(cols):
            cx, cy = x + j * cell, y + (rows - 1 - i) * cell
            hidden = masked is not None and bool(masked[i, j])
            fill = COLORS["masked"] if hidden else colormap(0.1 + 0.8 * abs(values[i, j]) / top)
            ax.add_patch(Rectangle((cx, cy), cell, cell, facecolor=fill, edgecolor=EDGE, linewidth=0.8))
            if not hidden:
                shade = 0.1 + 0.8 * abs(values[i, j]) / top
                ax.text(
                    cx + cell / 2,
                    cy + cell / 2,
                    fmt.format(values[i, j]),
                    ha="center",
                    va="center",
                    fontsize=fontsize,
                    color="white" if shade > 0.6 else "black",
                )
    return x, y, cols * cell, rows * cell


def label(
    ax: plt.Axes, x: float, y: float, text: str, fontsize: float = FONT, ha: str = "center", **kwargs
) -> None:
    """Free text at (x, y): a shape such as (B, T, C), a caption under a box, a step number."""
    ax.text(x, y, text, ha=ha, va="center", fontsize=fontsize, **kwargs)


def brace(ax: plt.Axes, x0: float, x1: float, y: float, text: str, below: bool = True) -> None:
    """A square bracket spanning x0..x1 at height y, its ends turned towards what it spans, `text` outside."""
    tick = 0.2 if below else -0.2  # below a row the ends point up at it; above a row they point down
    ax.plot([x0, x0, x1, x1], [y + tick, y, y, y + tick], color=EDGE, linewidth=1.0)
    ax.text((x0 + x1) / 2, y - 0.35 if below else y + 0.35, text, ha="center", va="center", fontsize=FONT - 1)
