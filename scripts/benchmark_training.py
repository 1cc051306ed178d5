"""Training throughput of the package's GPT and Trainer, for comparing changes (not a test).

    python scripts/benchmark_training.py            # every configuration below
    python scripts/benchmark_training.py chapter3   # one of them

Prints tokens per second of full optimizer steps (forward, backward, clipping, AdamW) on the current
device, after a few warm-up steps, the median of several timed rounds.
"""

from __future__ import annotations

import statistics
import sys
import time

import torch
from minigpt import GPT, GPTConfig, choose_device
from minigpt.train import TrainConfig, Trainer

CONFIGS = {
    # Chapter 3's CPU run: characters, 3 layers of 96, context 64, batches of 32.
    "chapter3": (
        GPTConfig(block_size=64, vocab_size=65, n_layer=3, n_head=4, n_embd=96),
        TrainConfig(batch_size=32),
    ),
    # Chapter 4's CPU run: GPT-2 tokens (50,257), 4 layers of 128, context 64, batches of 16.
    "chapter4": (
        GPTConfig(block_size=64, vocab_size=50257, n_layer=4, n_head=4, n_embd=128),
        TrainConfig(batch_size=16),
    ),
}


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


def main(names: list[str]) -> None:
    print(f"device: {choose_device()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name in names or CONFIGS:
        model_config, train_config = CONFIGS[name]
        rate = tokens_per_second(model_config, train_config)
        tokens = train_config.batch_size * model_config.block_size
        print(f"{name}: {rate:,.0f} tokens/s ({tokens:,} tokens per step)")


if __name__ == "__main__":
    main(sys.argv[1:])
