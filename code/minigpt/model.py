"""The GPT model (Chapters 2 and 3) and its key-value cache (Chapter 7).

One file for the whole model, in the shape of GPT-2: token and position embeddings, a stack of
pre-LayerNorm transformer blocks (causal self-attention, then a feed-forward MLP, each inside a
residual connection), a final LayerNorm and a language-model head tied to the token embedding.

Parameter names follow GPT-2's own checkpoints (`transformer.wte`, `transformer.h.0.attn.c_attn`,
`transformer.h.0.mlp.c_fc`, ...), so that Chapter 6 can load OpenAI's weights by name:

    wte   word (token) embedding        ln_1, ln_2   LayerNorms before attention and MLP
    wpe   word position embedding       c_attn       the fused query/key/value projection
    h     the list of blocks            c_proj       the output projections
    ln_f  the final LayerNorm           c_fc         the MLP's expansion
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from functools import cache

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel


@dataclass
class GPTConfig:
    """The shape of a GPT. The defaults are GPT-2 small (124M parameters)."""

    block_size: int = 1024  # the longest context the model can see (number of position embeddings)
    vocab_size: int = 50257
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True  # biases in Linear layers and LayerNorms, as in GPT-2

    def __post_init__(self) -> None:
        for name in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}: each head gets "
                f"n_embd / n_head dimensions (nearest that fit: {_divisors_near(self.n_embd, self.n_head)})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)


def _divisors_near(n: int, near: int) -> str:
    """The divisors of n just below and just above `near`, as "n_head=4 or n_head=5"."""
    below = max(d for d in range(1, min(near, n) + 1) if n % d == 0)
    above = min((d for d in range(near, n + 1) if n % d == 0), default=below)
    return " or ".join(f"n_head={d}" for d in sorted({below, above}))


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where each position sees only itself and the positions before it.

    All heads' queries, keys and values come from one Linear layer (`c_attn`), which is the same as
    a separate (n_embd -> head_size) projection per head, side by side, but runs as one matrix product.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: LayerKVCache | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # (B, T, 3C) -> 3 x (B, T, C)
        # Give each head its own slice of the channels: (B, T, C) -> (B, n_head, T, head_size)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        past = 0
        if cache is not None:  # the keys and values of earlier positions come from the cache
            past = cache.length
            k, v = cache.append(k, v)  # (B, n_head, past + T, head_size)
        # softmax(q k^T / sqrt(head_size), masked to the past) v, in one fused kernel
        with _attention_kernels(q):
            y = F.scaled_dot_product_attention(
                q,
                k,
                v,
                attn_mask=None if past == 0 or T == 1 else _causal_mask(T, past, x.device),
                is_causal=past == 0,  # with a cache, one new query may see every key: no mask needed
                dropout_p=self.dropout if self.training else 0.0,
            )  # (B, n_head, T, head_size)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again: (B, T, C)
        return self.resid_dropout(self.c_proj(y))


def _attention_kernels(q: torch.Tensor):
    """The kernels `scaled_dot_product_attention` may use for these queries: all of them, except on a CPU
    without AVX-512 under bf16, where PyTorch's fused kernel raises ("pack_vnni2 is only supported when
    avx512 is supported") for longer sequences; the plain math kernel computes the same thing there."""
    if q.device.type == "cpu" and q.dtype == torch.bfloat16 and not _cpu_has_avx512():
        return sdpa_kernel(SDPBackend.MATH)
    return nullcontext()


@cache
def _cpu_has_avx512() -> bool:
    # the instructions PyTorch's CPU kernels were chosen for (ATEN_CPU_CAPABILITY can lower it)
    return torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def _causal_mask(T: int, past: int, device: torch.device) -> torch.Tensor:
    """(T, past + T) booleans: new query i (position past + i) may see keys 0 .. past + i."""
    return torch.ones(T, past + T, dtype=torch.bool, device=device).tril(diagonal=past)


