"""Chapter 3's pictures: the pre-LayerNorm block, the GPT's data flow with shapes, and the tied head.

Each function draws one diagram on a fresh canvas and returns the figure; a notebook shows it with
`gpt.pre_ln_block(); plt.show()`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from .draw import EDGE, FONT, arrow, box, brace, canvas, grid, label


def _plus(ax: plt.Axes, x: float, y: float, size: float = 0.7) -> None:
    """The node where a branch's output is added to the residual stream, centred at (x, y)."""
    box(ax, x - size / 2, y - size / 2, size, size, "+", color="residual", fontsize=FONT + 3)


def pre_ln_block() -> plt.Figure:
    """One transformer block as GPT-2 builds it: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""
    fig, ax = canvas(
        20, 6.4, "One pre-LayerNorm block: each branch reads a normalised copy of x and adds its result back"
    )
    stream, top, height = 1.9, 3.7, 1.5  # the residual stream's height; the branch boxes' bottom and height
    mid = top + height / 2
    # Left half: communicate. Right half: compute. Each: fork up, LayerNorm, sub-layer, add back down.
    halves = [
        (1.2, 2.4, "ln_1\nLayerNorm", (4.1, 4.5), "attn\ncausal self-attention", 7.6, "attention"),
        (10.0, 11.2, "ln_2\nLayerNorm", (12.9, 4.5), "mlp\nC → 4C, GELU, → C", 16.4, "mlp"),
    ]
    ends = [0.2]
    for ln_x, fork_x, ln_label, (sub_x, sub_w), sub_label, plus_x, color in halves:
        box(ax, ln_x, top, 2.4, height, ln_label, color="norm")
        box(ax, sub_x, top, sub_w, height, sub_label, color=color)
        arrow(ax, (fork_x, stream), (fork_x, top))  # the branch reads the stream...
        arrow(ax, (ln_x + 2.4, mid), (sub_x, mid))
        arrow(ax, (plus_x, top), (plus_x, stream + 0.35))  # ...and adds its output back
        _plus(ax, plus_x, stream)
        ends.append(plus_x)
    arrow(ax, (ends[0], stream), (ends[1] - 0.35, stream))  # the stream itself: x passes on unchanged
    arrow(ax, (ends[1] + 0.35, stream), (ends[2] - 0.35, stream))
    arrow(ax, (ends[2] + 0.35, stream), (19.8, stream))
    label(ax, 0.2, stream + 0.45, "x (B, T, C)", ha="left")
    label(ax, 19.8, stream + 0.45, "(B, T, C)", ha="right")
    label(ax, 6.35, top + height + 0.45, "communicate: mix positions", fontsize=FONT - 1, style="italic")
    label(ax, 15.15, top + height + 0.45, "compute: each position alone", fontsize=FONT - 1, style="italic")
    label(ax, 4.6, 0.75, "x ← x + attn(ln_1(x))", fontsize=FONT)
    label(ax, 13.6, 0.75, "x ← x + mlp(ln_2(x))", fontsize=FONT)
    label(ax, 9.2, stream - 0.55, "residual stream", fontsize=FONT - 2, color=EDGE)
    return fig


def data_flow(B: int = 32, T: int = 64, C: int = 96, V: int = 65, n_layer: int = 3) -> plt.Figure:
    """minigpt.GPT's forward pass from token ids to the loss, with each tensor's shape (symbolic and for
    the given sizes) beside the arrow that carries it."""
    fig, ax = canvas(17, 18.2, "GPT's forward pass: the shape of every tensor")
    x0, w, h = 2.5, 6.0, 1.2  # the main column of boxes
    xc = x0 + w / 2
    shape_x = x0 + w + 0.5

    def shape(y: float, text: str) -> None:
        label(ax, shape_x, y, text, ha="left", fontsize=FONT - 1)

    rows = {  # name: the bottom of its box (the + node: its centre)
        "idx": 16.6,
        "wte": 14.0,
        "plus": 11.9,
        "blocks": 7.3,
        "ln_f": 5.3,
        "head": 3.1,
        "loss": 0.5,
    }
    box(ax, x0, rows["idx"], w, h, "token ids idx", color="data")
    shape(rows["idx"] - 0.65, f"(B, T) = ({B}, {T})")
    arrow(ax, (xc, rows["idx"]), (xc, rows["wte"] + h))
    box(ax, x0, rows["wte"], w, h, "wte: token embedding\n(a V × C table)", color="token")
    shape(rows["wte"] - 0.7, f"(B, T, C) = ({B}, {T}, {C})")
    arrow(ax, (xc, rows["wte"]), (xc, rows["plus"] + 0.35))
    _plus(ax, xc, rows["plus"])
    # Positions: one embedding per position, the same for every sequence of the batch.
    box(
        ax,
        11.0,
        rows["plus"] - h / 2,
        5.5,
        h,
        "wpe: position embedding\n(a block_size × C table)",
        color="token",
    )
    label(ax, 13.75, rows["wte"] + h / 2, "positions 0, 1, …, T−1")
    arrow(ax, (13.75, rows["wte"] + 0.25), (13.75, rows["plus"] + h / 2))
    arrow(ax, (11.0, rows["plus"]), (xc + 0.35, rows["plus"]), label=f"(T, C) = ({T}, {C})")
    # The stack of blocks, drawn as a few cards behind one another.
    stack_h = 2.6
    for k in (2, 1):
        box(ax, x0 + 0.25 * k, rows["blocks"] + 0.25 * k, w, stack_h, color="plain")
    box(
        ax,
        x0,
        rows["blocks"],
        w,
        stack_h,
        f"{n_layer} × Block\n(pre-LN attention, then\npre-LN MLP)",
        color="residual",
    )
    arrow(ax, (xc, rows["plus"] - 0.35), (xc, rows["blocks"] + stack_h + 0.5))
    shape(rows["blocks"] + stack_h + 1.0, f"(B, T, C) = ({B}, {T}, {C})")
    box(ax, x0, rows["ln_f"], w, h, "ln_f: final LayerNorm", color="norm")
    arrow(ax, (xc, rows["blocks"]), (xc, rows["ln_f"] + h))
    shape(rows["ln_f"] + h + 0.4, f"(B, T, C) = ({B}, {T}, {C})")
    box(ax, x0, rows["head"], w, h, "lm_head: C → V\n(its weight is wte's)", color="output")
    arrow(ax, (xc, rows["ln_f"]), (xc, rows["head"] + h))
    shape(rows["ln_f"] - 0.4, f"(B, T, C) = ({B}, {T}, {C})")
    box(ax, x0, rows["loss"], w, h, "cross-entropy with targets", color="output")
    arrow(ax, (xc, rows["head"]), (xc, rows["loss"] + h))
    shape(rows["head"] - 0.4, f"logits (B, T, V) = ({B}, {T}, {V})")
    label(
        ax,
        shape_x,
        rows["loss"] + h / 2,
        "loss: one number\n(targets: idx shifted by one)",
        ha="left",
        fontsize=FONT - 1,
    )
    # The tie: one matrix at both ends.
    arrow(
        ax, (x0, rows["wte"] + h / 2), (x0, rows["head"] + h / 2), curve=0.45, color="tab:red", linestyle="--"
    )
    label(
        ax,
        0.7,
        (rows["wte"] + rows["head"]) / 2 + h / 2,
        "same\nmatrix\n(tied)",
        color="tab:red",
        fontsize=FONT - 1,
    )
    return fig


def tied_head(chars: str = "abcde") -> plt.Figure:
    """Weight tying: the V x C embedding matrix read by row at the input, dotted with h at the output."""
    fig, ax = canvas(
        20, 9.6, "Weight tying: one V × C matrix embeds the input token and scores every possible next token"
    )
    C = 5  # channels drawn
    rows = [f"'{c}'" for c in chars] + ["⋮"]
    top = 7.2  # the top of the matrix
    mx = 7.0  # the matrix's left edge
    picked = 2  # the input token's row
    colors = [["token" if i == picked else "plain"] * C for i in range(len(rows))]
    cells = [["" for _ in range(C)] for _ in rows]
    cells[-1] = ["⋮"] * C
    n = len(rows)
    grid(ax, mx, top - n, cells, colors)
    for i, name in enumerate(rows):
        label(ax, mx - 0.35, top - i - 0.5, name, ha="right", fontsize=FONT - 1)
    brace(ax, mx, mx + C, top + 0.25, "C channels", below=False)
    label(ax, mx + C / 2, top - n - 0.55, "wte.weight = lm_head.weight  (V rows)", fontsize=FONT - 1)
    # Input: a token id selects its row.
    box(ax, 0.3, top - picked - 1.0, 3.4, 1.0, f"input token {rows[picked]}", color="data", fontsize=FONT - 1)
    arrow(ax, (3.7, top - picked - 0.5), (mx - 1.0, top - picked - 0.5), label="read its row")
    label(ax, 2.0, top - picked - 1.9, "embedding = that row\n(C numbers)", fontsize=FONT - 1)
    # Output: the final hidden vector is dotted with every row, one logit per token.
    lx = 16.0
    grid(ax, 12.6, top + 0.7, [[""] * C], "residual", cell=0.6)
    label(ax, 14.1, top + 1.75, "h: the final hidden vector at one position (C)", fontsize=FONT - 1)
    for i in range(n - 1):
        arrow(
            ax,
            (mx + C + 0.1, top - i - 0.5),
            (lx - 0.1, top - i - 0.5),
            label="dot product with h" if i == 0 else None,
        )
    logits = [[f"h·{r}" if r != "⋮" else "⋮"] for r in rows]
    grid(ax, lx, top - n, logits, "output", fontsize=FONT - 2)
    label(ax, lx + 0.5, top - n - 0.55, "logits: one per row (V)", fontsize=FONT - 1)
    return fig
