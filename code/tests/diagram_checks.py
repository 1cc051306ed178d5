"""A check that every diagram test shares: its labels fit the picture, legibly, without overlapping."""

import itertools

import matplotlib.pyplot as plt

from book_diagrams.draw import FONT


def assert_labels_legible(fig: plt.Figure) -> None:
    """Every label and the title of a diagram lie inside the figure, in at least FONT - 2 pt, apart."""
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
