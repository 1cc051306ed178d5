"""Chapter 1's pictures: how random windows of the text become a (B, T) batch of examples."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt

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
