"""Chapter 6's diagrams: what a checkpoint file holds, how it maps onto our GPT, and where it comes from."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

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
    ("lm_head.weight, if stored", "(50257, 768)", "(none: must equal wte.weight)", "check"),
]
_ACTION_COLORS = {"copy": "data", "transpose": "attention", "skip": "masked", "check": "state"}


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
            color="output" if action in ("copy", "transpose") else "plain",
            fontsize=FONT - 2,
        )
        box(ax, 10.3, y - 0.3, 3.2, 0.6, action, color=_ACTION_COLORS[action], fontsize=FONT - 2)
        if action in ("copy", "transpose"):
            arrow(ax, (9.0, y), (10.3, y))
            arrow(ax, (13.5, y), (14.8, y))
    return fig


def read_safetensors_header(path: str | os.PathLike) -> tuple[int, dict]:
    """The two parts that precede a safetensors file's data: the header's length in bytes, and the header."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))  # an unsigned 64-bit little-endian integer
        return length, json.loads(f.read(length))


def safetensors_layout(path: str | os.PathLike) -> plt.Figure:
    """The three parts of the safetensors file at `path`, with its real sizes, and where one tensor lies."""
    length, header = read_safetensors_header(path)
    size = Path(path).stat().st_size
    tensors = {name: entry for name, entry in header.items() if name != "__metadata__"}
    # the first Conv1D weight in the file: an entry whose shape shows the (in, out) layout
    conv1d = [name for name in tensors if name.endswith("attn.c_attn.weight")]
    name = min(conv1d, key=lambda n: tensors[n]["data_offsets"])
    start, end = tensors[name]["data_offsets"]
    fig, ax = canvas(22, 9.5, f"{Path(path).name}: a length, a JSON table of contents, then raw bytes")
    header_text = (
        f"N = {length:,} bytes of JSON:\n{len(tensors)} tensors' name, dtype,\nshape and byte offsets"
    )
    parts = [  # (left, width, text, colour) of the file's three parts, left to right
        (0.3, 3.6, "8 bytes:\nthe header's\nlength N", "state"),
        (3.9, 6.6, header_text, "token"),
        (10.5, 11.2, f"the tensors' raw bytes, one after another:\n{size - 8 - length:,} bytes", "data"),
    ]
    for left, width, text, color in parts:
        box(ax, left, 6.0, width, 1.6, text, color=color, fontsize=FONT - 1)
    offsets = [(0.3, 0, "center"), (3.9, 8, "center"), (10.5, 8 + length, "center"), (21.7, size, "right")]
    for x, offset, align in offsets:  # the last, the file's size, is aligned to stay inside the page
        label(ax, x, 5.6, f"{offset:,}", fontsize=FONT - 2, ha=align)
    label(ax, 11.0, 8.3, "byte offsets in the file are printed under the boundaries", FONT - 2, color=EDGE)
    entry = {key: tensors[name][key] for key in ("dtype", "shape", "data_offsets")}
    box(ax, 0.3, 2.6, 21.4, 1.2, f'"{name}": {json.dumps(entry)}', color="token", fontsize=FONT - 2)
    label(ax, 0.3, 4.3, "one entry of the header (a Conv1D weight: (in, out))", FONT - 2, ha="left")
    bytes_label = f"its bytes: {start:,} to {end:,} of the data"
    arrow(ax, (11.2, 3.8), (11.2, 6.0), bytes_label, label_offset=(3.6, 0.0), fontsize=FONT - 2)
    label(ax, 11.0, 1.5, "A loader reads the header, then only the bytes it asks for: no code is ever run,")
    label(ax, 11.0, 0.7, "unlike a pickled PyTorch file (pytorch_model.bin), which may run any code.")
    return fig


def base_model_decision() -> plt.Figure:
    """How `find_base_model` chooses: the local cache, else the Hub, else the shipped stand-in."""
    fig, ax = canvas(22, 10, 'Which model find_base_model("gpt2") returns, and why')
    steps = [  # (left, bottom, text, colour): the questions on the left, what each "yes" loads on the right
        (0.3, 7.4, "1. Is GPT-2 in the local\nHugging Face cache\n(at the pinned commit)?", "state"),
        (
            0.3,
            4.2,
            "2. Does the Hub answer?\none short request (3 s);\nnot asked if HF_HUB_OFFLINE=1",
            "state",
        ),
        (0.3, 1.0, "3. the course's stand-in:\ndata/gpt2-shakespeare-standin,\nsha256 checked", "output"),
        (13.1, 7.4, "OpenAI's GPT-2\nfrom the cache", "output"),
        (13.1, 4.2, "OpenAI's GPT-2, downloaded\nat the pinned commit\n(cached, resumable)", "output"),
    ]
    for left, bottom, text, color in steps:
        box(ax, left, bottom, 8.6, 1.6, text, color=color, fontsize=FONT - 1)
    arrow(ax, (8.9, 8.2), (13.1, 8.2), "yes")
    arrow(ax, (8.9, 5.0), (13.1, 5.0), "yes")
    arrow(ax, (4.6, 7.4), (4.6, 5.8), "no", label_offset=(0.5, -0.2))
    arrow(ax, (4.6, 4.2), (4.6, 2.6), "no", label_offset=(0.5, -0.2))
    arrow(ax, (13.1, 4.4), (8.9, 2.0), "the download fails", label_offset=(2.3, -0.5))
    label(ax, 17.4, 2.2, "Whichever folder it is, from_pretrained", FONT - 1)
    label(ax, 17.4, 1.5, "loads it, and one printed line says which.", FONT - 1)
    return fig
