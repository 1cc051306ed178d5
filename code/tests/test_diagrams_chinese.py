"""The appendix's diagram draws the tokenizers' own tokens over a line's UTF-8 bytes."""

import matplotlib
import pytest

matplotlib.use("Agg")

from book_diagrams import chinese  # noqa: E402
from diagram_checks import assert_labels_legible  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402
from minigpt.tokenizer import cl100k_tokenizer, gpt2_tokenizer  # noqa: E402

LINE = "秦川雄帝宅，"


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
    assert_labels_legible(fig)
    matplotlib.pyplot.close(fig)


def test_rows_that_do_not_spell_the_line_are_refused():
    with pytest.raises(ValueError, match="do not spell the text's 18 UTF-8 bytes"):
        chinese.line_as_tokens(LINE, {"broken": [b"\xe7"]})
