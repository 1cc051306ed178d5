"""How much memory a training step takes, estimated from its parts, and how much a device has free.

Training a `GPT` with the `Trainer` (AdamW, optionally under fp16/bf16 autocast) holds:

    weights          4 bytes a parameter: float32, also under autocast (the optimizer updates these)
    AdamW moments    8 bytes a parameter: exp_avg and exp_avg_sq, both float32, from the first step on
    autocast copies  2 bytes a Linear weight (the tied head's included): fp16/bf16 copies made in the
                     forward pass and kept for backward
    activations      what `GPT.forward` keeps for backward (counted in `activation_bytes`)
    logits and loss  three float32 arrays of the (B, T, vocab_size) logits' size while the loss's
                     backward runs: the log-softmax output, its gradient, the logits' gradient (the
                     logits themselves are freed once the loss is computed: nothing refers to them)
    gradients        4 bytes a parameter, allocated as backward runs, and at its end two more float32
                     vocab_size x n_embd arrays: the tied embedding's gradient comes from the head and
                     from the embedding, and the engine sums the two into a third

The first five are all alive when backward starts, and that is the peak unless the gradients are
larger: backward frees the activations as it allocates the gradients, so the two do not add up.

    peak = weights + AdamW moments + max(autocast copies + activations + logits and loss, gradients)

The estimate leaves out the framework's own overhead (a CUDA context, cuBLAS workspaces, the
caching allocator's rounding), which is why `fits` keeps a share of the free memory in reserve.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch.profiler import ProfilerActivity, profile

from .model import GPTConfig

PRECISIONS = ("fp32", "bf16", "fp16")
FLOAT32 = 4  # bytes
HALF = 2  # bytes of an fp16 or bf16 number

# Per layer, numbers kept for backward per position and channel: LayerNorm keeps its float32 input
# (the residual stream) twice, once per LayerNorm; the other tensors are in the compute precision:
#   ln_1's output (c_attn's input) 1, queries/keys/values 3, attention output 1, heads side by side
#   (c_proj's input) 1, ln_2's output (c_fc's input) 1, c_fc's output (GELU's input) 4, GELU's
#   output (the MLP c_proj's input) 4: 15 in all.
FLOAT32_PER_LAYER, COMPUTE_PER_LAYER = 2, 15


# The parts of an estimate, in the order of a table, and their labels. The peak counts the first three,
# then the next three (alive when backward starts) or, instead, the gradients, whichever are more.
PARTS = {
    "weights": "weights (float32)",
    "other_models": "other models kept (float32)",
    "adamw_moments": "AdamW's two moments",
    "autocast_copies": "fp16/bf16 copies of the weights",
    "activations": "activations kept for backward",
    "logits_and_loss": "logits and loss",
    "gradients": "gradients (instead, if larger)",
}


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of each part of a training step's memory (see the module's docstring), and the peak."""

    batch_size: int
    seq_len: int
    precision: str
    weights: int
    adamw_moments: int
    autocast_copies: int
    activations: int
    logits_and_loss: int
    gradients: int
    other_models: int = 0  # further float32 copies of the weights held meanwhile (e.g. the base model)

    @property
    def peak(self) -> int:
        at_backward_start = self.autocast_copies + self.activations + self.logits_and_loss
        return self.weights + self.other_models + self.adamw_moments + max(at_backward_start, self.gradients)

    @property
    def during_step(self) -> int:
        """What the step allocates above what is held when it begins (weights, other models, AdamW)."""
        return self.peak - self.weights - self.other_models - self.adamw_moments

    def parts(self) -> dict[str, int]:
        """Bytes of each part, by its name in PARTS."""
        return {name: getattr(self, name) for name in PARTS}

    def table(self) -> str:
        return memory_table({"GiB": self})


def memory_table(estimates: dict[str, MemoryEstimate]) -> str:
    """Estimates side by side: a column each (headed by its key), a row per part (GiB), the peak last.

    A part that is 0 in every column gets no row.
    """
    width = max(11, *(len(name) for name in estimates))
    column = lambda cells: "".join(f"{cell:>{width + 2}}" for cell in cells)  # noqa: E731
    label_width = max(len(label) for label in PARTS.values())
    lines = [" " * label_width + column(estimates)]
    shapes = [f"{e.batch_size}x{e.seq_len} {e.precision}" for e in estimates.values()]
    lines.append(f"{'batch x tokens, precision':<{label_width}}" + column(shapes))
    for name, label in PARTS.items():
        sizes = [e.parts()[name] for e in estimates.values()]
        if any(sizes):
            lines.append(f"{label:<{label_width}}" + column(f"{size / 2**30:.2f}" for size in sizes))
    lines.append(f"{'estimated peak':<{label_width}}" + column(f"{e.peak / 2**30:.2f}" for e in estimates.values()))
    return "\n".join(lines)


def gib(size: int) -> str:
    """Bytes as GiB with two decimals: 1610612736 -> '1.50 GiB'."""
    return f"{size / 2**30:.2f} GiB"


