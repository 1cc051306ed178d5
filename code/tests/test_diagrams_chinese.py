"""The appendix's diagram draws the tokenizers' own tokens over a line's UTF-8 bytes."""

from collections import Counter

import matplotlib
import pytest

matplotlib.use("Agg")

from book_diagrams import chinese  # noqa: E402
from diagram_checks import assert_labels_legible  # noqa: E402
from book_diagrams.draw import COLORS  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402
from minigpt.tokenizer import cl100k_tokenizer, gpt2_tokenizer  # noqa: E402

LINE = "秦川雄帝宅，"


def decodes(piece: bytes) -> bool:
    """Whether a token's bytes are whole characters (cut from a line, it then starts and ends on them)."""
    try:
        piece.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def token_rows():
    return {
        name: [enc.decode_single_token_bytes(i) for i in enc.encode(LINE)]
        for name, enc in (("GPT-2 BPE", gpt2_tokenizer()), ("cl100k_base", cl100k_tokenizer()))
    }


def test_each_row_has_a_box_per_token_and_says_how_many():
    rows = token_rows()
    fig = chinese.line_as_tokens(LINE, rows)
    ax = fig.axes[0]
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    expected = len(LINE) + len(LINE.encode()) + sum(map(len, rows.values())) + 2  # + the legend's two
    assert len(boxes) == expected
    names = [t.get_text() for t in ax.texts]
    for name, pieces in rows.items():
        assert f"{name}: {len(pieces)}" in names
    assert "U+79E6" in names and "ef" in names  # 秦, and the first byte of the comma
    # cl100k_base has the full-width comma as one token, a whole character; GPT-2 cuts it in three.
    assert rows["cl100k_base"][-1] == "，".encode() and rows["GPT-2 BPE"][-3:] == [b"\xef", b"\xbc", b"\x8c"]
    # shading: the byte row is plain; a token is "whole" only where it starts and ends on characters
    fills = Counter(to_hex(p.get_facecolor()) for p in boxes)
    whole_tokens = sum(decodes(piece) for pieces in rows.values() for piece in pieces)  # cl100k's comma
    assert whole_tokens == 1
    assert fills[COLORS["plain"]] == len(LINE.encode())
    assert fills[COLORS["token"]] == len(LINE) + whole_tokens + 1  # + the legend's
    assert fills[COLORS["attention"]] == sum(map(len, rows.values())) - whole_tokens + 1
    assert_labels_legible(fig)
    matplotlib.pyplot.close(fig)


def test_rows_that_do_not_spell_the_line_are_refused():
    with pytest.raises(ValueError, match="do not spell the text's 18 UTF-8 bytes"):
        chinese.line_as_tokens(LINE, {"broken": [b"\xe7"]})
