"""Chapter 2's pictures: one head's queries, keys, values and causal mask; the multi-head reshape."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

from .draw import FONT, arrow, box, canvas, grid, heat_grid, label


def _softmax_rows(scores: np.ndarray) -> np.ndarray:
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def one_head(chars: str = "First", head_size: int = 4, seed: int = 3) -> plt.Figure:
    """One head over a short sequence: q, k, v per position, masked scores, weights, weighted values.

    The numbers are those of a head with random projections (seeded), small enough to read.
    """
    T = len(chars)
    rng = np.random.default_rng(seed)
    q, k = rng.normal(size=(T, head_size)), rng.normal(size=(T, head_size))
    future = np.triu(np.ones((T, T), dtype=bool), k=1)  # row t, column s > t: the future
    scores = np.where(future, -np.inf, q @ k.T / math.sqrt(head_size))  # (T, T)
    weights = _softmax_rows(scores)  # (T, T), zero in the future
    names = [{" ": "␣", "\n": "↵"}.get(c, c) for c in chars]

    fig, ax = canvas(
        20,
        1.0 + 0.9 * T + 2.0,
        title="One head: each position's query is scored against the keys of the past",
    )
    cell, y0 = 0.9, 1.0
    top = y0 + T * cell

    # 1. Every position emits a query, a key and a value (three learned linear maps of its vector x).
    for t, name in enumerate(names):
        y = top - (t + 1) * cell
        box(ax, 0.3, y + 0.05, 1.0, cell - 0.1, f"x{t} {name}", color="token", fontsize=FONT - 2)
        for j, (kind, symbol) in enumerate((("query", "q"), ("key", "k"), ("value", "v"))):
            box(ax, 1.7 + j * 0.95, y + 0.05, 0.85, cell - 0.1, f"{symbol}{t}", color=kind, fontsize=FONT - 2)
    label(ax, 2.6, top + 0.45, "x · W_Q, W_K, W_V", fontsize=FONT - 1)
    label(ax, 2.3, y0 - 0.5, "one vector per position", fontsize=FONT - 2)

    # 2. Scores q_t · k_s / sqrt(d), with the future masked to -inf.
    sx = 6.4
    cells = [["−∞" if future[t, s] else f"{scores[t, s]:.1f}" for s in range(T)] for t in range(T)]
    grid(ax, sx, y0, cells, colors=[["masked" if f else "plain" for f in row] for row in future], cell=cell)
    for t in range(T):
        label(ax, sx - 0.3, top - (t + 0.5) * cell, f"q{t}", fontsize=FONT - 2)
        label(ax, sx + (t + 0.5) * cell, top + 0.3, f"k{t}", fontsize=FONT - 2)
    label(ax, sx + T * cell / 2, top + 0.85, "scores q·k / √d", fontsize=FONT - 1)
    label(ax, sx + T * cell / 2, y0 - 0.5, "the future is masked: −∞", fontsize=FONT - 2)
    arrow(ax, (4.65, top - T * cell / 2), (sx - 0.6, top - T * cell / 2))

    # 3. A softmax along each row: weights in [0, 1] that sum to 1, exactly 0 on the future.
    wx = sx + T * cell + 1.6
    heat_grid(ax, wx, y0, weights, cmap="Purples", cell=cell, fmt="{:.2f}", masked=future, vmax=1.0)
    label(ax, wx + T * cell / 2, top + 0.85, "weights = softmax(row)", fontsize=FONT - 1)
    label(ax, wx + T * cell / 2, y0 - 0.5, "each row sums to 1; grey: 0", fontsize=FONT - 2)
    arrow(ax, (sx + T * cell + 0.1, top - T * cell / 2), (wx - 0.1, top - T * cell / 2), label="softmax")

    # 4. Each position's output is its row of weights applied to the values.
    ox = wx + T * cell + 1.5
    for t in range(T):
        y = top - (t + 1) * cell
        box(ax, ox, y + 0.05, 1.3, cell - 0.1, f"out{t}", color="attention", fontsize=FONT - 2)
    arrow(ax, (wx + T * cell + 0.1, top - T * cell / 2), (ox - 0.1, top - T * cell / 2), label="@ V")
    last = T - 1
    terms = " + ".join(f"{weights[last, s]:.2f}·v{s}" for s in range(T))
    label(ax, 10, top + 1.55, f"out{last} = {terms}", fontsize=FONT - 1)
    return fig


def multi_head_reshape(B: int = 32, T: int = 32, C: int = 64, n_head: int = 4) -> plt.Figure:
    """The shapes through `CausalSelfAttention`: one projection, a view that gives each head its
    channels, all heads in one batched attention, and back."""
    hs = C // n_head
    steps = [  # (text in the box, colour, operation on the arrow to the next box)
        (f"x   (B, T, C) = ({B}, {T}, {C})", "token", "c_attn: one Linear(C, 3C)"),
        (f"(B, T, 3C) = ({B}, {T}, {3 * C})", "plain", "split into q, k, v"),
        ("q, k, v   (B, T, C) each", "query", f".view(B, T, n_head, hs): hs = C / n_head = {hs}"),
        (f"(B, T, n_head, hs) = ({B}, {T}, {n_head}, {hs})", "query", ".transpose(1, 2)"),
        (
            f"(B, n_head, T, hs) = ({B}, {n_head}, {T}, {hs})",
            "query",
            f"attention in each head: scores (B, n_head, T, T) = ({B}, {n_head}, {T}, {T})",
        ),
        (
            f"head outputs (B, n_head, T, hs) = ({B}, {n_head}, {T}, {hs})",
            "attention",
            ".transpose(1, 2).contiguous().view(B, T, C)",
        ),
        (f"(B, T, C) = ({B}, {T}, {C}): heads side by side", "attention", "c_proj: Linear(C, C) mixes heads"),
        (f"out   (B, T, C) = ({B}, {T}, {C})", "output", None),
    ]
    height = 1.3 * len(steps) + 0.6
    fig, ax = canvas(20, height, title="Multi-head attention: the shapes, with the chapter's sizes")
    for i, (text, color, operation) in enumerate(steps):
        y = height - 1.3 * (i + 1)
        box(ax, 0.3, y, 8.6, 0.8, text, color=color, fontsize=FONT - 1)
        if operation:
            arrow(ax, (2.0, y), (2.0, y - 0.5))
            label(ax, 2.3, y - 0.25, operation, fontsize=FONT - 2, ha="left")

    # On the right: the C channels of q, split into n_head groups that become a new axis.
    px, pw = 12.3, 7.2
    y_bar = height - 3.9
    label(ax, px + pw / 2, y_bar + 1.2, f"q at one position: C = {C} channels", fontsize=FONT - 1)
    shades = ["#fde0c5", "#f9c08f", "#f39c5a", "#e07b39"]
    for h in range(n_head):
        w = pw / n_head
        box(ax, px + h * w, y_bar, w, 0.7, f"head {h}", color=shades[h % 4], rounded=False, fontsize=FONT - 2)
        label(ax, px + (h + 0.5) * w, y_bar - 0.3, f"{hs} ch.", fontsize=FONT - 2)
    y_stack = height - 9.0
    arrow(ax, (px + pw / 2, y_bar - 0.6), (px + pw / 2, y_stack + n_head * 0.75 + 0.1), label=None)
    label(ax, px + pw / 2 + 0.25, y_bar - 1.3, "view + transpose", fontsize=FONT - 2, ha="left")
    for h in range(n_head):
        y = y_stack + (n_head - 1 - h) * 0.75
        box(
            ax,
            px + pw / 2 - 2.5,
            y,
            5.0,
            0.65,
            f"head {h}: (T, hs) = ({T}, {hs})",
            color=shades[h % 4],
            rounded=False,
            fontsize=FONT - 2,
        )
    label(ax, px + pw / 2, y_stack - 0.4, "a head axis: each head attends", fontsize=FONT - 2)
    label(ax, px + pw / 2, y_stack - 0.85, f"with its own {hs} channels", fontsize=FONT - 2)
    return fig
