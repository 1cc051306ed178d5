"""Decoding rules (Chapter 7): how the next token is picked from a batch of logits.

Each rule is a small function on logits of shape (B, vocab_size), so it can be tested on its own and
combined with the others in `next_token`, in the order most libraries use:

    temperature   divide the logits by T: below 1 sharpens the distribution, above 1 flattens it;
                  T = 0 means greedy decoding (always the most likely token)
    top-k         keep the k most likely tokens, give every other token probability 0
    top-p         keep the smallest set of most likely tokens whose probability reaches p ("nucleus")

A filter returns logits with the dropped tokens set to -inf, so a softmax afterwards renormalises
the probability over the tokens that are left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Logits divided by `temperature` (> 0): softmax(logits / T) is sharper for T < 1, flatter for T > 1."""
    if not temperature > 0:
        raise ValueError(
            f"temperature must be positive here (0 means greedy: use `greedy`), got {temperature}"
        )
    return logits / temperature


def greedy(logits: torch.Tensor) -> torch.Tensor:
    """The most likely token of each row: (B, V) -> (B,). The limit of sampling as temperature -> 0."""
    return logits.argmax(dim=-1)


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep exactly the `k` largest logits of each row (ties broken by index); the rest become -inf."""
    k = min(k, logits.shape[-1])
    kept = torch.topk(logits, k, dim=-1).indices  # (B, k)
    return torch.full_like(logits, -math.inf).scatter(-1, kept, logits.gather(-1, kept))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose total probability reaches `p`; the rest become -inf.

    Sorted by probability, a token is kept when the tokens before it add up to less than p. The most
    likely token is therefore always kept (nothing comes before it), so the set is never empty.
    """
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (B, V), (B, V)
    sorted_probs = F.softmax(sorted_logits.float(), dim=-1)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs  # probability of the tokens ranked above
    drop_sorted = mass_before >= p  # (B, V), in sorted order
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, -math.inf)


@dataclass(frozen=True)
class SamplingRule:
    """The decoding rules of one generation call, checked once when it is made."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    draw: str = "multinomial"  # how a token is drawn: "multinomial", or "inverse-cdf" (the same law, faster)

    def __post_init__(self) -> None:
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
            raise ValueError(f"temperature must be a finite number >= 0 (0 means greedy), got {t!r}")
        k = self.top_k
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ValueError(f"top_k must be a whole number >= 1 (leave it out for no top-k cut), got {k!r}")
        p = self.top_p
        if p is not None and (isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 1):
            raise ValueError(f"top_p must be a number in (0, 1] (leave it out for no top-p cut), got {p!r}")
        if self.draw not in DRAWS:
            raise ValueError(f"draw must be one of {', '.join(DRAWS)}, got {self.draw!r}")

    def filter(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits (B, V) after temperature, top-k and top-p: softmax of these is what gets sampled."""
        logits = apply_temperature(logits.float(), self.temperature)
        if self.top_k is not None:
            logits = top_k_filter(logits, self.top_k)
        if self.top_p is not None and self.top_p < 1:
            logits = top_p_filter(logits, self.top_p)
        return logits

    def next_token(self, logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, V) -> (B,): the argmax at temperature 0, else a draw from the filtered softmax.

        The draw happens on the generator's device: a CPU generator gives the same tokens whatever device
        the model is on, though x86 and ARM builds of PyTorch draw differently (pytorch/pytorch#148247).
        """
        if self.temperature == 0:
            return greedy(logits)
        probs = F.softmax(self.filter(logits), dim=-1)  # (B, V)
        draw_on = generator.device if generator is not None else probs.device
        if self.draw == "inverse-cdf":
            return inverse_cdf_draw(probs.to(draw_on), generator).to(logits.device)
        return torch.multinomial(probs.to(draw_on), 1, generator=generator).squeeze(-1).to(logits.device)


DRAWS = ("multinomial", "inverse-cdf")


def inverse_cdf_draw(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row of `probs` (B, V) -> (B,), drawn by inverting the cumulative distribution.

    A uniform number u in [0, total) picks the first token whose cumulative probability exceeds u: token i
    is picked with probability p_i, and a token of probability 0 never is. The same law as
    torch.multinomial, with other random numbers, and on a CPU tens of times faster for GPT-2's 50,257
    tokens (one cumulative sum and a binary search per row).
    """
    cdf = probs.float().cumsum(dim=-1)  # (B, V)
    u = torch.rand(len(probs), 1, generator=generator, device=probs.device) * cdf[:, -1:]  # (B, 1)
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp(max=probs.shape[-1] - 1)  # (B,)
