"""The training loop (Chapters 3 and 4), also a command-line program.

`Trainer` is the loop every chapter that trains uses: AdamW with weight decay on matrices only,
linear warmup then cosine decay, gradient clipping and accumulation, mixed precision chosen by the
hardware, periodic evaluation on a fixed set of windows, checkpoints written atomically, and an
exact resume. Under `torchrun` it trains with DistributedDataParallel:

    python -m minigpt.train --help
    torchrun --nproc_per_node=2 -m minigpt.train --data shakespeare-char --max-steps 200
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .data import cache_dir, get_batch, load_text, read_tokens, train_val_split, windows_at, write_tokens
from .model import GPT, GPTConfig
from .tokenizer import CharTokenizer, gpt2_tokenizer
from .utils import choose_device


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

    Biases and LayerNorm gains are few, and pulling them towards zero only fights the normalisation.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = device.type == "cuda"  # one kernel for the whole update on a GPU
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2), fused=fused)


@runtime_checkable
class BatchSource(Protocol):
    """Training data that makes its own batches, for data that is not one long token sequence.

    Instruction examples (Chapter 7) are separate sequences of different lengths, padded per batch,
    with targets of -100 (F.cross_entropy's ignore_index) where no loss is taken.
    """

    def sample_batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A random batch (x, y), both (B, T), drawn with `generator`."""
        ...

    def eval_batches(self, count: int, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A fixed evaluation set of about `count` sequences, as batches (x, y)."""
        ...


def resolve_precision(precision: str, device: torch.device) -> str:
    """bf16 where the GPU supports it, fp16 (with loss scaling) on older GPUs, fp32 elsewhere."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


class Trainer:
    """Trains a language model on a 1-D token sequence and evaluates it on another.

    Either split may instead be a `BatchSource`, which makes its own batches (instruction examples).

    history holds one dict per evaluation: step, tokens seen, train and val loss, learning rate,
    the last gradient norm and the seconds spent training so far (evaluation excluded); step_log
    holds every step's batch loss and gradient norm.
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: torch.Tensor | np.ndarray | BatchSource,
        val_data: torch.Tensor | np.ndarray | BatchSource,
        config: TrainConfig,
        device: torch.device | str = "cpu",
        checkpoint_dir: str | Path | None = None,
    ):
        self.config = config
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

    def next_micro_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        B = self.config.batch_size
        if isinstance(self.train_data, BatchSource):
            x, y = self.train_data.sample_batch(B * self.world_size, self.generator)
        else:
            x, y = get_batch(self.train_data, self.block_size, B * self.world_size, self.generator, "cpu")
        x, y = x[self.rank * B : (self.rank + 1) * B], y[self.rank * B : (self.rank + 1) * B]
        return x.to(self.device), y.to(self.device)

    def train_step(self) -> tuple[float, float]:
        """One optimizer step over grad_accum_steps micro-batches; returns (mean loss, grad norm)."""
        config = self.config
        lr = lr_at(self.step, config)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        total = torch.zeros((), device=self.device)
        for micro in range(config.grad_accum_steps):
            x, y = self.next_micro_batch()
            # Under DDP, average gradients across processes only after the last micro-batch.
            last = micro == config.grad_accum_steps - 1
            sync = self.ddp_model.no_sync() if self.world_size > 1 and not last else contextlib.nullcontext()
            with sync, self.autocast():
                logits, _ = self.ddp_model(x)  # (B, T, V)
                loss = F.cross_entropy(
                    logits.flatten(0, 1).float(), y.flatten(), label_smoothing=config.label_smoothing
                )
                loss = loss / config.grad_accum_steps  # the sum over micro-batches is then the mean
            self.scaler.scale(loss).backward()
            total += loss.detach()
        self.scaler.unscale_(self.optimizer)  # clip the true gradient, not the scaled one
        max_norm = config.grad_clip if config.grad_clip is not None else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.world_size > 1:
            dist.all_reduce(total, op=dist.ReduceOp.AVG)
        self.step += 1
        return total.item(), grad_norm.item()

    def evaluate(self) -> dict[str, float]:
        """Mean loss over the fixed evaluation windows of each split (no dropout, no label smoothing)."""
        return {
            split: self._evaluate_split(split, data)
            for split, data in (("train", self.train_data), ("val", self.val_data))
        }

    def _evaluate_split(self, split: str, data) -> float:
        if isinstance(data, BatchSource):
            batches = data.eval_batches(self.config.eval_windows, self.config.batch_size)
            return evaluate_batches(self.model, batches, self.autocast)
        return evaluate_loss(
            self.model, data, self.block_size, self.eval_starts[split], self.config.batch_size, self.autocast
        )

    def train(self, progress: bool = True, until: int | None = None) -> list[dict]:
        """Train from wherever the run stands to step `until` (default: max_steps); returns the history.

        Stopping early at `until` leaves the schedule untouched: it is always laid out over max_steps,
        so a run stopped, saved and resumed follows the same learning rates as one that never stopped.
        """
        config = self.config
        until = config.max_steps if until is None else min(until, config.max_steps)
        self.model.train()
        bar = tqdm(total=until, initial=self.step, desc="training", disable=not progress or self.rank != 0)
        loss, grad_norm = None, None  # no step taken yet in this call
        while True:
            if self.step % config.eval_interval == 0 or self.step == config.max_steps:
                if not self.history or self.history[-1]["step"] != self.step:
                    self._record(self.evaluate(), loss, grad_norm)
                    last = self.history[-1]
                    bar.set_postfix(train=f"{last['train_loss']:.3f}", val=f"{last['val_loss']:.3f}")
            if self.step >= until:
                break
            start = time.perf_counter()
            loss, grad_norm = self.train_step()
            self.train_seconds += time.perf_counter() - start
            self.step_log.append((self.step, loss, grad_norm))
            bar.update(1)
            if (
                self.checkpoint_dir
                and config.checkpoint_interval
                and self.step % config.checkpoint_interval == 0
            ):
                self.save_checkpoint()
        bar.close()
        return self.history

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
        from .checkpoint import save_checkpoint

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
    autocast=contextlib.nullcontext,
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
        with autocast():
            logits, _ = model(x)  # (B, T, V)
        total += F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="sum").item()
    model.train(was_training)
    return total / (len(starts) * block_size)


@torch.no_grad()
def evaluate_batches(
    model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], autocast=contextlib.nullcontext
) -> float:
    """Mean loss per scored target over batches (x, y), skipping targets of -100."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        with autocast():
            logits, _ = model(x)  # (B, T, V)
        total += F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="sum").item()
        count += int((y != -100).sum())
    model.train(was_training)
    return total / count


def _evenly_spaced_starts(n_tokens: int, block_size: int, count: int) -> list[int]:
    """`count` window starts spread evenly over the sequence: a fixed, representative evaluation set."""
    last = n_tokens - block_size - 1
    count = min(count, last + 1)
    return torch.linspace(0, last, count).long().tolist()


def trainer_state(trainer: Trainer) -> dict:
    """Everything besides the weights that a resumed run needs to continue exactly."""
    return {
        "step": trainer.step,
        "train_seconds": trainer.train_seconds,
        "history": trainer.history,
        "step_log": trainer.step_log,
        "optimizer": trainer.optimizer.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "generator": trainer.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "train_config": asdict(trainer.config),
    }


def restore_trainer_state(trainer: Trainer, state: dict) -> None:
    trainer.step = state["step"]
    trainer.train_seconds = state["train_seconds"]
    trainer.history = state["history"]
    trainer.step_log = [tuple(row) for row in state["step_log"]]
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scaler.load_state_dict(state["scaler"])
    trainer.generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])


