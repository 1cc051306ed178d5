"""The bigram language model (Chapter 1): the next token depends on the current one only.

`interpolated_losses` gives the counted baselines of a large vocabulary (Chapter 4's GPT-2 tokens).
"""

from __future__ import annotations

import math

import numpy as np
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


def counted_ngram_loss(
    train_tokens: torch.Tensor, eval_tokens: torch.Tensor, vocab_size: int, n: int, smoothing: float = 1.0
) -> float:
    """The loss on `eval_tokens` (mean NLL per predicted token, in nats) of the counted n-gram model.

    The model predicts each token from the `n - 1` tokens before it (n = 1: unigram, 2: bigram,
    3: trigram), with P(b | context) = (N(context, b) + smoothing) / (N(context) + smoothing * V), all
    counts taken from `train_tokens`. It predicts `eval_tokens[n - 1:]`, the tokens that have a whole
    context. N-grams are counted sparsely (only those that occur), so any vocabulary size works, as long
    as vocab_size ** n fits in 64 bits (n <= 4 for GPT-2's 50,257 tokens).
    """
    train_tokens, eval_tokens = torch.as_tensor(train_tokens).long(), torch.as_tensor(eval_tokens).long()
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a whole number >= 1 (1: unigram, 2: bigram, 3: trigram), got {n!r}")
    if vocab_size**n >= 2**63:
        raise ValueError(f"vocab_size ** n = {vocab_size}**{n} does not fit in 64 bits: use a smaller n")
    if smoothing <= 0:
        raise ValueError(
            f"smoothing must be positive (a count added to every token and pair), got {smoothing}"
        )
    for name, tokens in (("train_tokens", train_tokens), ("eval_tokens", eval_tokens)):
        if tokens.ndim != 1 or len(tokens) < n:
            raise ValueError(
                f"{name} must be a 1-D sequence of at least n = {n} token ids, "
                f"got shape {tuple(tokens.shape)}"
            )
        if tokens.min() < 0 or tokens.max() >= vocab_size:
            raise ValueError(f"{name} holds ids outside [0, {vocab_size}): {tokens.min()} to {tokens.max()}")

    def codes(tokens: torch.Tensor) -> torch.Tensor:
        # Each n-gram as one number, its tokens as digits in base V: (len(tokens) - n + 1,)
        code = torch.zeros(len(tokens) - n + 1, dtype=torch.long)
        for i in range(n):
            code = code * vocab_size + tokens[i : len(tokens) - n + 1 + i]
        return code

    # An n-gram's code divided by V is its context's code (the first n - 1 tokens); for n = 1 it is 0.
    train_codes, eval_codes = codes(train_tokens), codes(eval_tokens)
    ngram_counts = _sparse_counts(train_codes, eval_codes)
    context_counts = _sparse_counts(train_codes // vocab_size, eval_codes // vocab_size)
    probs = (ngram_counts + smoothing) / (context_counts + smoothing * vocab_size)
    return -probs.log().mean().item()


def _sparse_counts(occurring: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """How often each of `queries` occurs in `occurring` (both 1-D codes), as float64; 0 if never."""
    values, counts = torch.unique(occurring, return_counts=True)  # sorted
    where = torch.searchsorted(values, queries).clamp(max=len(values) - 1)
    return torch.where(values[where] == queries, counts[where], 0).double()


def counted_losses(
    train_tokens: torch.Tensor, eval_tokens: torch.Tensor, vocab_size: int, smoothing: float = 1.0
) -> dict[str, float]:
    """The loss on `eval_tokens` (mean NLL per predicted token, in nats) of the models counting gives.

    Every later model should be read against these three baselines, all estimated from `train_tokens`:
    "uniform" gives every token 1 / vocab_size; "unigram" predicts each token from its frequency alone;
    "bigram" from the pair (previous token, token) — the loss `BigramLanguageModel.from_counts` reaches.
    All three predict the same tokens, `eval_tokens[1:]`. `smoothing` is added to every count, so a
    token or pair never seen in training costs a finite amount. Pairs are counted sparsely, so this
    works for a 50,257-token vocabulary as well as for 65 (`counted_ngram_loss` does the counting).
    """
    eval_tokens = torch.as_tensor(eval_tokens).long()
    if eval_tokens.ndim != 1 or len(eval_tokens) < 2:
        raise ValueError(
            "eval_tokens must be a 1-D sequence of at least 2 token ids, "
            f"got shape {tuple(eval_tokens.shape)}"
        )
    return {
        "uniform": math.log(vocab_size),
        "unigram": counted_ngram_loss(train_tokens, eval_tokens[1:], vocab_size, 1, smoothing),
        "bigram": counted_ngram_loss(train_tokens, eval_tokens, vocab_size, 2, smoothing),
    }


LAMBDA_GRID = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999)


def interpolated_losses(
    train_tokens, eval_tokens, vocab_size: int, grid: tuple[float, ...] = LAMBDA_GRID
) -> dict[str, float]:
    """The losses on `eval_tokens[1:]` (mean NLL per token, nats) of counted models mixed with simpler ones.

    Chapter 4 builds it step by step. The unigram is mixed with the uniform distribution,
    lam_unigram * frequency + (1 - lam_unigram) / V; the bigram P(b | a) = N(a, b) / N(a) with that
    unigram, lam_bigram * bigram + (1 - lam_bigram) * unigram (a token never seen as the first of a
    pair: the unigram alone). Each lambda is the value of `grid` that scores best on the last tenth of
    `train_tokens` with counts from the first nine tenths; the returned losses use counts from all of
    `train_tokens`. Pairs are stored sparsely (as keys a * V + b), so a 50,257-token vocabulary fits.
    Returns uniform, unigram and bigram losses and the two lambdas chosen.
    """
    train_ids = np.asarray(train_tokens, dtype=np.int64)
    eval_ids = np.asarray(eval_tokens, dtype=np.int64)
    for name, ids in (("train_tokens", train_ids), ("eval_tokens", eval_ids)):
        if ids.ndim != 1 or len(ids) < 2:
            raise ValueError(f"{name} must be a 1-D sequence of at least 2 token ids, got shape {ids.shape}")
        if ids.min() < 0 or ids.max() >= vocab_size:
            raise ValueError(f"{name} holds ids outside [0, {vocab_size}): {ids.min()} to {ids.max()}")
    if len(train_ids) < 20:
        raise ValueError(
            f"train_tokens needs at least 20 tokens (a tenth to choose lambdas on), got {len(train_ids)}"
        )
    V = vocab_size

    def count(ids):
        pair_keys, pair_totals = np.unique(ids[:-1] * V + ids[1:], return_counts=True)
        return np.bincount(ids, minlength=V), np.bincount(ids[:-1], minlength=V), pair_keys, pair_totals

    def losses(counted, ids, lam_unigram, lam_bigram):
        totals, first_totals, pair_keys, pair_totals = counted
        previous, following = ids[:-1], ids[1:]
        unigram = lam_unigram * totals / totals.sum() + (1 - lam_unigram) / V
        keys = previous * V + following
        at = np.minimum(np.searchsorted(pair_keys, keys), len(pair_keys) - 1)
        pair = np.where(pair_keys[at] == keys, pair_totals[at], 0)
        seen = first_totals[previous]
        bigram = np.where(seen > 0, pair / np.maximum(seen, 1), unigram[following])
        mixed = lam_bigram * bigram + (1 - lam_bigram) * unigram[following]
        return -np.log(unigram[following]).mean(), -np.log(mixed).mean()

    cut = int(0.9 * len(train_ids))
    held_out = count(train_ids[:cut])
    lam_unigram = min(grid, key=lambda lam: losses(held_out, train_ids[cut:], lam, 0)[0])
    lam_bigram = min(grid, key=lambda lam: losses(held_out, train_ids[cut:], lam_unigram, lam)[1])
    unigram_loss, bigram_loss = losses(count(train_ids), eval_ids, lam_unigram, lam_bigram)
    return {
        "uniform": math.log(V),
        "unigram": float(unigram_loss),
        "bigram": float(bigram_loss),
        "lam_unigram": lam_unigram,
        "lam_bigram": lam_bigram,
    }
