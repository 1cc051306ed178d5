"""The training loop (Chapters 3 and 5); `minigpt train` runs it from a shell (minigpt.cli).

`Trainer` is the loop every chapter that trains uses: AdamW with weight decay on matrices only,
linear warmup then cosine decay, gradient clipping and accumulation, mixed precision chosen by the
hardware, periodic evaluation on a fixed set of windows, checkpoints written atomically, an exact
resume, and live curves in TensorBoard (minigpt.curves). Started by `torchrun`, it trains with
DistributedDataParallel.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .checkpoint import save_checkpoint
from .curves import TensorBoardCurves
from .data import get_batch, windows_at
from .notebook import progress as progress_bar


@dataclass
class TrainConfig:
    """How to train. Batch sizes are per optimizer step: batch_size x grad_accum_steps windows."""

    max_steps: int = 2000
    batch_size: int = 32  # windows per micro-batch (per process, under DDP)
    block_size: int | None = None  # window length; None: the model's block_size
    grad_accum_steps: int = 1  # micro-batches whose gradients are summed before each step
    lr: float = 1e-3  # peak learning rate, reached at the end of warmup
    min_lr: float | None = None  # the cosine's floor; None: lr / 10
    warmup_steps: int = 100
    weight_decay: float = 0.1  # applied to weight matrices and embeddings only
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float | None = 1.0  # clip the global gradient norm to this; None: no clipping
    label_smoothing: float = 0.0
    precision: str = "auto"  # "auto", "fp32", "bf16" or "fp16"
    eval_interval: int = 250  # evaluate every this many steps (and at the first and last)
    eval_windows: int = 200  # windows in the fixed evaluation set of each split
    checkpoint_interval: int | None = None  # steps between checkpoints, if checkpoint_dir is set
    seed: int = 1337

    def __post_init__(self) -> None:
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be 'auto', 'fp32', 'bf16' or 'fp16', got {self.precision!r}")
        for name in ("max_steps", "batch_size", "grad_accum_steps", "eval_interval", "eval_windows"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be at least 1, got {getattr(self, name)}")

    @property
    def final_lr(self) -> float:
        return self.lr / 10 if self.min_lr is None else self.min_lr


def lr_at(step: int, config: TrainConfig) -> float:
    """The learning rate for optimizer step `step` (0-based): linear warmup, then cosine decay."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if step >= config.max_steps:
        return config.final_lr
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)  # 0 -> 1
    return config.final_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (config.lr - config.final_lr)


def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW that decays only tensors of two or more dimensions (matrices, embeddings).

    Biases and LayerNorm parameters are few, and decay gains nothing there: a LayerNorm gain pulled
    towards zero only fights the normalisation that precedes it, and a bias has no scale to regularise.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    # Fused: one kernel per tensor for the whole update, on a GPU and on the CPU, where PyTorch's
    # default would run about ten small operations per tensor (scripts/benchmark_training.py).
    fused = device.type in ("cuda", "cpu")
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2), fused=fused)


Batch = tuple[torch.Tensor, ...]  # tensors whose first dimension is the batch; (x, y) for next tokens
LossFunction = Callable[[nn.Module, Batch], torch.Tensor]  # (model, batch) -> a scalar to minimise


def next_token_loss(
    model: nn.Module, batch: Batch, label_smoothing: float = 0.0, reduction: str = "mean"
) -> torch.Tensor:
    """The Trainer's default loss: cross-entropy of each next token over the targets of (x, y).

    Targets of -100 (F.cross_entropy's ignore_index) take no loss: padding, or an instruction's prompt.
    `reduction="sum"` gives the sum over the scored targets, 0 when there are none (the mean is NaN).
    """
    x, y = batch
    logits, _ = model(x)  # (B, T, V)
    return F.cross_entropy(
        logits.flatten(0, 1).float(), y.flatten(), label_smoothing=label_smoothing, reduction=reduction
    )


@runtime_checkable
class BatchSource(Protocol):
    """Training data that makes its own batches, for data that is not one long token sequence.

    Instruction examples (Chapter 8) are separate sequences of different lengths, padded per batch,
    with targets of -100 (F.cross_entropy's ignore_index) where no loss is taken. A Trainer with a
    loss function of its own may take batches of other tensors (e.g. preferred and rejected replies).
    """

    def sample_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        """A random batch, (x, y) both (B, T) by default, drawn with `generator`."""
        ...

    def eval_batches(self, count: int, batch_size: int) -> list[Batch]:
        """A fixed evaluation set of about `count` sequences, as batches like `sample_batch`'s."""
        ...


