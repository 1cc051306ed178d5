"""Chapter 8's diagrams: what a reward model reads, and the four log-probabilities of DPO's loss."""

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
        arrow(ax, (kx + kw, y + 0.5), (18.2, y + 0.5))
    box(ax, 11.2, 0.4, 9.4, 1.6, "loss = −log σ(r(chosen) − r(rejected))", color="attention", fontsize=FONT - 1)
    arrow(ax, (19.3, 8.9), (19.3, 5.4), curve=0.0)
    arrow(ax, (19.3, 4.1), (19.3, 2.1))
    label(ax, 0.2, 2.6, "The same weights score both replies.", ha="left", fontsize=FONT - 1)
    label(ax, 0.2, 1.6, "The LM head is not used:", ha="left", fontsize=FONT - 1)
    label(ax, 0.2, 0.8, "one hidden state, one number.", ha="left", fontsize=FONT - 1)
    ax.text(
        0.2, 7.1, "prompt tokens (blue), reply tokens (orange); …: the rest of the prompt", fontsize=FONT - 2,
        color=EDGE,
    )
    return fig


def dpo_logprobs() -> plt.Figure:
    """The policy and the frozen reference each score the chosen and the rejected reply; DPO's loss
    compares how much more likely the policy finds each than the reference does."""
    fig, ax = canvas(21.0, 10.6, "DPO: four log-probabilities of the replies' tokens, one loss")
    # the two models
    box(ax, 0.3, 6.4, 4.4, 1.6, "policy π\n(trained)", color="output", fontsize=FONT)
    box(ax, 0.3, 2.4, 4.4, 1.6, "reference π_ref\n(frozen copy)", color="norm", fontsize=FONT)
    # the four numbers: rows are models, columns are replies
    label(ax, 8.0, 9.6, "chosen reply y_w", fontsize=FONT - 1)
    label(ax, 13.6, 9.6, "rejected reply y_l", fontsize=FONT - 1)
    cells = {
        (0, 0): "log π(y_w | x)",
        (0, 1): "log π(y_l | x)",
        (1, 0): "log π_ref(y_w | x)",
        (1, 1): "log π_ref(y_l | x)",
    }
    for (row, col), text in cells.items():
        y = 6.4 if row == 0 else 2.4
        color = "output" if row == 0 else "norm"
        box(ax, 5.6 + col * 5.6, y, 4.8, 1.6, text, color=color, fontsize=FONT - 1)
    arrow(ax, (4.7, 7.2), (5.6, 7.2))
    arrow(ax, (4.7, 3.2), (5.6, 3.2))
    # the differences down each column: the implicit rewards
    for col, name in ((0, "chosen"), (1, "rejected")):
        x = 8.0 + col * 5.6
        arrow(ax, (x, 6.4), (x, 4.0), label=None)
        label(ax, x + 0.25, 5.2, "−", ha="left", fontsize=FONT + 2)
    label(ax, 8.0, 1.6, "β × (top − bottom)", fontsize=FONT - 1)
    label(ax, 8.0, 0.8, "= reward of y_w", fontsize=FONT - 1)
    label(ax, 13.6, 1.6, "β × (top − bottom)", fontsize=FONT - 1)
    label(ax, 13.6, 0.8, "= reward of y_l", fontsize=FONT - 1)
    arrow(ax, (15.9, 1.2), (18.0, 3.9))
    arrow(ax, (10.3, 0.5), (19.6, 3.9), curve=0.25)
    box(ax, 16.9, 3.9, 3.9, 3.0, "loss =\n−log σ(\nreward y_w\n− reward y_l)", color="attention", fontsize=FONT - 1)
    label(ax, 18.85, 8.6, "only the reply's", fontsize=FONT - 2)
    label(ax, 18.85, 7.9, "tokens count", fontsize=FONT - 2)
    label(ax, 2.5, 5.2, "gradients flow", fontsize=FONT - 2)
    label(ax, 2.5, 4.6, "only through π", fontsize=FONT - 2)
    return fig
