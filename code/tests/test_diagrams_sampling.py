"""Chapter 7's diagrams say what the cache does: which positions each call runs, where tokens move."""

import matplotlib

matplotlib.use("Agg")

from book_diagrams import sampling  # noqa: E402


def texts(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


def test_prefill_runs_the_prompt_then_each_decode_call_runs_one_position():
    fig = sampling.prefill_and_decode(prompt_length=5, decode_steps=3, capacity=10)
    words = texts(fig)
    assert "call 1: prefill" in words and "call 4: decode" in words
    assert "runs 5 positions at once" in words
    # decode call d reads the prompt and the d - 1 tokens made before it
    assert [w for w in words if w.startswith("runs 1 position")] == [
        f"runs 1 position, reads {n} stored" for n in (5, 6, 7)
    ]
    assert {"t6", "t9"} <= set(words)  # the prefill's token and the last call's
    matplotlib.pyplot.close(fig)


def test_sliding_window_moves_every_kept_token_one_position_down():
    fig = sampling.sliding_window(block_size=3)
    positions = [t for t in fig.axes[0].texts if t.get_text().startswith("pos ")]
    assert [t.get_text() for t in positions] == ["pos 0", "pos 1", "pos 2"] * 2
    moved = [t.get_text() for t in positions[3:] if t.get_color() != "black"]
    assert moved == ["pos 0", "pos 1"]  # t2 and t3 moved; t4 is new at the last position
    assert "dropped" in texts(fig)
    matplotlib.pyplot.close(fig)