def parameter_count(config: GPTConfig) -> int:
    """The parameters of a `GPT` of this shape, the tied head counted once (as `GPT.num_params`)."""
    C, L, bias = config.n_embd, config.n_layer, int(config.bias)
    # four Linear weights (12 C^2) and their biases (9 C); two LayerNorms' gains (2 C) and biases (2 C)
    layer = 12 * C * C + 2 * C + bias * (9 + 2) * C
    embeddings = (config.vocab_size + config.block_size) * C
    return embeddings + L * layer + (1 + bias) * C  # + ln_f


def linear_weight_count(config: GPTConfig) -> int:
    """Numbers in the weights that go through a matrix product: the blocks' four Linear layers and the head."""
    return 12 * config.n_embd**2 * config.n_layer + config.vocab_size * config.n_embd


def activation_bytes(config: GPTConfig, batch_size: int, seq_len: int, precision: str) -> int:
    """Bytes `GPT.forward` keeps for backward below the logits, at one batch (B, T) = (batch_size, seq_len).

    Per layer, 2 float32 numbers and 15 in the compute precision per position and channel (see
    FLOAT32_PER_LAYER), and the attention's log-sum-exp, one float32 per head and position (the fused
    attention kernels keep it instead of the (T, T) attention weights). Then ln_f's float32 input
    and the head's input. Dropout, at p = 0 as in fine-tuning, keeps nothing.
    """
    compute = HALF if precision != "fp32" else FLOAT32
    positions = batch_size * seq_len
    per_layer = positions * config.n_embd * (FLOAT32_PER_LAYER * FLOAT32 + COMPUTE_PER_LAYER * compute)
    per_layer += positions * config.n_head * FLOAT32
    head = positions * config.n_embd * (FLOAT32 + compute)
    return config.n_layer * per_layer + head


def training_memory(
    config: GPTConfig, batch_size: int, seq_len: int, precision: str = "fp32", other_models: int = 0
) -> MemoryEstimate:
    """The memory of one training step of a `GPT` of shape `config` on batches of (batch_size, seq_len).

    `precision` is the Trainer's resolved precision ("fp32", "bf16" or "fp16"; see
    `minigpt.train.resolve_precision`); `other_models` counts further float32 copies of the same
    weights held during training. `seq_len` is the longest sequence: a batch padded shorter takes less.
    """
    if precision not in PRECISIONS:
        raise ValueError(
            f"precision must be one of {', '.join(PRECISIONS)} (resolve 'auto' for the device first, "
            f"with minigpt.train.resolve_precision), got {precision!r}"
        )
    for name, value in (("batch_size", batch_size), ("seq_len", seq_len)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if seq_len > config.block_size:
        raise ValueError(f"seq_len={seq_len} is longer than the model's block_size={config.block_size}")
    if not isinstance(other_models, int) or other_models < 0:
        raise ValueError(f"other_models must be a count of models, 0 or more, got {other_models!r}")
    params = parameter_count(config)
    half = precision != "fp32"
    return MemoryEstimate(
        batch_size=batch_size,
        seq_len=seq_len,
        precision=precision,
        weights=FLOAT32 * params,
        adamw_moments=2 * FLOAT32 * params,
        autocast_copies=HALF * linear_weight_count(config) if half else 0,
        activations=activation_bytes(config, batch_size, seq_len, precision),
        logits_and_loss=batch_size * seq_len * config.vocab_size * 3 * FLOAT32,
        gradients=FLOAT32 * (params + 2 * config.vocab_size * config.n_embd),
        other_models=other_models * FLOAT32 * params,
    )


def free_memory(device: torch.device | str) -> int | None:
    """Bytes this process can still allocate on a CUDA device; None for a CPU or Apple GPU (not measured).

    The driver's free memory (`torch.cuda.mem_get_info`), plus what PyTorch's caching allocator holds
    reserved but unused, which it hands out again before asking the driver for more.
    """
    device = torch.device(device)
    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


def peak_allocated(step: Callable[[], object], device: torch.device | str) -> int | None:
    """Bytes allocated at the highest point while `step()` runs, above what was allocated when it began.

    On the CPU, from the memory records of torch.profiler (`profile_memory=True`): each allocation
    adds its size, each free subtracts it, and the highest running total is the answer. On a CUDA
    device, from the caching allocator's peak statistic. Elsewhere (Apple's MPS) nothing is measured:
    None. To compare with an estimate, subtract what the estimate holds before the step begins.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    if device.type != "cpu":
        return None
    recorded = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with _stderr_silenced():  # the profiler's C++ side prints a line to stderr as it starts and stops
        recorded.start()
    try:
        step()
    finally:
        with _stderr_silenced():
            recorded.stop()
    records = [e for e in recorded.profiler.kineto_results.events() if e.name() == "[memory]"]
    running = highest = 0
    for record in sorted(records, key=lambda e: e.start_ns()):
        running += record.nbytes()  # negative for a free
        highest = max(highest, running)
    return highest


@contextmanager
def _stderr_silenced():
    """File descriptor 2 pointed at the null device for a moment: output written below Python's level too."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
