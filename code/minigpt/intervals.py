"""How far a score measured on a finite set of held-out items can be trusted: 95 % intervals.

Chapters 8 and 9 score models by exact match on a few hundred generated records. A score over n items
is known only to within about 1 / sqrt(n) (about ±5 points at n = 300); these intervals say how much
exactly, for one score (`wilson_interval`) and for the difference of two models scored on the same
items (`paired_interval`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def wilson_interval(accuracy: float, count: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of an accuracy measured on `count` items (95 % for z = 1.96).

    Unlike accuracy +- z * standard error, it stays inside [0, 1] and is honest near 0 and 1.
    """
    if count < 1 or not 0 <= accuracy <= 1:
        raise ValueError(f"need an accuracy in [0, 1] over at least one item, got {accuracy} over {count}")
    centre = (accuracy + z * z / (2 * count)) / (1 + z * z / count)
    half = (
        z / (1 + z * z / count) * math.sqrt(accuracy * (1 - accuracy) / count + z * z / (4 * count * count))
    )
    return centre - half, centre + half


def paired_interval(
    right_a: Sequence[bool], right_b: Sequence[bool], z: float = 1.96
) -> tuple[float, float, float]:
    """(gain, low, high): how much more often model A is right than model B on the same items, with the
    normal interval of that mean gain (95 % for z = 1.96).

    Per item the gain is +1 (only A right), -1 (only B right) or 0, so the items both get right or both
    get wrong add no noise: a paired interval is narrower than two separate intervals would suggest.
    """
    if len(right_a) != len(right_b) or len(right_a) < 2:
        raise ValueError(
            f"need one right-or-wrong per item for both models, on at least 2 items; got {len(right_a)} "
            f"and {len(right_b)}"
        )
    gains = [float(a) - float(b) for a, b in zip(right_a, right_b)]
    mean = sum(gains) / len(gains)
    variance = sum((g - mean) ** 2 for g in gains) / (len(gains) - 1)  # the sample variance, as torch.std
    half = z * math.sqrt(variance / len(gains))
    return mean, mean - half, mean + half
