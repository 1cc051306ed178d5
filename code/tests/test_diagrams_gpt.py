"""Chapter 3's diagrams stay legible: every label inside the picture, none too small, none on another."""

import matplotlib
import pytest

matplotlib.use("Agg")

from diagram_checks import assert_labels_legible  # noqa: E402

from book_diagrams import gpt  # noqa: E402


@pytest.mark.parametrize("draw", [gpt.pre_ln_block, gpt.data_flow, gpt.tied_head], ids=lambda f: f.__name__)
def test_labels_fit_and_do_not_collide(draw):
    fig = draw()
    assert_labels_legible(fig)
    matplotlib.pyplot.close(fig)
