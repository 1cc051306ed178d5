"""Chapter 9's diagrams: what a reward model reads, and the four log-probabilities of DPO's loss."""

from __future__ import annotations

import matplotlib.pyplot as plt

from .draw import EDGE, FONT, arrow, box, canvas, grid, label

EOT = "⟨eot⟩"


def reward_model() -> plt.Figure:
    """Prompt + reply through the GPT; the hidden state at the reply's last token; a linear head to one
    number; the chosen and the rejected reply compared by the Bradley-Terry loss."""
    fig, ax = canvas(21.0, 11.4, "A reward model: one number per reply, read at the reply's last token")
    cell = 1.0
    rows = (
        ("chosen", ["…", "\\n", "It", " is", " five", "."], 9.0),
        ("rejected", ["…", "\\n", "It", " is", " one", "."], 4.2),
    )
    for name, tokens, y in rows:
        label(ax, 0.2, y + 1.6, f"prompt + {name} reply", ha="left", fontsize=FONT - 1)
        colors = [["token", "token", "output", "output", "output", "output"]]
        grid(ax, 0.2, y, [tokens], colors, cell=cell, fontsize=FONT - 2)
        gx, gy, gw, gh = box(ax, 7.4, y - 0.2, 3.2, 1.4, "GPT blocks\n+ LayerNorm", color="mlp", fontsize=FONT - 1)
        arrow(ax, (6.3, y + 0.5), (gx, y + 0.5))
        # the hidden state of the last token only (where the LM head would predict end-of-text)
        hx, hy, hw, hh = box(ax, 11.6, y - 0.1, 2.6, 1.2, "h at \".\"\n(C numbers)", color="state", fontsize=FONT - 2)
        arrow(ax, (gx + gw, y + 0.5), (hx, y + 0.5))
        kx, ky, kw, kh = box(ax, 15.2, y - 0.1, 2.2, 1.2, "linear\nC → 1", color="output", fontsize=FONT - 1)
        arrow(ax, (hx + hw, y + 0.5), (kx, y + 0.5))
        r = "r(chosen)" if name == "chosen" else "r(rejected)"
        label(ax, 19.3, y + 0.5, r, fontsize=FONT - 1)
        arrow(ax, (kx + kw, y + 0.5), (18.1, y + 0.5))
    box(ax, 11.2, 0.4, 9.4, 1.6, "loss = −log σ(r(chosen) − r(rejected))", color="attention", fontsize=FONT - 1)
    # each reward goes into the loss on its own: the chosen one down the right edge, past the rejected row
    arrow(ax, (20.6, 9.0), (20.6, 2.0))
    arrow(ax, (19.3, 4.1), (19.3, 2.0))
    label(ax, 0.2, 2.6, "The same weights score both replies.", ha="left", fontsize=FONT - 1)
    label(ax, 0.2, 1.6, "The LM head is not used:", ha="left", fontsize=FONT - 1)
    label(ax, 0.2, 0.8, "one hidden state, one number.", ha="left", fontsize=FONT - 1)
    ax.text(0.2, 7.1, "prompt tokens (blue), reply tokens (orange); …: the rest of the prompt", fontsize=FONT - 1)
    return fig


def dpo_logprobs() -> plt.Figure:
    """The policy and the frozen reference each score the chosen and the rejected reply to a prompt x;
    DPO's loss compares how much more likely the policy finds each than the reference does."""
    fig, ax = canvas(16.8, 12.4, "DPO: four log-probabilities of the replies' tokens, one loss")
    # the two models, each scoring both replies (its row)
    box(ax, 0.3, 8.2, 4.4, 1.6, "policy π\n(trained)", color="output", fontsize=FONT)
    box(ax, 0.3, 4.2, 4.4, 1.6, "reference π_ref\n(frozen copy)", color="norm", fontsize=FONT)
    label(ax, 8.0, 11.6, "chosen reply y_w", fontsize=FONT - 1)
    label(ax, 13.6, 11.6, "rejected reply y_l", fontsize=FONT - 1)
    label(ax, 10.8, 10.8, "each: the sum over the reply's tokens and its end-of-text,", fontsize=FONT - 2)
    label(ax, 10.8, 10.25, "given the prompt x", fontsize=FONT - 2)
    cells = {
        (0, 0): "log π(y_w | x)",
        (0, 1): "log π(y_l | x)",
        (1, 0): "log π_ref(y_w | x)",
        (1, 1): "log π_ref(y_l | x)",
    }
    for (row, col), text in cells.items():
        y = 8.2 if row == 0 else 4.2
        color = "output" if row == 0 else "norm"
        box(ax, 5.6 + col * 5.6, y, 4.8, 1.6, text, color=color, fontsize=FONT - 1)
    arrow(ax, (4.7, 9.0), (5.6, 9.0))  # a model scores both replies: the arrow enters its row
    arrow(ax, (4.7, 5.0), (5.6, 5.0))
    # down each column: the implicit reward, then into the loss
    for col, name in ((0, "y_w"), (1, "y_l")):
        x = 8.0 + col * 5.6
        arrow(ax, (x, 8.2), (x, 5.8))
        label(ax, x + 0.25, 7.0, "−", ha="left", fontsize=FONT + 2)
        label(ax, x, 3.5, "β × (top − bottom)", fontsize=FONT - 1)
        label(ax, x, 2.8, f"= reward of {name}", fontsize=FONT - 1)
        arrow(ax, (x, 2.4), (x, 1.7))
    box(ax, 5.6, 0.2, 10.4, 1.5, "loss = −log σ(reward of y_w − reward of y_l)", color="attention", fontsize=FONT - 1)
    label(ax, 2.5, 7.0, "gradients flow", fontsize=FONT - 2)
    label(ax, 2.5, 6.4, "only through π", fontsize=FONT - 2)
    return fig
