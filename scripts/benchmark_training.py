"""Training throughput of the package's GPT, against a plain reference and through the Trainer (not a test).

    python scripts/benchmark_training.py                 # everything below
    python scripts/benchmark_training.py reference       # the package's GPT against the reference
    python scripts/benchmark_training.py chapter3        # one Trainer configuration

`reference`: the package's GPT and `ReferenceGPT`, a GPT written here in the style of nanoGPT's
model.py (exact GELU, no input checks beyond the context length), and the same reference with
GPT-2's tanh GELU (which the package keeps), each trained with the same step (forward with targets,
backward, clipping, AdamW) on the same batches of Tiny Shakespeare characters, in rounds that rotate
their order so that all see the same machine load. It prints each model's median and best tokens
per second and the median, over rounds, of its ratio to the reference within the round.

Then the training steps as each side runs them, on the same batches: the package's
`Trainer.train_step` (fused AdamW) against a loop written as nanoGPT's train.py runs on a CPU (the
reference model, AdamW not fused, since nanoGPT fuses on CUDA only).

The Trainer configurations time full optimizer steps (forward, backward, clipping, AdamW) through
`Trainer.train_step`, after a few warm-up steps, the median of several timed rounds.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F
from minigpt import GPT, CharTokenizer, GPTConfig, choose_device, get_batch, load_text
from minigpt.train import TrainConfig, Trainer
from torch import nn

CONFIGS = {
    # Chapter 3's CPU run: characters, 3 layers of 96, context 64, batches of 32.
    "chapter3": (
        GPTConfig(block_size=64, vocab_size=65, n_layer=3, n_head=4, n_embd=96),
        TrainConfig(batch_size=32),
    ),
    # Chapter 5's CPU run: GPT-2 tokens (50,257), 4 layers of 128, context 64, batches of 16.
    "chapter5": (
        GPTConfig(block_size=64, vocab_size=50257, n_layer=4, n_head=4, n_embd=128),
        TrainConfig(batch_size=16),
    ),
}


class ReferenceBlock(nn.Module):
    """Pre-LayerNorm attention and MLP, each added to the residual stream, as in nanoGPT."""

    def __init__(self, config: GPTConfig, gelu: str):
        super().__init__()
        C = config.n_embd
        self.gelu = gelu
        self.n_head, self.dropout = config.n_head, config.dropout
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.attn_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)
        self.resid_drop, self.mlp_drop = nn.Dropout(config.dropout), nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
        x = x + self.resid_drop(self.attn_proj(y.transpose(1, 2).contiguous().view(B, T, C)))
        return x + self.mlp_drop(self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate=self.gelu)))


class ReferenceGPT(nn.Module):
    """The comparison model: the package GPT's architecture and initialisation, written as nanoGPT
    writes it, with nanoGPT's exact GELU (gelu="none") or GPT-2's tanh approximation (gelu="tanh")."""

    def __init__(self, config: GPTConfig, gelu: str = "none"):
        super().__init__()
        self.block_size = config.block_size
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([ReferenceBlock(config, gelu) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * config.n_layer) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, std=std)
            elif name.endswith("bias") and "ln" not in name:
                nn.init.zeros_(p)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor):
        B, T = idx.shape
        assert T <= self.block_size, f"sequence of length {T} is longer than block_size {self.block_size}"
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(T, device=idx.device)))
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return logits, F.cross_entropy(logits.view(B * T, -1), targets.view(-1), ignore_index=-1)


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, batches) -> float:
    """Seconds for one optimizer step per batch: forward with targets, backward, clipping, AdamW."""
    start = time.perf_counter()
    for x, y in batches:
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    loss.item()  # wait for the device
    return time.perf_counter() - start


def reference_training(config: GPTConfig, data: torch.Tensor, batch_size: int, lr: float = 1e-3):
    """A function that runs `steps` training steps the way nanoGPT's train.py does on a CPU: AdamW
    with weight decay on matrices only (not fused: nanoGPT fuses on CUDA only), the learning rate set
    each step, the batch drawn, forward with targets, backward, clipping to 1.0, step."""
    torch.manual_seed(0)
    model = ReferenceGPT(config).train()
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99))
    generator = torch.Generator().manual_seed(TrainConfig().seed)  # the Trainer's batches

    def run(steps: int) -> None:
        for _ in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = get_batch(data, config.block_size, batch_size, generator)
            _, loss = model(x, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        loss.item()

    return run


def compare_training_steps(rounds: int = 21, steps: int = 10) -> None:
    """Training as each does it: the package's Trainer.train_step against nanoGPT's loop."""
    config = GPTConfig(block_size=64, vocab_size=65, n_layer=3, n_head=4, n_embd=96)
    tokenizer = CharTokenizer.from_text(text := load_text(verbose=False))
    data = torch.tensor(tokenizer.encode(text))
    torch.manual_seed(0)
    trainer = Trainer(
        GPT(config), data, data[:10_000], TrainConfig(batch_size=32, warmup_steps=0), device="cpu"
    )
    runs = {
        "minigpt Trainer": (lambda n: [trainer.train_step() for _ in range(n)], []),
        "nanoGPT-style loop": (reference_training(config, data, 32), []),
    }
    for run, _ in runs.values():
        run(3)  # warm-up
    for r in range(rounds):
        for name in list(runs)[:: 1 if r % 2 == 0 else -1]:
            run, rates = runs[name]
            start = time.perf_counter()
            run(steps)
            rates.append(32 * config.block_size * steps / (time.perf_counter() - start))
    report(runs, "nanoGPT-style loop", f"training steps on the CPU, {rounds} rounds of {steps} steps")


def report(runs: dict, reference: str, title: str) -> None:
    """Median and best tokens/s of each, and the median over rounds of its ratio to `reference`.

    A busy machine slows whole rounds: the ratio of two runs within a round, back to back, suffers
    less from it than either run's own rate.
    """
    print(title)
    print(f"  {'':22s} {'tokens/s: median':>16s} {'best':>8s}   median ratio to the {reference}")
    for name, (_, rates) in runs.items():
        ratio = statistics.median(a / b for a, b in zip(rates, runs[reference][1]))
        print(f"  {name:22s} {statistics.median(rates):16,.0f} {max(rates):8,.0f}   {ratio:.3f}")


def compare_with_reference(rounds: int = 21, steps: int = 10) -> None:
    config = GPTConfig(block_size=64, vocab_size=65, n_layer=3, n_head=4, n_embd=96)
    batch_size, device = 32, choose_device()
    tokenizer = CharTokenizer.from_text(text := load_text(verbose=False))
    data = torch.tensor(tokenizer.encode(text))
    g = torch.Generator().manual_seed(0)
    batches = [get_batch(data, config.block_size, batch_size, g, device) for _ in range(steps)]
    models = {
        "minigpt.GPT": GPT,
        "reference": ReferenceGPT,  # nanoGPT's exact GELU
        "reference, tanh GELU": lambda config: ReferenceGPT(config, gelu="tanh"),  # what the GELU costs
    }
    runs = {}
    for name, build in models.items():
        torch.manual_seed(0)
        model = build(config).to(device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
        runs[name] = (
            lambda n, model=model, optimizer=optimizer: train_steps(model, optimizer, batches[:n]),
            [],
        )
    for run, _ in runs.values():
        run(3)  # warm-up: allocator, kernels, optimizer state
    for r in range(rounds):  # rotate the order, so that no model always runs in the same slot
        names = list(runs)
        for name in names[r % len(names) :] + names[: r % len(names)]:
            run, rates = runs[name]
            rates.append(batch_size * config.block_size * steps / run(steps))
    report(
        runs, "reference", f"the models alone, one training step for all, {rounds} rounds of {steps} steps"
    )


def tokens_per_second(
    model_config: GPTConfig, train_config: TrainConfig, steps: int = 10, rounds: int = 5
) -> float:
    torch.manual_seed(0)
    device = choose_device()
    data = torch.randint(model_config.vocab_size, (200_000,))
    trainer = Trainer(GPT(model_config), data, data[:10_000], train_config, device=device)
    for _ in range(3):  # warm-up: allocator, kernels, optimizer state
        trainer.train_step()
    timings = []
    for _ in range(rounds):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step()  # returns Python floats, so each step ends synchronised
        timings.append(time.perf_counter() - start)
    return trainer.tokens_per_step * steps / statistics.median(timings)


def benchmark_names(argv: list[str] | None) -> list[str]:
    """The benchmarks the command line names, all of them if none, checked before any runs."""
    known = ["reference", *CONFIGS]
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=f"benchmarks: {', '.join(known)}"
    )
    # No argparse choices: with nargs="*" they refuse the empty list (Python < 3.12)
    parser.add_argument("benchmarks", nargs="*", metavar="BENCHMARK", help="which to run (default: all)")
    names = parser.parse_args(argv).benchmarks
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}: choose from {', '.join(known)}")
    return names or known


def main(argv: list[str] | None = None) -> None:
    names = benchmark_names(argv)
    print(f"device: {choose_device()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name in names:
        if name == "reference":
            compare_with_reference()
            compare_training_steps()
            continue
        model_config, train_config = CONFIGS[name]
        rate = tokens_per_second(model_config, train_config)
        tokens = train_config.batch_size * model_config.block_size
        print(f"{name}: {rate:,.0f} tokens/s ({tokens:,} tokens per step)")


if __name__ == "__main__":
    main()
