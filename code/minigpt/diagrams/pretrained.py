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
    label(ax, 3.5, 8.0, "GPT-2's file: Conv1D", fontsize=FONT + 1)
    label(ax, 3.5, 6.9, "weight (in, out) = (3, 4)", fontsize=FONT - 1)
    label(ax, 3.5, 5.9, "out", fontsize=FONT - 1)
    label(ax, 1.0, 3.9, "in", fontsize=FONT - 1, rotation=90)
    grid(ax, 1.5, 2.4, conv, colors="token")
    label(ax, 3.5, 1.6, "y = x @ W + b", fontsize=FONT)
    label(ax, 3.5, 0.8, "c_attn in GPT-2 124M: (768, 2304)", fontsize=FONT - 2)
    label(ax, 15.5, 8.0, "our GPT: nn.Linear", fontsize=FONT + 1)
    label(ax, 15.5, 7.1, "weight (out, in) = (4, 3)", fontsize=FONT - 1)
    label(ax, 15.5, 6.4, "in", fontsize=FONT - 1)
    label(ax, 13.5, 3.9, "out", fontsize=FONT - 1, rotation=90)
    grid(ax, 14.0, 1.9, linear, colors="output")
    label(ax, 15.5, 1.2, "y = x @ W.T + b", fontsize=FONT)
    label(ax, 15.5, 0.4, "c_attn in our GPT: (2304, 768)", fontsize=FONT - 2)
    arrow(ax, (6.2, 4.0), (12.9, 4.0), "transpose: row i becomes column i")
    label(ax, 9.55, 3.3, "load: W.t()   save: W.t() again", fontsize=FONT - 1, color=EDGE)
    return fig


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
