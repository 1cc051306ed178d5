"""Generation: extend prompts one token at a time (Chapters 1, 3 and 7).

`generate` works for every language model of the course: any module whose forward takes token ids
(B, T) and returns `(logits, loss)` with logits (B, T, vocab_size). It picks each next token with the
decoding rules of `minigpt.sampling` (temperature, top-k, top-p; temperature 0 is greedy).

- Context. A model with a `config.block_size` (the GPT) sees the last `block_size` tokens at most; a
  longer prompt is cropped for the model, but returned whole.
- The KV cache. A GPT runs the prompt once (the prefill), then one new position per step, with the
  keys and values of the earlier positions kept in a `KVCache`. Past `block_size` the window slides:
  every kept token moves to a new position, so their position embeddings, and hence every stored key
  and value, change. The cache is then refilled from the last `block_size` tokens at every step, which
  gives exactly the uncached result at the uncached cost. Models without a cache (the bigram) run
  uncached.
- Stop tokens. Each row stops at its first stop token (kept in the output); a finished row repeats that
  token as padding while the others go on, and the loop ends early once every row has finished.

    minigpt generate --model gpt2 --prompt "The meaning of life is" --max-new-tokens 40
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from typing import NamedTuple

import torch
from torch import nn

from .sampling import SamplingRule


class Generation(NamedTuple):
    """What `generate` returns.

    tokens:  (B, T + n) token ids, prompt included; n <= max_new_tokens new tokens (fewer when every
             row stopped early). Past its length, a row is padded with its stop token.
    lengths: (B,) the number of valid tokens in each row: prompt, new tokens and the stop token.
    """

    tokens: torch.Tensor
    lengths: torch.Tensor

    def rows(self) -> list[list[int]]:
        """Each row's valid tokens, prompt included, up to and including its stop token."""
        return [row[:n].tolist() for row, n in zip(self.tokens, self.lengths.tolist())]


@torch.no_grad()
def generate(
    model: nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    stop_tokens: int | Iterable[int] | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    draw: str = "multinomial",
) -> Generation:
    """Extend each row of the prompts `idx` (B, T) by up to `max_new_tokens` tokens.

    `temperature` 0 is greedy decoding; `top_k` and `top_p` cut the distribution before sampling (see
    `minigpt.sampling`). A row ends at its first token in `stop_tokens`. Pass a seeded CPU `generator`
    for the same tokens on every run and device. `use_cache=False` reruns the whole context at every
    step (slower, same tokens). `draw="inverse-cdf"` draws each token by inverting the cumulative
    distribution: the same law as the default multinomial draw, other tokens for a seed, much faster on a CPU.
    """
    prompts = _check_prompts(idx).to(_device_of(model))
    B, T = prompts.shape
    tokens = torch.empty(B, T + _check_count(max_new_tokens), dtype=torch.long, device=prompts.device)
    tokens[:, :T] = prompts
    lengths = torch.full((B,), T, dtype=torch.long, device=prompts.device)
    finished = torch.zeros(B, dtype=torch.bool, device=prompts.device)
    stop = _stop_tensor(stop_tokens, prompts.device)
    rule = SamplingRule(temperature, top_k, top_p, draw)
    width = T
    with closing(_next_tokens(model, tokens, T, max_new_tokens, rule, generator, use_cache)) as steps:
        for next_id in steps:
            next_id = torch.where(finished, tokens[:, width - 1], next_id)  # finished rows repeat their stop
            tokens[:, width] = next_id
            width += 1
            lengths += ~finished
            finished |= torch.isin(next_id, stop)
            if finished.all():
                break
    return Generation(tokens[:, :width], lengths)


def stream(
    model: nn.Module,
    prompt_ids: Sequence[int] | torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    stop_tokens: int | Iterable[int] | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
) -> Iterator[int]:
    """Yield the new tokens of one prompt as they are produced (the same ones `generate` would give).

    `prompt_ids` is a list of ids, a 1-D tensor or a (1, T) tensor. Stops after `max_new_tokens`, or at
    a stop token, which it does not yield. Bad arguments raise here, before the first token.
    """
    if not isinstance(prompt_ids, torch.Tensor):
        prompt_ids = torch.tensor(list(prompt_ids), dtype=torch.long)
    prompts = _check_prompts(prompt_ids[None] if prompt_ids.dim() == 1 else prompt_ids).to(_device_of(model))
    if prompts.shape[0] != 1:
        raise ValueError(
            f"stream takes one prompt, got a batch of {prompts.shape[0]}: use generate for a batch"
        )
    tokens = torch.cat([prompts, prompts.new_empty(1, _check_count(max_new_tokens))], dim=1)
    stop = set(_stop_tensor(stop_tokens, prompts.device).tolist())
    steps = _next_tokens(
        model,
        tokens,
        prompts.shape[1],
        max_new_tokens,
        SamplingRule(temperature, top_k, top_p),
        generator,
        use_cache,
    )
    return _until_stop(steps, tokens, prompts.shape[1], stop)


