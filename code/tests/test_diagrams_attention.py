"""Chapter 2's diagrams show the numbers they claim: a causal mask, rows that sum to one, the shapes."""

import matplotlib
import numpy as np

matplotlib.use("Agg")

from book_diagrams import attention  # noqa: E402


def test_one_head_masks_the_future_and_its_weights_sum_to_one():
    fig = attention.one_head("Romeo")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("−∞") == 5 * 4 // 2  # the strictly upper triangle of a 5 x 5 score matrix
    # The caption spells out the last output as its weights times the values; those weights sum to 1.
    caption = next(t for t in texts if t.startswith("out4 = "))
    weights = [float(term.split("·")[0]) for term in caption.removeprefix("out4 = ").split(" + ")]
    assert len(weights) == 5 and np.isclose(sum(weights), 1.0, atol=0.03)
    matplotlib.pyplot.close(fig)


def test_multi_head_reshape_names_the_shapes_it_is_given():
    fig = attention.multi_head_reshape(B=8, T=16, C=96, n_head=3)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    shapes = ("(8, 16, 96)", "(8, 16, 288)", "(8, 16, 3, 32)", "(8, 3, 16, 32)", "head 2: (T, hs) = (16, 32)")
    for shape in shapes + ("scores (B, n_head, T, T) = (8, 3, 16, 16)",):
        assert shape in texts
    # Copying the diagram's code must work: a transposed tensor needs .contiguous() before .view.
    assert ".transpose(1, 2).contiguous().view(B, T, C)" in texts
    matplotlib.pyplot.close(fig)