# ----------------------------------------------------------------------------------------------
# The command line: python -m minigpt.train ... (or under torchrun for several processes)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    model_defaults, train_defaults = {f.name: f.default for f in fields(GPTConfig)}, TrainConfig()
    p = argparse.ArgumentParser(prog="python -m minigpt.train", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--data",
        choices=["shakespeare-char", "shakespeare-bpe"],
        default="shakespeare-char",
        help="Tiny Shakespeare as characters (65 tokens) or as GPT-2 BPE tokens (50,257)",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="checkpoint directory (written every --checkpoint-interval steps and at the end)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--history-json", type=Path, help="write the evaluation history here as JSON (process 0)")
    p.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    for name in ("block_size", "n_layer", "n_head", "n_embd", "dropout"):
        default = {"block_size": 64, "n_layer": 4, "n_head": 4, "n_embd": 128}.get(name, model_defaults[name])
        p.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    for f in fields(TrainConfig):
        if f.name in ("block_size",):
            continue
        default = getattr(train_defaults, f.name)
        kind = float if f.name in ("min_lr", "grad_clip") else type(default) if default is not None else int
        p.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=default)
    return p.parse_args(argv)


def _token_data(name: str, rank: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(train, val, vocab_size) for a named data set, encoded once into a cached uint16 file."""
    text = load_text(verbose=rank == 0)
    if name == "shakespeare-char":
        tokenizer = CharTokenizer.from_text(text)
        tokens, vocab_size = np.array(tokenizer.encode(text), dtype=np.uint16), tokenizer.vocab_size
    else:
        path = cache_dir() / "tinyshakespeare.gpt2.bin"
        if rank == 0 and not path.exists():
            write_tokens(gpt2_tokenizer().encode_ordinary(text), path)
        if dist.is_initialized():
            dist.barrier()  # the others wait until process 0 has written the file
        tokens, vocab_size = read_tokens(path), 50257
    train, val = train_val_split(tokens)
    return train, val, vocab_size


def main(argv: list[str] | None = None) -> None:
    from .checkpoint import resume  # checkpoint imports this module, so import it here

    args = _arguments(argv)
    distributed = "RANK" in os.environ  # started by torchrun
    if distributed:
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        local_rank = int(os.environ["LOCAL_RANK"])
        device = torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
        if device.type == "cuda":
            torch.cuda.set_device(device)
    else:
        device = choose_device(args.device)
    rank = dist.get_rank() if distributed else 0
    try:
        train_data, val_data, vocab_size = _token_data(args.data, rank)
        model_config = GPTConfig(
            block_size=args.block_size,
            vocab_size=vocab_size,
            n_layer=args.n_layer,
            n_head=args.n_head,
            n_embd=args.n_embd,
            dropout=args.dropout,
        )
        train_config = TrainConfig(
            **{f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.name != "block_size"}
        )
        torch.manual_seed(train_config.seed)  # the same initial weights in every process
        trainer = Trainer(
            GPT(model_config), train_data, val_data, train_config, device, checkpoint_dir=args.out
        )
        if args.resume:
            if args.out is None:
                raise SystemExit("--resume needs --out, the directory of the run to continue")
            resume(trainer)
        if rank == 0:
            print(
                f"{trainer.model.num_params():,} parameters on {device}, {trainer.world_size} process(es), "
                f"{trainer.tokens_per_step:,} tokens per step, precision {trainer.precision}, "
                f"from step {trainer.step}"
            )
        trainer.train(progress=rank == 0)
        if args.out:
            trainer.save_checkpoint()
        if rank == 0:
            last = trainer.history[-1]
            print(
                f"step {last['step']}: train loss {last['train_loss']:.4f}, val loss {last['val_loss']:.4f}"
            )
            if args.history_json:
                args.history_json.write_text(json.dumps(trainer.history, indent=1))
    finally:
        if distributed:
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
