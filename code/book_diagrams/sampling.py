"""Chapter 7's pictures: the decoding rules in order, a batch with stop tokens, what the KV cache keeps,
prefill and decode calls, and the window that slides past block_size."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import Patch

from .draw import COLORS, FONT, arrow, box, brace, canvas, grid, label


def legend_below(ax: plt.Axes, entries: list[tuple[str, str]]) -> None:
    """One row of coloured squares under the drawing: (text, colour role in COLORS) for each entry."""
    ax.legend(
        handles=[Patch(facecolor=COLORS[role], edgecolor="#444444", label=text) for text, role in entries],
        loc="lower center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=len(entries),
        fontsize=FONT - 1,
        frameon=False,
    )


def decoding_rules() -> plt.Figure:
    """The path from a row of logits to the next token, with the greedy short cut at temperature 0."""
    fig, ax = canvas(20, 4.6, title="From logits to the next token: each rule is one small function")
    steps = [
        ("logits\n(B, V)", "token"),
        ("÷ temperature\napply_temperature", "mlp"),
        ("keep k largest\ntop_k_filter", "attention"),
        ("smallest set\nreaching p\ntop_p_filter", "attention"),
        ("softmax\n→ probabilities", "norm"),
        ("draw one\nmultinomial", "output"),
    ]
    x, y, w, h, gap = 0.1, 1.1, 3.03, 1.9, 0.33
    for i, (text, color) in enumerate(steps):
        box(ax, x + i * (w + gap), y, w, h, text, color=color, fontsize=FONT - 1)
        if i:
            arrow(ax, (x + i * (w + gap) - gap, y + h / 2), (x + i * (w + gap), y + h / 2))
    small = FONT - 1
    cut_x = x + 2 * (w + gap) + w + gap / 2  # under the two filters
    label(ax, cut_x, y - 0.5, "cut tokens get logit −inf: probability 0", fontsize=small)
    arrow(ax, (x + w / 2, y + h), (x + 5 * (w + gap) + w / 2, y + h), curve=-0.12, color="#b03a2e")
    label(ax, 10, 4.15, "temperature 0: greedy, the argmax, nothing drawn", fontsize=small, color="#b03a2e")
    return fig


def batch_with_stops(tokens, lengths, prompt_length: int, stop_tokens) -> plt.Figure:
    """A `Generation` as a grid: one row per prompt, one cell per token, coloured by its role."""
    tokens, lengths = tokens.tolist(), lengths.tolist()
    stops = set(stop_tokens)
    rows, width = len(tokens), len(tokens[0])
    cell = min(0.5, 17.0 / width)

    def role(row: list[int], n: int, t: int) -> str:
        if t < prompt_length:
            return "token"
        return "masked" if t >= n else "attention" if row[t] in stops else "mlp"

    colors = [[role(row, n, t) for t in range(width)] for row, n in zip(tokens, lengths)]
    fig, ax = canvas(20, rows * cell + 2.0, title="A batch with stop tokens: each row ends on its own")
    top = 1.2
    grid(ax, 1.4, top, [[""] * width for _ in range(rows)], colors=colors, cell=cell)
    for i, n in enumerate(lengths):
        y = top + (rows - 1 - i) * cell + cell / 2
        label(ax, 0.7, y, f"row {i}", fontsize=FONT - 1)
        label(ax, 1.6 + width * cell, y, f"length {n}", fontsize=FONT - 1, ha="left")
    legend_below(
        ax, [("prompt", "token"), ("new token", "mlp"), ("stop token", "attention"), ("padding", "masked")]
    )
    return fig


def kv_cache(steps: int = 6) -> plt.Figure:
    """Step t without a cache (all t positions rerun) beside step t with one (one new position)."""
    fig, ax = canvas(20, 9.6, title=f"Step t = {steps}: what attention computes without and with a KV cache")
    t = steps
    # Left: the whole causal attention matrix is recomputed; only its last row is new.
    cell = 0.9
    colors = [["norm" if j <= i else "plain" for j in range(t)] for i in range(t - 1)]
    colors.append(["attention"] * t)
    scores = [["" for _ in range(t)] for _ in range(t)]
    x0, y0 = 2.2, 1.6
    grid(ax, x0, y0, scores, colors=colors, cell=cell)
    for j in range(t):
        label(ax, x0 + (j + 0.5) * cell, y0 + t * cell + 0.35, f"k{j + 1}", fontsize=FONT - 1)
        label(ax, x0 - 0.45, y0 + (t - 0.5 - j) * cell, f"q{j + 1}", fontsize=FONT - 1)
    label(ax, x0 + t * cell / 2, 8.45, "No cache: rerun all t positions", fontsize=FONT)
    brace(ax, x0, x0 + t * cell, y0 - 0.15, "only the last row is new")
    label(ax, x0 + t * cell / 2, 0.45, "grey: rerun, though earlier steps had them", fontsize=FONT - 1)

    # Right: stored keys and values, one new column each; one query row of scores.
    xr, cell_r = 11.3, 0.95
    new = "output"
    k_cells = [[f"k{j + 1}" for j in range(t)]]
    v_cells = [[f"v{j + 1}" for j in range(t)]]
    stored = [["key"] * (t - 1) + [new]]
    label(ax, xr + t * cell_r / 2, 8.45, "KV cache: run one position", fontsize=FONT)
    box(ax, xr - 2.6, 6.05, 1.7, 0.95, f"q{t}", color="query")
    grid(ax, xr, 6.05, k_cells, colors=stored, cell=cell_r)
    label(ax, xr + t * cell_r + 0.25, 6.52, "keys", fontsize=FONT - 1, ha="left")
    arrow(ax, (xr - 0.9, 6.52), (xr - 0.05, 6.52))
    grid(ax, xr, 4.1, [["" for _ in range(t)]], colors="attention", cell=cell_r)
    label(ax, xr + t * cell_r + 0.25, 4.57, "one row of\nscores", fontsize=FONT - 1, ha="left")
    arrow(ax, (xr + t * cell_r / 2, 6.0), (xr + t * cell_r / 2, 5.1), label=None)
    grid(ax, xr, 2.15, v_cells, colors=[["value"] * (t - 1) + [new]], cell=cell_r)
    label(ax, xr + t * cell_r + 0.25, 2.62, "values", fontsize=FONT - 1, ha="left")
    arrow(ax, (xr + t * cell_r / 2, 4.05), (xr + t * cell_r / 2, 3.15))
    brace(ax, xr, xr + (t - 1) * cell_r, 7.35, "stored at earlier steps", below=False)
    label(ax, xr + t * cell_r / 2, 1.45, f"k{t} and v{t} are computed now and appended", fontsize=FONT - 1)
    label(ax, xr + t * cell_r / 2, 0.85, "kept per layer: (B, n_head, t, head_size) each", fontsize=FONT - 1)
    return fig


def prefill_and_decode(prompt_length: int = 4, decode_steps: int = 2, capacity: int = 8) -> plt.Figure:
    """The calls of a cached generation: one prefill over the prompt, then one position per call."""
    calls = 1 + decode_steps
    cell, x0, top = 0.8, 3.6, 1.9 + calls * 1.5
    fig, ax = canvas(20, top + 1.4, title="Prefill, then decode: each call runs only what the cache lacks")
    for j in range(capacity):  # one column per position of the preallocated buffers
        label(ax, x0 + (j + 0.5) * cell, top + 0.45, str(j), fontsize=FONT - 1)
    label(ax, x0 - 0.3, top + 0.45, "position", fontsize=FONT - 1, ha="right")
    for call in range(calls):
        stored = 0 if call == 0 else prompt_length + call - 1  # positions the cache holds before this call
        run = prompt_length if call == 0 else 1  # positions this call runs through the model
        roles = ["key"] * stored + ["token"] * run + ["plain"] * (capacity - stored - run)
        names = [f"t{j + 1}" if j < stored + run else "" for j in range(capacity)]
        y = top - 1.4 - call * 1.5
        grid(ax, x0, y, [names], colors=[roles], cell=cell)
        kind = "prefill" if call == 0 else "decode"
        label(ax, x0 - 0.3, y + cell / 2, f"call {call + 1}: {kind}", fontsize=FONT - 1, ha="right")
        x_end = x0 + capacity * cell
        arrow(ax, (x_end + 0.15, y + cell / 2), (x_end + 1.35, y + cell / 2))
        box(ax, x_end + 1.45, y, 1.2, cell, f"t{stored + run + 1}", color="output", fontsize=FONT - 1)
        what = f"runs {run} positions at once" if run > 1 else f"runs 1 position, reads {stored} stored"
        label(ax, x_end + 2.85, y + cell / 2, what, fontsize=FONT - 1, ha="left")
    legend_below(
        ax,
        [
            ("run in this call (keys, values stored)", "token"),
            ("read from the cache", "key"),
            ("free slot", "plain"),
        ],
    )
    return fig


def sliding_window(block_size: int = 4) -> plt.Figure:
    """Past block_size the window slides: the same tokens sit at new positions, so every key changes."""
    n = block_size + 1  # tokens t1 .. t(block_size + 1), one column each
    cell, x0 = 1.3, 4.6
    fig, ax = canvas(20, 6.4, title=f"Past the context (block_size = {block_size}): the window slides")
    rows = [
        ("a full window", list(range(block_size)) + [None]),
        ("one token later", [None] + list(range(block_size))),
    ]
    for r, (name, positions) in enumerate(rows):
        y = 3.9 - r * 2.7
        names = [f"t{j + 1}" if r == 1 or j < block_size else "" for j in range(n)]
        roles = [
            "masked" if r == 1 and j == 0 else "token" if p is not None else "plain"
            for j, p in enumerate(positions)
        ]
        grid(ax, x0, y, [names], colors=[roles], cell=cell)
        label(ax, x0 - 0.3, y + cell / 2, name, fontsize=FONT - 1, ha="right")
        for j, p in enumerate(positions):
            if p is not None:
                moved = r == 1 and j < block_size
                label(
                    ax,
                    x0 + (j + 0.5) * cell,
                    y - 0.4,
                    f"pos {p}",
                    fontsize=FONT - 1,
                    color="#b03a2e" if moved else "black",
                )
    label(ax, x0 + 0.5 * cell, y - 0.95, "dropped", fontsize=FONT - 1)
    note_x = x0 + n * cell + 0.6
    label(
        ax,
        note_x,
        3.0,
        "every kept token has moved one position:\n"
        "a new position embedding, so new keys\nand values in every layer",
        fontsize=FONT - 1,
        ha="left",
        color="#b03a2e",
    )
    label(
        ax,
        note_x,
        1.45,
        "generate refills the cache at each step:\na prefill over the whole window",
        fontsize=FONT - 1,
        ha="left",
    )
    return fig
