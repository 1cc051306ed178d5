"""The appendix on Chinese text: how one line becomes tokens, character by character or byte by byte.

Matplotlib's default fonts have no Chinese glyphs (nor does Colab's), so the diagram names each
character by its code point (U+79E6) and the notebook prints the characters themselves beside it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from .draw import FONT, box, canvas, label

CELL = 0.95  # units per byte
ROW = 1.25  # units between rows
LEFT = 4.4  # room for the row names


def _boundaries(pieces: list[bytes]) -> list[int]:
    """The byte offsets at which each piece starts, and the total length at the end."""
    offsets = [0]
    for piece in pieces:
        offsets.append(offsets[-1] + len(piece))
    return offsets


def line_as_tokens(text: str, tokenizations: dict[str, list[bytes]]) -> plt.Figure:
    """`text`'s characters, their UTF-8 bytes, and the tokens of each tokenizer over those bytes.

    `tokenizations` maps a tokenizer's name to its tokens' bytes, in order (for a tiktoken encoding,
    `[enc.decode_single_token_bytes(i) for i in enc.encode(text)]`); each row's bytes must be the text's.
    A token that starts or ends inside a character is shaded apart: decoded alone, it is not UTF-8.
    """
    data = text.encode("utf-8")
    for name, pieces in tokenizations.items():
        if b"".join(pieces) != data:
            raise ValueError(f"the tokens of {name!r} do not spell the text's {len(data)} UTF-8 bytes")
    char_bytes = [c.encode("utf-8") for c in text]
    char_starts = set(_boundaries(char_bytes))
    rows = 2 + len(tokenizations)
    width = LEFT + CELL * len(data) + 0.3
    fig, ax = canvas(width, rows * ROW + 2.2, title="One line as tokens: characters, bytes, byte-level BPE")

    def row_y(r: int) -> float:
        return 1.7 + (rows - 1 - r) * ROW

    def draw_row(r: int, name: str, pieces: list[bytes], labels: list[str], shade: bool = True) -> None:
        """One row of boxes; shaded by whether each piece is whole characters, or plain (`shade=False`)."""
        y = row_y(r)
        label(ax, LEFT - 0.25, y + 0.45, name, fontsize=FONT - 1, ha="right")
        offsets = _boundaries(pieces)
        for piece, start, end, text_label in zip(pieces, offsets, offsets[1:], labels):
            whole = start in char_starts and end in char_starts
            colour = "plain" if not shade else "token" if whole else "attention"
            box(ax, LEFT + start * CELL + 0.04, y, (end - start) * CELL - 0.08, 0.9, text_label,
                color=colour, fontsize=FONT - 2, rounded=False)

    draw_row(0, f"characters: {len(text)}", char_bytes, [f"U+{ord(c):04X}" for c in text])
    # the bytes are the ruler the tokens are laid on, not a tokenization: left plain
    draw_row(1, f"UTF-8 bytes: {len(data)}", [bytes([b]) for b in data], [f"{b:02x}" for b in data], shade=False)
    for r, (name, pieces) in enumerate(tokenizations.items(), start=2):
        draw_row(r, f"{name}: {len(pieces)}", pieces, [""] * len(pieces))
    box(ax, LEFT, 0.3, 0.8, 0.6, color="token", rounded=False)
    label(ax, LEFT + 1.0, 0.6, "whole characters", fontsize=FONT - 1, ha="left")
    box(ax, LEFT + 6.2, 0.3, 0.8, 0.6, color="attention", rounded=False)
    label(ax, LEFT + 7.2, 0.6, "a token that cuts a character", fontsize=FONT - 1, ha="left")
    return fig
