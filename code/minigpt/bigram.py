"""The bigram language model (Chapter 1): the next token depends on the current one only."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BigramLanguageModel(nn.Module):
    """A table of logits: row i holds the scores of every token that may follow token i.

    The table is an `nn.Embedding(vocab_size, vocab_size)`, so looking up a token's row is the whole
    forward pass. Trained by gradient descent it learns the same table that counting gives directly
    (`from_counts`).
    """

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.token_embedding = nn.Embedding(vocab_size, vocab_size)

    @classmethod
    def from_counts(
        cls, tokens: torch.Tensor, vocab_size: int, smoothing: float = 1.0
    ) -> "BigramLanguageModel":
        """The maximum-likelihood bigram model of `tokens`, with `smoothing` added to every count.

        Its logits are the log-probabilities log P(next | current), the table the trained model
        approaches. Smoothing keeps unseen pairs at a small, finite cost instead of an infinite one.
        """
        counts = torch.zeros(vocab_size, vocab_size)
        pairs = tokens[:-1] * vocab_size + tokens[1:]  # each (current, next) pair as one index
        counts.view(-1).index_add_(0, pairs, torch.ones(len(pairs)))
        probs = (counts + smoothing) / (counts + smoothing).sum(dim=1, keepdim=True)  # rows sum to 1
        model = cls(vocab_size)
        with torch.no_grad():
            model.token_embedding.weight.copy_(probs.log())
        return model

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.vocab_size):
            raise ValueError(
                f"token ids must be in [0, {self.vocab_size}), got values from {idx.min()} to {idx.max()}"
            )
        logits = self.token_embedding(idx)  # (B, T) -> (B, T, V)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, self.vocab_size), targets.view(-1))  # mean NLL per token
        return logits, loss