def resolve_precision(precision: str, device: torch.device) -> str:
    """bf16 on GPUs that compute in it natively, fp16 (with loss scaling) on older GPUs, fp32 elsewhere."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if native_bf16(device) else "fp16"
    return "fp32"


def native_bf16(device: torch.device) -> bool:
    """Whether this GPU has bf16 arithmetic units (compute capability 8.0, Ampere, and later).

    Plain `torch.cuda.is_bf16_supported()` also says yes where bf16 only works by emulation, e.g. on
    the T4 of Colab's free tier, where it runs slower than fp32; fp16 is that GPU's fast format.
    """
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # a PyTorch whose is_bf16_supported has no including_emulation argument
        return torch.cuda.get_device_capability(device) >= (8, 0)


class Trainer:
    """Trains a language model on a 1-D token sequence and evaluates it on another.

    Either split may instead be a `BatchSource`, which makes its own batches (instruction examples).

    history holds one dict per evaluation: step, tokens seen, train and val loss, learning rate,
    the last gradient norm and the seconds spent training so far (evaluation excluded); step_log
    holds every step's batch loss and gradient norm.

    `loss_fn(model, batch)` replaces the next-token loss (`next_token_loss`, with the config's label
    smoothing) for other objectives, e.g. a reward model's or DPO's, in the same loop; with one,
    evaluation reports the mean of `loss_fn` over the evaluation batches (sequences weighted equally).

    `curves` (a `minigpt.curves.TensorBoardCurves`) receives every step's loss, learning rate,
    gradient norm and tokens per second, and every evaluation, as training goes.
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: torch.Tensor | np.ndarray | BatchSource,
        val_data: torch.Tensor | np.ndarray | BatchSource,
        config: TrainConfig,
        device: torch.device | str = "cpu",
        checkpoint_dir: str | Path | None = None,
        loss_fn: LossFunction | None = None,
        curves: TensorBoardCurves | None = None,
    ):
        self.config = config
        self.custom_loss = loss_fn is not None
        self.loss_fn = loss_fn
        self.device = torch.device(device)
        self.block_size = config.block_size or getattr(getattr(model, "config", None), "block_size", None)
        if self.block_size is None:
            raise ValueError("set TrainConfig.block_size: this model has no config.block_size to default to")
        for name, data in (("training", train_data), ("validation", val_data)):
            if not isinstance(data, BatchSource) and len(data) <= self.block_size:
                raise ValueError(
                    f"the {name} data has {len(data)} tokens, fewer than one window of block_size="
                    f"{self.block_size} plus its next token; use more text or a smaller block_size"
                )
        self.train_data, self.val_data = train_data, val_data
        self.rank, self.world_size = (
            (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        )
        self.model = model.to(self.device)
        self.ddp_model = (
            nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
            if self.world_size > 1
            else self.model
        )
        self.precision = resolve_precision(config.precision, self.device)
        self.optimizer = make_optimizer(self.model, config, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        # Every process draws the same global batch and keeps its own slice of it, so N processes
        # see exactly the windows one process would with an N times larger batch.
        self.generator = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self.train_seconds = 0.0
        self.history: list[dict] = []
        self.step_log: list[tuple[int, float, float]] = []  # (step, batch loss, grad norm before clipping)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        # minigpt.json of the model folder this run's checkpoints export to: its tokenizer's description
        # and prompt format (minigpt.pretrained). The command line sets it; None: not known.
        self.folder_info: dict | None = None
        self.curves = curves  # live curves in TensorBoard (minigpt.curves), written by process 0
        self.step_tokens = 0  # input tokens of the last step, every process's
        self.stop_requested = False  # set (e.g. by a signal handler) to end train() after this step
        self.eval_starts = {
            split: _evenly_spaced_starts(len(data), self.block_size, config.eval_windows)
            for split, data in (("train", train_data), ("val", val_data))
            if not isinstance(data, BatchSource)
        }

    @property
    def tokens_per_step(self) -> int:
        # For a BatchSource, an upper bound: its batches are padded only to their longest sequence.
        return self.config.batch_size * self.config.grad_accum_steps * self.world_size * self.block_size

    def autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def global_micro_batch(self) -> Batch:
        """The next micro-batch of every process together: (batch_size x processes, ...) on the CPU."""
        size = self.config.batch_size * self.world_size
        if isinstance(self.train_data, BatchSource):
            return self.train_data.sample_batch(size, self.generator)
        return get_batch(self.train_data, self.block_size, size, self.generator, "cpu")

    def units(self, batch: Batch) -> int:
        """What a batch's loss is an average over: its scored target tokens for the next-token loss
        (padding and masked prompts excluded), its sequences for a loss function of the Trainer's own."""
        return len(batch[0]) if self.custom_loss else int((batch[1] != -100).sum())

    def summed_loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """The batch's loss summed over its units (see `units`), so that batches of any size add up."""
        if self.custom_loss:
            return self.loss_fn(model, batch) * len(batch[0])
        return next_token_loss(model, batch, self.config.label_smoothing, reduction="sum")

    def train_step(self) -> tuple[float, float]:
        """One optimizer step over grad_accum_steps micro-batches; returns (mean loss, grad norm).

        The gradient is that of the mean loss over every unit (target token, or sequence) of all the
        micro-batches of all the processes, as if they were one batch: each micro-batch weighs by
        its number of units, not equally. Padded instruction batches hold different numbers of
        targets, and one whose targets are all masked adds nothing (its summed loss is 0).
        """
        config = self.config
        lr = lr_at(self.step, config)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        # Every process draws the same global micro-batches, so each knows the step's total of units
        # without communicating, and keeps its own slice of each.
        batches = [self.global_micro_batch() for _ in range(config.grad_accum_steps)]
        units = sum(self.units(batch) for batch in batches)
        if units == 0:
            raise ValueError(
                f"step {self.step}: every target of its {config.grad_accum_steps} micro-batch(es) is masked "
                "(-100), so there is no loss to train on; check the data's masks (e.g. a prompt longer "
                "than the sequence)"
            )
        # DDP averages the processes' gradients, dividing by world_size: scale it back.
        weight = self.world_size / units
        B = config.batch_size
        mine = slice(self.rank * B, (self.rank + 1) * B)  # this process's share of each global batch
        total = torch.zeros((), device=self.device)
        for micro, batch in enumerate(batches):
            batch = tuple(t[mine].to(self.device) for t in batch)
            # Under DDP, average gradients across processes only after the last micro-batch.
            last = micro == config.grad_accum_steps - 1
            sync = self.ddp_model.no_sync() if self.world_size > 1 and not last else contextlib.nullcontext()
            with sync, self.autocast():
                loss = self.summed_loss(self.ddp_model, batch) * weight  # through DDP's wrapper: syncs
            self.scaler.scale(loss).backward()
            total += loss.detach()
        self.scaler.unscale_(self.optimizer)  # clip the true gradient, not the scaled one
        max_norm = config.grad_clip if config.grad_clip is not None else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.world_size > 1:
            dist.all_reduce(total, op=dist.ReduceOp.SUM)  # Gloo has no AVG before PyTorch 2.8
            total /= self.world_size
        self.step += 1
        self.step_tokens = sum(batch[0].numel() for batch in batches)  # inputs of all processes
        return total.item(), grad_norm.item()

    def evaluate(self) -> dict[str, float]:
        """Mean loss over the fixed evaluation windows of each split, in fp32 whatever the training
        precision (no dropout, no label smoothing): the curves of runs in different precisions compare."""
        return {
            split: self._evaluate_split(split, data)
            for split, data in (("train", self.train_data), ("val", self.val_data))
        }

    def _evaluate_split(self, split: str, data) -> float:
        if self.custom_loss:
            return evaluate_loss_fn(self.model, self.loss_fn, self._eval_batches(split, data))
        if isinstance(data, BatchSource):
            return evaluate_batches(
                self.model, data.eval_batches(self.config.eval_windows, self.config.batch_size)
            )
        return evaluate_loss(
            self.model, data, self.block_size, self.eval_starts[split], self.config.batch_size
        )

    def _eval_batches(self, split: str, data) -> list[Batch]:
        """The fixed evaluation set of a split, as batches for a loss function of the Trainer's own."""
        batch_size = self.config.batch_size
        if isinstance(data, BatchSource):
            return data.eval_batches(self.config.eval_windows, batch_size)
        starts = self.eval_starts[split]
        return [
            windows_at(data, starts[i : i + batch_size], self.block_size, "cpu")
            for i in range(0, len(starts), batch_size)
        ]

    def train(self, progress: bool = True, until: int | None = None) -> list[dict]:
        """Train from wherever the run stands to step `until` (default: max_steps); returns the history.

        With `progress`, a live bar (see `minigpt.progress`) and one printed line per evaluation,
        "step 500: train 2.101, val 2.153"; without it, silence.

        Stopping early at `until` leaves the schedule untouched: it is always laid out over max_steps,
        so a run stopped, saved and resumed follows the same learning rates as one that never stopped.
        """
        config = self.config
        until = config.max_steps if until is None else min(until, config.max_steps)
        self.model.train()
        report = progress and self.rank == 0
        bar = progress_bar(total=until, initial=self.step, desc="training") if report else None
        # The last step's batch loss and gradient norm, for the history row of the next evaluation.
        loss, grad_norm = self.step_log[-1][1:] if self.step_log else (None, None)
        try:
            while True:
                if self._evaluation_due():
                    losses = self.evaluate()
                    self._record(losses, loss, grad_norm)
                    if bar is not None:
                        self._report(bar)
                    if self.curves is not None and self.rank == 0:
                        self.curves.evaluation(self.step, losses)
                if self.step >= until or self._stop_agreed():
                    break
                start = time.perf_counter()
                loss, grad_norm = self.train_step()
                seconds = time.perf_counter() - start
                self.train_seconds += seconds
                if self.curves is not None and self.rank == 0:
                    lr = lr_at(self.step - 1, config)  # the step just taken
                    self.curves.step(self.step, loss, grad_norm, lr, self.step_tokens / seconds)
                self.step_log.append((self.step, loss, grad_norm))
                if bar is not None:
                    bar.update(1)
                if (
                    self.checkpoint_dir
                    and config.checkpoint_interval
                    and self.step % config.checkpoint_interval == 0
                ):
                    self.save_checkpoint()
        finally:
            if bar is not None:
                bar.close()
            if self.curves is not None and self.rank == 0:
                self.curves.flush()
        return self.history

    def _stop_agreed(self) -> bool:
        """Whether stop_requested is set, in any process (all of them must stop at the same step)."""
        if self.world_size == 1:
            return self.stop_requested
        flag = torch.tensor(float(self.stop_requested), device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def _evaluation_due(self) -> bool:
        """Every eval_interval steps and at max_steps, once per step (a resumed run has it already)."""
        due = self.step % self.config.eval_interval == 0 or self.step == self.config.max_steps
        return due and (not self.history or self.history[-1]["step"] != self.step)

    def _report(self, bar) -> None:
        """The latest evaluation as a printed line, and beside a live bar."""
        last = self.history[-1]
        train, val = f"{last['train_loss']:.3f}", f"{last['val_loss']:.3f}"
        bar.write(f"step {last['step']}: train {train}, val {val}")
        bar.set_postfix(train=train, val=val)

    def _record(self, losses: dict[str, float], last_loss: float | None, grad_norm: float | None) -> None:
        self.history.append(
            dict(
                step=self.step,
                tokens=self.step * self.tokens_per_step,
                train_loss=losses["train"],
                val_loss=losses["val"],
                batch_loss=last_loss,
                lr=lr_at(max(self.step - 1, 0), self.config),
                grad_norm=grad_norm,
                seconds=self.train_seconds,
            )
        )

    def save_checkpoint(self) -> Path:
        """Write a checkpoint of the whole run to checkpoint_dir (only process 0 writes)."""
        if self.checkpoint_dir is None:
            raise ValueError("this Trainer has no checkpoint_dir")
        if self.rank != 0:
            return self.checkpoint_dir
        return save_checkpoint(self.checkpoint_dir, self)


@torch.no_grad()
def evaluate_loss(
    model: nn.Module,
    data: torch.Tensor | np.ndarray,
    block_size: int,
    starts: list[int] | None = None,
    batch_size: int = 32,
) -> float:
    """Mean next-token loss of `model` over the windows of `data` that begin at `starts`.

    By default the windows tile the whole sequence without overlap, which measures the loss on all
    of it (each window's first predictions have little context, as at the start of any text).
    """
    if starts is None:
        starts = list(range(0, len(data) - block_size, block_size))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = 0.0
    for i in range(0, len(starts), batch_size):
        x, y = windows_at(data, starts[i : i + batch_size], block_size, device)
        logits, _ = model(x)  # (B, T, V), in the model's own precision (fp32 for a Trainer's model)
        total += F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="sum").item()
    model.train(was_training)
    return total / (len(starts) * block_size)


@torch.no_grad()
def token_losses(
    model: nn.Module,
    tokens: torch.Tensor | np.ndarray | list[int],
    block_size: int,
    stride: int | None = None,
    batch_size: int = 32,
) -> torch.Tensor:
    """The loss (nats) of each of tokens[1:], each token scored once: a tensor of len(tokens) - 1 on the CPU.

    Windows of `block_size` tokens start every `stride` tokens (default block_size // 2), the last one
    moved back to end where the sequence ends; each window scores only the tokens that the windows
    before it have not. So every token after the first window is predicted from at least
    block_size - stride tokens of context (`evaluate_loss`'s tiles give the first tokens of each
    window almost none), and the sum is the negative log-likelihood of the whole sequence after its
    first token: divided by the number of characters those tokens encode, a loss per character that
    compares models whatever their tokenizer.
    """
    tokens = torch.as_tensor(np.asarray(tokens, dtype=np.int64))
    n = len(tokens)
    if tokens.ndim != 1 or n < 2:
        raise ValueError(f"tokens must be a 1-D sequence of at least 2 ids, got shape {tuple(tokens.shape)}")
    stride = stride or max(1, block_size // 2)
    if not 1 <= stride <= block_size:
        raise ValueError(f"stride must be between 1 and block_size={block_size}, got {stride}")
    T = min(block_size, n - 1)  # a sequence shorter than the context is one window
    starts = list(range(0, n - T, stride))
    if starts[-1] != n - 1 - T:
        starts.append(n - 1 - T)  # the last window ends with the sequence
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    losses = torch.empty(n - 1)  # losses[t - 1] is the loss of tokens[t]
    done = 0  # tokens[1 : done + 1] are scored
    for i in range(0, len(starts), batch_size):
        batch_starts = starts[i : i + batch_size]
        x, y = windows_at(tokens, batch_starts, T, device)  # (B, T) each; y[b, j] is tokens[s + 1 + j]
        logits, _ = model(x)  # (B, T, V)
        nll = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="none")  # (B * T,)
        for s, row in zip(batch_starts, nll.view(len(batch_starts), T).cpu()):
            losses[done : s + T] = row[done - s :]  # the targets after those already scored
            done = s + T
    model.train(was_training)
    return losses


@torch.no_grad()
def evaluate_batches(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Mean loss per scored target over batches (x, y), skipping targets of -100."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        logits, _ = model(x)  # (B, T, V)
        total += F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="sum").item()
        count += int((y != -100).sum())
    model.train(was_training)
    if count == 0:
        raise ValueError("every target of the evaluation batches is masked (-100): there is nothing to evaluate")
    return total / count


@torch.no_grad()
def evaluate_loss_fn(model: nn.Module, loss_fn: LossFunction, batches: list[Batch]) -> float:
    """The mean of `loss_fn(model, batch)` over batches, each weighted by its number of sequences."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        size = len(batch[0])
        total += loss_fn(model, tuple(t.to(device) for t in batch)).item() * size
        count += size
    model.train(was_training)
    return total / count


def _evenly_spaced_starts(n_tokens: int, block_size: int, count: int) -> list[int]:
    """`count` window starts spread evenly over the sequence: a fixed, representative evaluation set."""
    last = n_tokens - block_size - 1
    count = min(count, last + 1)
    return torch.linspace(0, last, count).long().tolist()


if __name__ == "__main__":  # the old entry point; importing minigpt.cli here would make an import cycle
    import sys

    sys.exit("python -m minigpt.train is now `minigpt train` (or `python -m minigpt train`): run that")
