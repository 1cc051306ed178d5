"""Chapter 5's diagrams: one training step with its learning-rate schedule, and what a checkpoint holds."""

from __future__ import annotations

import matplotlib.pyplot as plt

from minigpt.train import TrainConfig, lr_at

from .draw import COLORS, EDGE, FONT, arrow, box, canvas, label


def training_step(
    max_steps: int = 120, warmup: int = 20, peak: float = 1e-2, floor: float = 1e-3
) -> plt.Figure:
    """The seven parts of one optimizer step, in order, beside the learning rate each step uses."""
    fig, ax = canvas(20, 11.2, "One training step, repeated max_steps times, and the learning rate it uses")
    left, width, height = 1.5, 9.0, 0.95
    rows = [
        ("1. batch: B windows x, targets y (B, T)", "data"),
        ("2. forward \u2192 logits (B, T, V)", "token"),
        ("3. loss \u00f7 accum_steps, \u00d7 scale (fp16)", "output"),
        ("4. backward: gradients add up in .grad", "residual"),
        ("5. unscale; clip global norm to \u2264 1.0", "norm"),
        ("6. AdamW step at learning rate lr(step)", "state"),
        ("7. zero the gradients; step += 1", "plain"),
    ]
    tops = [9.4 - 1.3 * i for i in range(len(rows))]
    for (text, color), y in zip(rows, tops):
        box(ax, left, y, width, height, text, color=color)
    for upper, lower in zip(tops, tops[1:]):
        arrow(ax, (left + width / 2, upper), (left + width / 2, lower + height))
    middle = [y + height / 2 for y in tops]
    # Steps 1-4 repeat once per micro-batch before the optimizer steps once.
    arrow(ax, (left + width, middle[3]), (left + width, middle[0]), curve=0.5)
    label(ax, left + width + 1.9, (middle[0] + middle[3]) / 2, "\u00d7 accum\nsteps", fontsize=FONT - 1)
    # Then the next step starts from a new batch.
    arrow(ax, (left, middle[6]), (left, middle[0]), curve=-0.3)
    label(ax, 0.55, (middle[0] + middle[6]) / 2, "next\nstep", fontsize=FONT - 1)
    label(
        ax,
        10,
        0.45,
        "every eval_interval steps: the loss on fixed windows, in fp32, without gradients or dropout",
        fontsize=FONT - 1,
        style="italic",
    )

    # The schedule, drawn inside the diagram in its own small axes (x: step, y: learning rate).
    inset = ax.inset_axes([14.4, 3.9, 5.2, 5.0], transform=ax.transData)
    steps = list(range(max_steps + 1))
    schedule = TrainConfig(max_steps=max_steps, lr=peak, min_lr=floor, warmup_steps=warmup)
    inset.plot(steps, [lr_at(step, schedule) for step in steps], color=EDGE)  # the package's schedule
    inset.axvspan(0, warmup, color=COLORS["norm"])
    inset.text(warmup * 1.15, peak * 0.3, "\u2190 warmup", ha="left", va="center", fontsize=FONT - 2)
    inset.text(max_steps * 0.62, peak * 0.72, "cosine\ndecay", ha="center", fontsize=FONT - 2)
    inset.axhline(floor, color="gray", linestyle=":", linewidth=1)
    inset.text(max_steps, floor * 1.5, "min_lr", ha="right", va="bottom", fontsize=FONT - 2)
    inset.set_yticks([floor, peak / 2, peak], [f"{floor:.0e}", f"{peak / 2:.0e}", f"{peak:.0e}"])
    inset.set_xlabel("step", fontsize=FONT - 2)
    inset.tick_params(labelsize=FONT - 2)
    inset.set_title("learning rate lr(step)", fontsize=FONT - 1)
    arrow(ax, (14.3, 4.4), (left + width + 0.05, middle[5]), curve=-0.15)
    return fig


def checkpoint_contents() -> plt.Figure:
    """A run's checkpoint folder: the `latest` pointer, one complete step folder and its three files."""
    fig, ax = canvas(20, 9.6, "What a checkpoint holds, and what each part restores")
    # The run's folder, with the pointer and the folders it may hold.
    box(ax, 0.3, 0.4, 5.2, 8.4, "", color="plain")
    label(ax, 0.55, 8.35, "runs/bpe/checkpoints/", ha="left", fontweight="bold")
    box(ax, 0.7, 6.8, 4.4, 0.95, "latest: 'step_000040'", color="norm", fontsize=FONT - 1)
    box(ax, 0.7, 4.6, 4.4, 1.5, "step_000040/\n(complete)", color="state", fontsize=FONT - 1)
    box(ax, 0.7, 2.7, 4.4, 1.3, "step_000030/\n(the one before)", color="plain", fontsize=FONT - 1)
    box(
        ax,
        0.7,
        0.7,
        4.4,
        1.4,
        ".step_000050.xxxx/\n(a temporary name,\nbeing written)",
        color="masked",
        fontsize=FONT - 2,
    )
    arrow(ax, (2.9, 6.8), (2.9, 6.1))

    # The three files of the complete step folder, and what each restores.
    files = [
        (
            "model.safetensors",
            "every weight tensor by name\n(the tied head stored once)",
            "the model",
            "token",
        ),
        ("config.json", "GPTConfig and TrainConfig", "the same shapes,\nthe same schedule", "data"),
        (
            "state.pt",
            "step; AdamW's m and v per weight;\nGradScaler's scale; the batch\n"
            "generator's and dropout RNG's states;\nthe loss history",
            "lr(step); each weight's\nstep size; the same next\nbatches and dropout\nmasks",
            "state",
        ),
    ]
    heights, y = [1.5, 1.3, 2.9], 8.2
    for (name, holds, restores, color), h in zip(files, heights):
        y -= h
        box(ax, 6.4, y, 7.2, h, "", color=color)
        label(ax, 6.6, y + h - 0.32, name, ha="left", fontweight="bold", fontsize=FONT - 1)
        label(ax, 6.6, y + (h - 0.4) / 2, holds, ha="left", fontsize=FONT - 1)
        arrow(ax, (13.7, y + h / 2), (14.6, y + h / 2))
        label(ax, 14.8, y + h / 2, restores, ha="left", fontsize=FONT - 1)
        arrow(ax, (5.1, 5.35), (6.35, y + h / 2))
        y -= 0.35
    label(ax, 14.8, 8.35, "restores", ha="left", fontweight="bold")
    return fig
