"""Building blocks for preference tuning (Chapter 8): how likely a model finds each reply.

A reward model and DPO both compare replies by the log-probability a model gives their tokens, not
counting the prompt: `sequence_logprobs` sums it over a mask of response tokens, one number per
sequence.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def sequence_logprobs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each sequence's summed log-probability of its targets where `mask` is true: (B, T) -> (B,).

    `x` holds the input ids and `y` the targets (x shifted by one), as in training batches; `mask`
    marks the targets that count, the response's tokens. Targets outside the mask may be anything,
    -100 included (padding); a target of -100 inside it is an error. The sum is in float32 whatever
    the model's precision, and gradients flow through it (DPO trains on it).
    """
    if not x.shape == y.shape == mask.shape or x.dim() != 2:
        raise ValueError(
            f"x, y and mask must have the same shape (batch, time), got {tuple(x.shape)}, {tuple(y.shape)} "
            f"and {tuple(mask.shape)}"
        )
    mask = mask.bool()
    if (mask & (y < 0)).any():
        raise ValueError("a masked-in target is negative (padding?): mask only the response's real tokens")
    logits, _ = model(x)  # (B, T, V)
    targets = torch.where(mask, y, -100)  # -100: cross_entropy's ignore_index, a log-probability of 0 here
    token_logprobs = -F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), reduction="none")
    return token_logprobs.view(y.shape).sum(dim=1)  # (B * T,) -> (B, T) -> (B,)
