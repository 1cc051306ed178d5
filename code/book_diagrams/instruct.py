"""Chapter 8's diagrams: an instruction batch with its targets, and the chat's context window."""

from __future__ import annotations

import matplotlib.pyplot as plt

from .draw import EDGE, FONT, arrow, box, canvas, grid, label

EOT = "⟨eot⟩"
IGNORED = "-100"


def _row_colors(row: list[str], prompt_length: int, pad_from: int) -> list[str]:
    """Colour by role: prompt, response, the example's end-of-text, padding or ignored target."""
    colors = []
    for t, token in enumerate(row):
        if token == IGNORED:
            colors.append("masked")
        elif t >= pad_from:
            colors.append("plain")
        elif token == EOT:
            colors.append("state")
        else:
            colors.append("token" if t < prompt_length else "output")
    return colors


def instruction_batch() -> plt.Figure:
    """Two examples padded to one length, their inputs x and targets y, with what the loss ignores."""
    # The end of each prompt ("... ### Response:" and a newline), then the response and end-of-text.
    short = ["…", "###", " Response", ":", "\\n", "cat", EOT]
    long = ["…", "###", " Response", ":", "\\n", "cat", "\\n", "dog", EOT]
    prompt_length = 5
    cell = 1.4
    width = (len(long) - 1) * cell
    fig, ax = canvas(
        width + 9.0,
        8.6,
        "A batch with response masking: pad, shift by one, score the response and its end-of-text",
    )
    y0 = 6.0
    for name, tokens in (("short example", short), ("long example", long)):
        padded = tokens + [EOT] * (len(long) - len(tokens))
        x = padded[:-1]
        y_plain = padded[1:]
        # targets: the prompt's are ignored (masking) and so is all padding after the first end-of-text
        y = [
            IGNORED if t < prompt_length - 1 or t >= len(tokens) - 1 else token
            for t, token in enumerate(y_plain)
        ]
        pad_from = len(tokens) - 1
        label(ax, 0.2, y0 + cell + 0.5, name, ha="left", fontsize=FONT)
        label(ax, 1.0, y0 + cell / 2, "x", fontsize=FONT)
        label(ax, 1.0, y0 - cell / 2, "y", fontsize=FONT)
        grid(ax, 1.6, y0, [x], [_row_colors(x, prompt_length, pad_from)], cell=cell, fontsize=FONT - 2)
        colors = _row_colors(y, prompt_length - 1, pad_from)
        grid(ax, 1.6, y0 - cell, [y], [colors], cell=cell, fontsize=FONT - 2)
        y0 -= 3.9
    legend = [
        ("token", "prompt"),
        ("output", "response"),
        ("state", "end-of-text (learn to stop)"),
        ("plain", "padding"),
        ("masked", "-100 (no loss)"),
    ]
    for i, (color, text) in enumerate(legend):
        box(ax, width + 2.2, 6.9 - 1.3 * i, 0.7, 0.7, color=color, rounded=False)
        label(ax, width + 3.1, 7.25 - 1.3 * i, text, ha="left", fontsize=FONT - 1)
    ax.text(
        1.6,
        0.25,
        "y is x shifted left by one: y[t] is the token that follows x[:t+1]",
        fontsize=FONT - 1,
        color=EDGE,
    )
    return fig


def chat_window(turns: int = 4, kept: int = 2) -> plt.Figure:
    """A base model's chat prompt: the newest turns that fit, the new message, and room for the reply.
    (An instruction-tuned model gets the new message alone, in its template.)"""
    fig, ax = canvas(
        20, 5.2, "What the chat sends a base model: the latest turns that fit, the message, room to reply"
    )
    x = 0.4
    for i in range(turns):
        dropped = i < turns - kept
        w = 3.0
        box(ax, x, 2.2, w, 1.2, f"turn {i + 1}", color="masked" if dropped else "data")
        x += w + 0.2
    box(ax, x, 2.2, 3.2, 1.2, "new message", color="token")
    x_reply = x + 3.4
    box(ax, x_reply, 2.2, 19.6 - x_reply, 1.2, "reply budget", color="output")
    start = 0.4 + (turns - kept) * 3.2
    ax.plot([start, start], [1.2, 4.2], color=EDGE, linestyle="--", linewidth=1.2)
    ax.plot([19.6, 19.6], [1.2, 4.2], color=EDGE, linestyle="--", linewidth=1.2)
    arrow(ax, (start, 1.5), (19.6, 1.5))
    arrow(ax, (19.6, 1.5), (start, 1.5))
    label(ax, (start + 19.6) / 2, 0.9, "the model's context window (block_size tokens)", fontsize=FONT - 1)
    label(ax, (0.4 + start) / 2, 4.0, "dropped, oldest first", fontsize=FONT - 1, color=EDGE)
    return fig