@torch.no_grad()
def _until_stop(steps: Iterator[torch.Tensor], tokens: torch.Tensor, T: int, stop: set[int]) -> Iterator[int]:
    """One row's tokens from `steps` as ints, written into `tokens` (1, T + N) for the next step."""
    with closing(steps):
        for step, next_id in enumerate(steps):
            token = int(next_id)
            if token in stop:
                return
            tokens[0, T + step] = token
            yield token


def _next_tokens(
    model: nn.Module,
    tokens: torch.Tensor,
    prompt_length: int,
    max_new_tokens: int,
    rule: SamplingRule,
    generator: torch.Generator | None,
    use_cache: bool,
) -> Iterator[torch.Tensor]:
    """Yield each step's next token (B,); the caller writes it into `tokens` (B, T + N) before the next step.

    The model is in eval mode (no dropout) while this runs, and back in its own mode afterwards.
    """
    block_size = getattr(getattr(model, "config", None), "block_size", None)
    cache = None
    if use_cache and hasattr(model, "make_kv_cache"):
        total = prompt_length + max_new_tokens
        cache = model.make_kv_cache(tokens.shape[0], max_len=min(total, block_size or total))
    was_training = model.training
    model.eval()
    try:
        for width in range(prompt_length, prompt_length + max_new_tokens):
            context = (
                tokens[:, :width] if block_size is None else tokens[:, max(0, width - block_size) : width]
            )
            if cache is None:
                logits = _last_logits(model, context)
            elif 0 < cache.length < cache.max_len:  # decode: only the newest position is new
                logits = _last_logits(model, context[:, -1:], cache)
            else:  # prefill (the prompt, or the slid window: every position has moved)
                cache.reset()
                logits = _last_logits(model, context, cache)
            yield rule.next_token(logits, generator)
    finally:
        model.train(was_training)


def _last_logits(model: nn.Module, idx: torch.Tensor, cache=None) -> torch.Tensor:
    """The logits (B, V) of the last position of `idx` (B, T)."""
    if hasattr(model, "make_kv_cache"):  # the GPT can skip the LM head for the other positions
        logits, _ = model(idx, cache=cache, last_only=True)
    else:
        logits, _ = model(idx)
    return logits[:, -1]  # (B, T, V) -> (B, V)


def _device_of(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _check_prompts(idx: torch.Tensor) -> torch.Tensor:
    if not isinstance(idx, torch.Tensor):
        raise TypeError(
            f"prompts must be a tensor of token ids of shape (batch, time), got {type(idx).__name__}; "
            "for one prompt use torch.tensor([ids])"
        )
    if idx.dim() != 2:
        raise ValueError(
            f"prompts must have shape (batch, time), got {tuple(idx.shape)}; for one prompt use ids[None]. "
            "(Prompts of different lengths: generate them one at a time, or in groups of equal length.)"
        )
    if idx.dtype.is_floating_point or idx.dtype == torch.bool:
        raise TypeError(f"prompts must hold integer token ids, got dtype {idx.dtype}")
    if idx.shape[1] == 0:
        raise ValueError("the prompt is empty: the model needs at least one token to continue from")
    return idx.long()


def _check_count(max_new_tokens: int) -> int:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a whole number >= 0, got {max_new_tokens!r}")
    return max_new_tokens


def _stop_tensor(stop_tokens: int | Iterable[int] | None, device: torch.device) -> torch.Tensor:
    """The stop tokens as a 1-D tensor (empty for none)."""
    if stop_tokens is None:
        ids = []
    elif isinstance(stop_tokens, int):
        ids = [stop_tokens]
    else:
        ids = [int(t) for t in stop_tokens]
    if any(t < 0 for t in ids):
        raise ValueError(f"stop tokens must be token ids >= 0, got {ids}")
    return torch.tensor(ids, dtype=torch.long, device=device)


if __name__ == "__main__":  # the old entry point; importing minigpt.cli here would make an import cycle
    sys.exit("python -m minigpt.generate is now `minigpt generate` (or `python -m minigpt generate`): run that")
