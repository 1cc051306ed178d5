"""Autoregressive sampling for the course's language models (Chapters 1 and 3).

A model here is any module whose forward takes token ids of shape (B, T) and returns
`(logits, loss)` with logits of shape (B, T, vocab_size).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def generate(
    model: nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    block_size: int | None = None,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Extend each row of `idx` (B, T) by `max_new_tokens` tokens sampled one at a time.

    Only the last `block_size` tokens are fed back (a model with position embeddings knows no more);
    logits are divided by `temperature` before the softmax (below 1: more conservative). Pass a CPU
    `generator` to make the sample reproducible whatever the device.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    was_training = model.training
    model.eval()
    for _ in range(max_new_tokens):
        context = idx if block_size is None else idx[:, -block_size:]  # (B, <=block_size)
        logits, _ = model(context)  # (B, T, V)
        probs = F.softmax(logits[:, -1, :].float() / temperature, dim=-1)  # (B, V)
        next_id = torch.multinomial(probs.cpu(), num_samples=1, generator=generator)  # (B, 1)
        idx = torch.cat([idx, next_id.to(idx.device)], dim=1)  # (B, T + 1)
    model.train(was_training)
    return idx
