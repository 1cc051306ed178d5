"""Chapter 1's pictures: text windows as a (B, T) batch, the bigram as a table lookup, the sampling loop."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from .draw import FONT, arrow, box, brace, canvas, grid, label

ROW_NUMBER = "#666666"
EXAMPLE = "#c0392b"  # the marked example's arrow


def visible(ch: str) -> str:
    """A character as a diagram shows it: newline and space get a visible symbol."""
    return {"\n": "↵", " ": "␣"}.get(ch, ch)


def batch_of_windows(x_rows: Sequence[str], y_rows: Sequence[str], example: int = 3) -> plt.Figure:
    """Windows cut at random places become x (contexts) and y (the same windows shifted by one).

    `x_rows` and `y_rows` are the decoded rows of a batch, e.g. from `get_batch`; the first window is
    drawn whole, and one of its examples (context x[0, :example] -> target y[0, example - 1]) is marked.
    """
    B, T = len(x_rows), len(x_rows[0])
    if any(len(x) != T or len(y) != T or x[1:] != y[:-1] for x, y in zip(x_rows, y_rows)):
        raise ValueError("each y row must be its x row shifted left by one, all rows of equal length")
    width = 2 * T + 4
    fig, ax = canvas(
        width, B + 10.2, title=f"A batch: {B} random windows of the text, x and y shifted by one"
    )

    # The text, with the windows cut from it at random start positions (drawn schematically).
    top = B + 8.6
    box(ax, 1, top, width - 2, 0.7, color="data", rounded=False)
    label(ax, 1, top - 0.4, "the training text (about a million characters)", fontsize=FONT - 1, ha="left")
    for b, start in enumerate([0.62, 0.1, 0.83, 0.37][:B] + [0.5] * max(0, B - 4)):
        x0 = 1.2 + start * (width - 3.4)
        box(ax, x0, top, 1.0, 0.7, color="attention", rounded=False)
        label(ax, x0 + 0.5, top + 1.05, f"window {b}", fontsize=FONT - 2)

    # Window 0 whole: T + 1 characters give T (context, target) examples.
    window = x_rows[0] + y_rows[0][-1]
    wx, wy = (width - (T + 1)) / 2, B + 4.6
    grid(ax, wx, wy, [[visible(c) for c in window]], colors="attention")
    label(ax, wx - 0.3, wy + 0.5, f"window 0:\nT + 1 = {T + 1} characters", fontsize=FONT - 1, ha="right")
    arrow(ax, (1.2 + 0.62 * (width - 3.4) + 0.5, top - 0.05), (wx + T + 0.5, wy + 1.05))
    brace(ax, wx + 0.05, wx + T - 0.05, wy + 1.25, "x[0]: the first T characters", below=False)
    brace(ax, wx + 1.05, wx + T + 0.95, wy - 0.25, "y[0]: the last T (shifted by one)")

    # The batch: x and y, B rows of T tokens each.
    colors_x = [["token"] * T for _ in range(B)]
    colors_y = [["output"] * T for _ in range(B)]
    for t in range(example):
        colors_x[0][t] = "query"
    colors_y[0][example - 1] = "query"
    gx, gy = 1, 0.9
    grid(ax, gx, gy, [[visible(c) for c in row] for row in x_rows], colors=colors_x)
    grid(ax, gx + T + 2, gy, [[visible(c) for c in row] for row in y_rows], colors=colors_y)
    label(ax, gx + T / 2, gy - 0.45, f"x: contexts, shape (B, T) = ({B}, {T})")
    label(ax, gx + T + 2 + T / 2, gy - 0.45, f"y: targets, shape (B, T) = ({B}, {T})")
    for b in range(B):
        label(ax, gx - 0.45, gy + B - 0.5 - b, str(b), fontsize=FONT - 2, color=ROW_NUMBER)
    arrow(
        ax,
        (gx + example - 0.2, gy + B - 0.5),
        (gx + T + 2 + example - 0.5, gy + B - 0.05),
        curve=-0.25,
        color=EXAMPLE,
    )
    label(
        ax,
        width / 2,
        gy + B + 1.6,
        f"one example: context x[0, :{example}] = “{''.join(visible(c) for c in x_rows[0][:example])}”"
        f" → target y[0, {example - 1}] = “{visible(y_rows[0][example - 1])}”"
        f"   ({B} × {T} = {B * T} examples in all)",
        fontsize=FONT - 1,
    )
    return fig


def lookup(
    logits_row: Sequence[float], chars: Sequence[str], current: str, target: str, shown: int = 6
) -> plt.Figure:
    """The neural bigram's forward pass for one example: the current character's row of the table is its
    logits; a softmax makes them probabilities; the loss is -log of the target's probability.

    `logits_row` is the table's row for `current` (one logit per character of `chars`); the `shown` most
    likely next characters are drawn, with `target` among them.
    """
    if len(logits_row) != len(chars):
        raise ValueError(
            f"logits_row has {len(logits_row)} entries but chars has {len(chars)}: one per character"
        )
    logits = np.asarray(logits_row, dtype=float)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    order = [int(i) for i in np.argsort(-probs)[:shown]]
    t = chars.index(target)
    if t not in order:
        order[-1] = t
    V = len(chars)
    fig, ax = canvas(20, 8.2, title="The neural bigram is a lookup: one row of the table, a softmax, a loss")

    # The current character and its id select one row of the V x V table.
    box(
        ax,
        0.2,
        4.2,
        2.2,
        1.2,
        f"“{visible(current)}”\nid {chars.index(current)}",
        color="token",
        fontsize=FONT,
    )
    label(ax, 1.3, 3.7, "current", fontsize=FONT - 1)
    tx, ty, tw, th = 3.4, 2.4, 3.0, 4.8
    box(ax, tx, ty, tw, th, color="plain", rounded=False)
    row_y = ty + th * (1 - (chars.index(current) + 1) / V)
    box(ax, tx, row_y, tw, th / V * 2, color="query", rounded=False)
    label(ax, tx + tw / 2, ty - 0.4, f"table: nn.Embedding({V}, {V})", fontsize=FONT - 1)
    label(ax, tx + tw / 2, row_y + 0.45, f"row {chars.index(current)}", fontsize=FONT - 1)
    arrow(ax, (2.45, 4.8), (tx - 0.05, row_y + th / V))

    # That row, for the most likely next characters: logits, then probabilities.
    gx, cell = 8.3, 1.45
    heads = [visible(chars[i]) for i in order] + ["…"]
    logit_cells = [[f"{logits[i]:.1f}" for i in order] + [f"{V - len(order)} more"]]
    prob_cells = [[f"{probs[i]:.2f}" for i in order] + [f"{1 - probs[order].sum():.2f}"]]
    colors = [["output" if i == t else "plain" for i in order] + ["plain"]]
    for j, head in enumerate(heads):
        label(ax, gx + (j + 0.5) * cell, 7.3, head, fontsize=FONT)
    label(ax, gx - 0.2, 7.3, "next:", fontsize=FONT - 1, ha="right")
    grid(ax, gx, 5.5, logit_cells, colors=[["token"] * len(heads)], cell=cell, fontsize=FONT - 2)
    label(ax, gx - 0.2, 6.2, "logits", fontsize=FONT - 1, ha="right")
    arrow(ax, (tx + tw + 0.05, row_y + th / V), (gx - 1.3, 6.0))
    arrow(ax, (gx + 3 * cell, 5.45), (gx + 3 * cell, 4.15), label="softmax", label_offset=(0.75, -0.2))
    grid(ax, gx, 2.65, prob_cells, colors=colors, cell=cell, fontsize=FONT - 2)
    label(ax, gx - 0.2, 3.35, "P(next)", fontsize=FONT - 1, ha="right")
    label(ax, gx + len(heads) * cell / 2, 2.25, f"all {V} probabilities sum to 1", fontsize=FONT - 2)

    # The loss of this example: minus the log of the probability given to the character that came next.
    p = probs[t]
    label(
        ax,
        gx + len(heads) * cell / 2,
        1.0,
        f"target “{visible(target)}”:  loss = −log P(“{visible(target)}” | “{visible(current)}”)"
        f" = −log {p:.2f} = {-np.log(p):.2f}",
        fontsize=FONT - 1,
    )
    return fig


def sampling_loop(text: str, steps: int = 5) -> plt.Figure:
    """Generation as a loop: predict the next token's distribution, draw one, append it, repeat.

    `text` is a generated text, prompt first; its first `steps` draws are shown on the right.
    """
    if len(text) < steps + 1:
        raise ValueError(f"text must hold the prompt and at least {steps} drawn characters, got {len(text)}")
    fig, ax = canvas(20, 7.6, title="Sampling: predict, draw, append, repeat")

    # The loop, as four boxes in a cycle.
    boxes = [
        (0.3, 5.0, "context: the tokens\nso far, (1, T)", "token"),
        (5.0, 5.0, "model: logits of the\nlast position, (1, V)", "attention"),
        (5.0, 1.2, "softmax → P(next);\nmultinomial draws one", "output"),
        (0.3, 1.2, "append it:\n(1, T + 1)", "token"),
    ]
    w, h = 4.3, 1.5
    for x, y, text_, color in boxes:
        box(ax, x, y, w, h, text_, color=color, fontsize=FONT - 1)
    arrow(ax, (0.3 + w, 5.75), (5.0, 5.75))
    arrow(ax, (5.0 + w / 2, 5.0), (5.0 + w / 2, 1.2 + h))
    arrow(ax, (5.0, 1.95), (0.3 + w, 1.95))
    arrow(ax, (0.3 + w / 2, 1.2 + h), (0.3 + w / 2, 5.0), label="repeat", label_offset=(0.7, -0.1))

    # The first draws of a real sample: each context is the last one with the drawn character appended.
    sx, cell = 10.4, 0.62
    label(ax, sx, 6.9, "the first steps of a real sample", fontsize=FONT - 1, ha="left")
    for i in range(steps):
        y = 5.6 - i * 1.05
        context = [visible(c) for c in text[: i + 1]]
        grid(ax, sx, y, [context], colors="token", cell=cell, fontsize=FONT - 2)
        drawn_x = sx + (steps + 1) * cell + 0.3
        arrow(ax, (sx + len(context) * cell + 0.05, y + cell / 2), (drawn_x - 0.05, y + cell / 2))
        grid(ax, drawn_x, y, [[visible(text[i + 1])]], colors="output", cell=cell, fontsize=FONT - 2)
    label(ax, sx + (steps + 1) * cell + 0.3 + cell / 2, 6.4, "drawn", fontsize=FONT - 2)
    label(ax, sx, 0.35, "(a bigram model reads only the last character)", fontsize=FONT - 2, ha="left")
    return fig
