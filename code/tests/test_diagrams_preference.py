"""Chapter 9's diagrams: the reward model's data flow and DPO's four log-probabilities."""

import matplotlib

matplotlib.use("Agg")

from book_diagrams import preference  # noqa: E402
from diagram_checks import assert_labels_legible  # noqa: E402


def texts(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


def test_reward_model_scores_both_replies_and_compares_them():
    fig = preference.reward_model()
    words = texts(fig)
    assert {"r(chosen)", "r(rejected)"} <= set(words)
    assert "loss = −log σ(r(chosen) − r(rejected))" in words
    assert_labels_legible(fig)
    matplotlib.pyplot.close(fig)


def test_dpo_shows_the_four_logprobabilities_once_each():
    fig = preference.dpo_logprobs()
    words = texts(fig)
    for name in ("log π(y_w | x)", "log π(y_l | x)", "log π_ref(y_w | x)", "log π_ref(y_l | x)"):
        assert words.count(name) == 1, name
    assert_labels_legible(fig)
    matplotlib.pyplot.close(fig)
