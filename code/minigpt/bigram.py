"""The bigram language model (Chapter 1): the next token depends on the current one only."""

from __future__ import annotations

import math

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


def counted_losses(
    train_tokens: torch.Tensor, eval_tokens: torch.Tensor, vocab_size: int, smoothing: float = 1.0
) -> dict[str, float]:
    """The loss on `eval_tokens` (mean NLL per predicted token, in nats) of the models counting gives.

    Every later model should be read against these three baselines, all estimated from `train_tokens`:
    "uniform" gives every token 1 / vocab_size; "unigram" predicts each token from its frequency alone;
    "bigram" from the pair (previous token, token) — the loss `BigramLanguageModel.from_counts` reaches.
    `smoothing` is added to every count, so a token or pair never seen in training costs a finite
    amount. Pairs are counted sparsely, so this works for a 50,257-token vocabulary as well as for 65.
    """
    train_tokens, eval_tokens = torch.as_tensor(train_tokens).long(), torch.as_tensor(eval_tokens).long()
    if smoothing <= 0:
        raise ValueError(
            f"smoothing must be positive (a count added to every token and pair), got {smoothing}"
        )
    for name, tokens in (("train_tokens", train_tokens), ("eval_tokens", eval_tokens)):
        if tokens.ndim != 1 or len(tokens) < 2:
            raise ValueError(
                f"{name} must be a 1-D sequence of at least 2 token ids, got shape {tuple(tokens.shape)}"
            )
        if tokens.min() < 0 or tokens.max() >= vocab_size:
            raise ValueError(f"{name} holds ids outside [0, {vocab_size}): {tokens.min()} to {tokens.max()}")
    targets = eval_tokens[1:]  # every model predicts the same tokens: all but the first
    unigram_counts = torch.bincount(train_tokens, minlength=vocab_size).double() + smoothing  # (V,)
    unigram_nll = -(unigram_counts / unigram_counts.sum()).log()[targets].mean()

    # Bigram: N(a, b) for the pairs that occur, looked up by the code a * V + b; the rest count 0.
    codes, pair_counts = torch.unique(train_tokens[:-1] * vocab_size + train_tokens[1:], return_counts=True)
    row_totals = torch.bincount(train_tokens[:-1], minlength=vocab_size).double() + smoothing * vocab_size
    eval_codes = eval_tokens[:-1] * vocab_size + targets
    where = torch.searchsorted(codes, eval_codes).clamp(max=len(codes) - 1)
    seen = codes[where] == eval_codes
    eval_counts = torch.where(seen, pair_counts[where], 0).double() + smoothing
    bigram_nll = -(eval_counts / row_totals[eval_tokens[:-1]]).log().mean()
    return {"uniform": math.log(vocab_size), "unigram": unigram_nll.item(), "bigram": bigram_nll.item()}
