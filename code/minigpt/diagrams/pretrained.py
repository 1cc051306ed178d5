"""Chapter 5's diagrams: how GPT-2's checkpoint maps onto our GPT."""

from __future__ import annotations

import matplotlib.pyplot as plt

from .draw import EDGE, FONT, arrow, box, canvas, grid, label


def conv1d_vs_linear() -> plt.Figure:
    """The same weights stored two ways: Conv1D as (in, out), nn.Linear as (out, in)."""
    fig, ax = canvas(20, 9, "The same 12 weights, stored two ways: one is the other transposed")
    letters = "abcdefghijkl"
    conv = [[letters[4 * i + j] for j in range(4)] for i in range(3)]  # 3 inputs x 4 outputs
    linear = [[conv[i][j] for i in range(3)] for j in range(4)]  # 4 outputs x 3 inputs
    _weight(
        ax,
        1.5,
        conv,
        "token",
        "GPT-2's file: Conv1D",
        ("in", "out"),
        "y = x @ W + b",
        "c_attn of GPT-2 124M: (768, 2304)",
    )
    _weight(
        ax,
        14.0,
        linear,
        "output",
        "our GPT: nn.Linear",
        ("out", "in"),
        "y = x @ W.T + b",
        "c_attn of ours: (2304, 768)",
    )
    arrow(ax, (6.2, 4.0), (12.9, 4.0), "transpose: row i becomes column i")
    label(ax, 9.55, 3.3, "load: W.t()   save: W.t() again", fontsize=FONT - 1, color=EDGE)
    return fig


def _weight(ax, x, cells, color, title, axes, formula, caption) -> None:
    """One side of `conv1d_vs_linear`: a weight grid whose rows are axes[0] and columns axes[1]."""
    rows, cols = len(cells), len(cells[0])
    middle, y = x + cols / 2, 4.0 - rows / 2  # the grid is centred on height 4
    label(ax, middle, 8.0, title, fontsize=FONT + 1)
    label(ax, middle, 7.1, f"weight ({axes[0]}, {axes[1]}) = ({rows}, {cols})", fontsize=FONT - 1)
    label(ax, middle, y + rows + 0.4, axes[1], fontsize=FONT - 1)
    label(ax, x - 0.5, 4.0, axes[0], fontsize=FONT - 1, rotation=90)
    grid(ax, x, y, cells, colors=color)
    label(ax, middle, y - 0.7, formula, fontsize=FONT)
    label(ax, middle, y - 1.5, caption, fontsize=FONT - 2)


# (GPT-2's name, its shape in GPT-2 124M, our name, what happens on the way)
MAPPING = [
    ("wte.weight", "(50257, 768)", "transformer.wte.weight = lm_head.weight", "copy"),
    ("wpe.weight", "(1024, 768)", "transformer.wpe.weight", "copy"),
    ("h.0.ln_1.weight, .bias", "(768,)", "transformer.h.0.ln_1.*", "copy"),
    ("h.0.attn.c_attn.weight", "(768, 2304)", "transformer.h.0.attn.c_attn.weight", "transpose"),
    ("h.0.attn.c_proj.weight", "(768, 768)", "transformer.h.0.attn.c_proj.weight", "transpose"),
    ("h.0.attn.bias", "(1, 1, 1024, 1024)", "(none: the causal mask)", "skip"),
    ("h.0.ln_2.weight, .bias", "(768,)", "transformer.h.0.ln_2.*", "copy"),
    ("h.0.mlp.c_fc.weight", "(768, 3072)", "transformer.h.0.mlp.c_fc.weight", "transpose"),
    ("h.0.mlp.c_proj.weight", "(3072, 768)", "transformer.h.0.mlp.c_proj.weight", "transpose"),
    ("ln_f.weight, .bias", "(768,)", "transformer.ln_f.*", "copy"),
]
_ACTION_COLORS = {"copy": "data", "transpose": "attention", "skip": "masked"}


def checkpoint_mapping() -> plt.Figure:
    """GPT-2's tensor names on the left, ours on the right, and what loading does to each (block 0 shown)."""
    rows = len(MAPPING)
    fig, ax = canvas(24, rows * 0.9 + 1.6, "From GPT-2's file to our GPT (block 0 shown; blocks 1-11 alike)")
    top = rows * 0.9 + 0.6
    label(ax, 4.6, top, "GPT-2's checkpoint (shape in 124M)", fontsize=FONT)
    label(ax, 19.4, top, "our GPT's parameter", fontsize=FONT)
    for i, (theirs, shape, ours, action) in enumerate(MAPPING):
        y = top - 0.9 * (i + 1)
        box(ax, 0.2, y - 0.35, 8.8, 0.7, f"{theirs}  {shape}", color="token", fontsize=FONT - 2)
        box(
            ax,
            14.8,
            y - 0.35,
            9.0,
            0.7,
            ours,
            color="output" if action != "skip" else "plain",
            fontsize=FONT - 2,
        )
        box(ax, 10.3, y - 0.3, 3.2, 0.6, action, color=_ACTION_COLORS[action], fontsize=FONT - 2)
        if action != "skip":
            arrow(ax, (9.0, y), (10.3, y))
            arrow(ax, (13.5, y), (14.8, y))
    return fig
