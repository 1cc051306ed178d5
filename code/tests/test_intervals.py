import math

import pytest
import torch

from minigpt.intervals import paired_interval


def test_paired_interval_is_the_mean_gain_plus_minus_two_standard_errors():
    a = [True] * 30 + [False] * 60 + [True] * 10
    b = [False] * 30 + [False] * 60 + [True] * 5 + [False] * 5
    gains = torch.tensor([float(x) - float(y) for x, y in zip(a, b)], dtype=torch.float64)
    gain, low, high = paired_interval(a, b)
    assert gain == pytest.approx(0.35)
    half = 1.96 * gains.std().item() / math.sqrt(len(gains))
    assert (low, high) == pytest.approx((0.35 - half, 0.35 + half))


def test_items_both_models_get_alike_add_no_width():
    # the same 10 items won by A; 90 items alike (both right or both wrong) only shrink the standard error
    a, b = [True] * 10, [False] * 10
    _, low_10, high_10 = paired_interval(a, b)
    assert low_10 == high_10 == 1.0  # every item a gain of 1: no spread at all
    _, low, high = paired_interval(a + [True] * 45 + [False] * 45, b + [True] * 45 + [False] * 45)
    assert 0 < low < 0.1 < high


def test_paired_interval_needs_the_same_items():
    with pytest.raises(ValueError, match="one right-or-wrong per item for both models"):
        paired_interval([True, False], [True])