class LayerKVCache:
    """One attention layer's keys and values, in buffers allocated once for `max_len` positions.

    `append` writes the new positions' keys and values after the ones already stored and returns all
    of them, so attention at a new position can look at every earlier one without recomputing it.
    """

    def __init__(self, shape: tuple[int, int, int, int], device: torch.device, dtype: torch.dtype):
        self.keys = torch.zeros(shape, device=device, dtype=dtype)  # (B, n_head, max_len, head_size)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0  # positions filled so far

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start, end = self.length, self.length + k.shape[2]
        self.keys[:, :, start:end] = k  # (B, n_head, T, head_size) into its slot
        self.values[:, :, start:end] = v
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]  # (B, n_head, end, head_size)


class KVCache:
    """The keys and values of every layer of a GPT, kept between forward passes (Chapter 7).

    Pass it to `GPT.forward(idx, cache=...)`: the first call (the prefill) runs the prompt and stores
    its keys and values; each later call runs only the new positions, at positions `length`,
    `length + 1`, ..., and attends to everything stored. Memory: 2 (keys and values) x n_layer x
    n_embd numbers per position and sequence (`bytes_per_token`).
    """

    def __init__(
        self,
        config: GPTConfig,
        batch_size: int,
        max_len: int | None = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        max_len = config.block_size if max_len is None else max_len
        if not 1 <= max_len <= config.block_size:
            raise ValueError(
                f"max_len must be between 1 and block_size={config.block_size} (the model has no "
                f"positions beyond it), got {max_len}"
            )
        self.batch_size, self.max_len = batch_size, max_len
        shape = (batch_size, config.n_head, max_len, config.head_size)
        self.layers = [LayerKVCache(shape, torch.device(device), dtype) for _ in range(config.n_layer)]

    @property
    def length(self) -> int:
        """The number of positions stored (the same in every layer)."""
        return self.layers[0].length

    def reset(self) -> None:
        """Forget every stored position (the buffers stay allocated)."""
        for layer in self.layers:
            layer.length = 0

    @property
    def bytes_per_token(self) -> int:
        """Bytes one position of one sequence takes: keys and values of every layer."""
        layer = self.layers[0]
        return 2 * len(self.layers) * layer.keys[0, :, 0].numel() * layer.keys.element_size()

    def check_room(self, batch_size: int, new_positions: int) -> None:
        if batch_size != self.batch_size:
            raise ValueError(f"this cache holds {self.batch_size} sequences, but the batch has {batch_size}")
        if self.length + new_positions > self.max_len:
            raise ValueError(
                f"the cache holds {self.length} of at most {self.max_len} positions, no room for "
                f"{new_positions} more: `reset()` it and run the last {self.max_len} tokens again"
            )


class MLP(nn.Module):
    """The feed-forward network each position runs on its own: expand 4x, GELU, project back."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate="tanh")  # GPT-2's GELU is the tanh approximation
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))  # (B, T, C) -> (B, T, 4C) -> (B, T, C)


class Block(nn.Module):
    """One transformer block: communicate (attention), then compute (MLP), each a residual update."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: LayerKVCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache)  # pre-LayerNorm: normalise the input of each branch,
        x = x + self.mlp(self.ln_2(x))  # leaving the residual stream itself untouched
        return x


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying: the output layer scores token i by the dot product with token i's own
        # embedding. One matrix serves both ends, which saves vocab_size x n_embd parameters.
        self.lm_head.weight = self.transformer.wte.weight
        self.apply(self._init_weights)
        # GPT-2's scaled initialisation: each block adds two residual updates (attention and MLP)
        # to the stream, so their output projections start at std 0.02 / sqrt(2 n_layer) and the
        # stream's variance stays about the same however deep the model is.
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameters, each counted once (the tied head is the token embedding).

        With `non_embedding`, the position embeddings are left out, as in GPT-2's own counts.
        """
        n = sum(p.numel() for p in self.parameters())
        return n - self.transformer.wpe.weight.numel() if non_embedding else n

    def make_kv_cache(self, batch_size: int, max_len: int | None = None) -> KVCache:
        """An empty cache for `batch_size` sequences of up to `max_len` (default block_size) positions."""
        weight = self.transformer.wte.weight
        return KVCache(self.config, batch_size, max_len, device=weight.device, dtype=weight.dtype)

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        cache: KVCache | None = None,
        last_only: bool = False,
        return_hidden: bool = False,
        logits_at: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None] | tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Logits (B, T, vocab_size) for token ids `idx` (B, T); with `targets`, also the mean loss.

        With a `cache`, `idx` holds only the positions after those the cache already stores, and their
        keys and values are added to it. With `last_only`, logits come for the last position only,
        (B, 1, vocab_size): all that generation needs, without the LM head's work on the others.
        With `return_hidden`, a third value: the final hidden states (B, T, C), after the last
        LayerNorm, what the LM head reads; a reward model puts a head of its own on them.
        With `logits_at`, a bool mask (B, T), logits come only where it is true, (N, vocab_size) in
        row-major order: a response's log-probability needs them on its own tokens, not the prompt's.
        """
        if logits_at is not None:
            if targets is not None or last_only or cache is not None:
                raise ValueError("logits_at goes alone: no targets, last_only or cache with it")
            if logits_at.shape != idx.shape:
                raise ValueError(f"logits_at must be shaped like idx {tuple(idx.shape)}, got {tuple(logits_at.shape)}")
            hidden = self.hidden_states(idx)  # (B, T, C)
            picked = hidden[logits_at.bool()]  # (B, T, C) -> (N, C)
            logits = self.lm_head(picked)  # (N, C) -> (N, vocab_size)
            return (logits, None, hidden) if return_hidden else (logits, None)
        B, T = idx.shape if idx.dim() == 2 else (None, None)
        if targets is not None and last_only:
            raise ValueError("last_only=True computes no logits for the earlier positions the loss needs")
        x = self.hidden_states(idx, cache=cache, last_only=last_only)
        logits = self.lm_head(x)  # (B, T, C) -> (B, T, vocab_size)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(B * T, -1).float(), targets.reshape(B * T))
        return (logits, loss, x) if return_hidden else (logits, loss)

    def hidden_states(
        self, idx: torch.Tensor, *, cache: KVCache | None = None, last_only: bool = False
    ) -> torch.Tensor:
        """The final hidden states (B, T, C) for token ids `idx` (B, T), after the last LayerNorm:
        what the LM head reads (`forward` without the head; `last_only`: (B, 1, C))."""
        self._check_input(idx)
        B, T = idx.shape
        past = 0
        if cache is not None:
            cache.check_room(B, T)
            past = cache.length
        pos = torch.arange(past, past + T, device=idx.device)  # (T,)
        x = self._embed_tokens(idx) + self.transformer.wpe(pos)  # (B, T, C) + (T, C) -> (B, T, C)
        x = self.transformer.drop(x)
        layer_caches = cache.layers if cache is not None else [None] * len(self.transformer.h)
        for block, layer_cache in zip(self.transformer.h, layer_caches):
            x = block(x, layer_cache)  # (B, T, C)
        if last_only:
            x = x[:, -1:]  # (B, T, C) -> (B, 1, C)
        return self.transformer.ln_f(x)

    def _check_input(self, idx: torch.Tensor) -> None:
        if idx.dim() != 2:
            raise ValueError(f"expected token ids of shape (batch, time), got shape {tuple(idx.shape)}")
        T = idx.shape[1]
        if T > self.config.block_size:
            raise ValueError(
                f"sequence of length {T} is longer than block_size={self.config.block_size}, the "
                "longest context this model has position embeddings for; crop it to the last "
                f"{self.config.block_size} tokens"
            )

    def _embed_tokens(self, idx: torch.Tensor) -> torch.Tensor:
        """The token embeddings (B, T, C), with a clear error for an id outside the vocabulary.

        On the CPU the embedding finds a bad id itself, at no cost to a correct batch, and its
        IndexError becomes the clear error. On a GPU a bad id would be a device-side assert that ends
        the process's use of the GPU, so the ids are checked first: one reduction, one wait.
        """
        if idx.device.type != "cpu" and (error := self._bad_id_error(idx)):
            raise error
        try:
            return self.transformer.wte(idx)
        except IndexError:
            error = self._bad_id_error(idx)
            if error is None:  # some other indexing problem: let it through as it is
                raise
        raise error

    def _bad_id_error(self, idx: torch.Tensor) -> ValueError | None:
        outside = (idx < 0) | (idx >= self.config.vocab_size)
        if not outside.any():
            return None
        bad, size = int(idx[outside][0]), self.config.vocab_size
        return ValueError(f"token id {bad} is outside the vocabulary: ids must be in [0, {size})")
