"""Chapter 3's diagrams stay legible: every label inside the picture, none too small, none on another."""

import itertools

import matplotlib
import pytest

matplotlib.use("Agg")

from minigpt.diagrams import gpt  # noqa: E402
from minigpt.diagrams.draw import FONT  # noqa: E402


@pytest.mark.parametrize("draw", [gpt.pre_ln_block, gpt.data_flow, gpt.tied_head], ids=lambda f: f.__name__)
def test_labels_fit_and_do_not_collide(draw):
    fig = draw()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    ax = fig.axes[0]  # a diagram's canvas: its axes are hidden, so its texts are the labels and the title
    texts = [t for t in [*ax.texts, ax.title] if t.get_text().strip()]
    assert len(texts) > 5
    boxes = []
    for text in texts:
        extent = text.get_window_extent(renderer)
        assert text.get_fontsize() >= FONT - 2, f"{text.get_text()!r} is set in {text.get_fontsize()} pt"
        assert page.x0 <= extent.x0 and extent.x1 <= page.x1, f"{text.get_text()!r} runs off the side"
        assert page.y0 <= extent.y0 and extent.y1 <= page.y1, f"{text.get_text()!r} runs off top or bottom"
        boxes.append((text.get_text(), extent))
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        assert not box_a.overlaps(box_b), f"{a!r} overlaps {b!r}"
    matplotlib.pyplot.close(fig)
