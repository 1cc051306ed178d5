"""Generation speed at GPT-2 124M's shape: the KV cache against none, and against `transformers` (not a test).

    python scripts/benchmark_generation.py                 # batch 1 and 8, 200 new tokens after 16
    python scripts/benchmark_generation.py --batch 1 --new-tokens 50
    python scripts/benchmark_generation.py --device cuda

Random weights (speed does not depend on their values), greedy decoding, no stop token, so every run
makes exactly the same number of tokens. The same weights go into `transformers`' GPT-2 (through the
Hugging Face layout that `minigpt.pretrained.save_pretrained` writes), which generates with its own
cache; its tokens must equal ours. Prints new tokens per second (batch x new tokens / seconds) of one
timed run per case, after a short warm-up run, and the ratios the course's targets are about.

Two uncached baselines: `generate(use_cache=False)`, which reruns the context but computes logits for
the last position only, and the plain loop of the earlier chapters (and of most tutorials), which
computes logits for every position and keeps the last (batch 1 only with --plain-loop-batches, its
default: at batch 8 it takes minutes).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from minigpt import GPT, GPTConfig, generate
from minigpt.pretrained import save_pretrained


def timed(fn, device: torch.device) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    tokens = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # the GPU's work queued by the call, not only its launch
    return time.perf_counter() - start, tokens


@torch.no_grad()
def max_logit_gap(model: GPT, tokens: torch.Tensor, prompt_length: int) -> float:
    """The largest |cached - uncached| logit over every step of decoding `tokens` (B, T) after its prompt."""
    full, _ = model(tokens[:, :-1])  # (B, T - 1, V): every position's logits, no cache
    cache = model.make_kv_cache(tokens.shape[0])
    steps = [model(tokens[:, :prompt_length], cache=cache, last_only=True)[0]]  # prefill
    steps += [model(tokens[:, t : t + 1], cache=cache)[0] for t in range(prompt_length, tokens.shape[1] - 1)]
    cached = torch.cat(steps, dim=1)  # (B, T - prompt_length, V): the logits each step sampled from
    return (cached - full[:, prompt_length - 1 :]).abs().max().item()


@torch.no_grad()
def plain_loop(model: GPT, idx: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
    """Greedy decoding without a cache, the simplest way: rerun the context, logits at every position."""
    for _ in range(max_new_tokens):
        logits, _ = model(idx[:, -model.config.block_size :])  # (B, T, V)
        idx = torch.cat([idx, logits[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    return idx


def transformers_model(model: GPT):
    """`transformers`' GPT-2 holding `model`'s weights, generating greedily with its cache on."""
    from transformers import GPT2LMHeadModel

    with tempfile.TemporaryDirectory() as folder:
        save_pretrained(model, folder)
        reference = GPT2LMHeadModel.from_pretrained(folder).eval()
    reference.generation_config.eos_token_id = None  # never stop early: every run makes all its tokens
    reference.generation_config.pad_token_id = 0
    return reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--prompt-tokens", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=200)
    parser.add_argument("--plain-loop-batches", type=int, nargs="*", default=[1])
    parser.add_argument("--device", default="cpu", help="cpu (the default), cuda or mps")
    args = parser.parse_args()
    device = torch.device(args.device)

    torch.manual_seed(0)
    model = GPT(GPTConfig()).eval()  # GPT-2 small's shape: 12 layers, 12 heads, 768 wide, 50,257 tokens
    reference = transformers_model(model).to(device)
    model.to(device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type.upper()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {where}; GPT-2 124M, random weights"
    )
    print(f"{args.new_tokens} new tokens after a {args.prompt_tokens}-token prompt, greedy\n")
    print(f"{'batch':>5}  {'case':<28} {'seconds':>8} {'tokens/s':>9}")
    for batch in args.batch:
        prompt = torch.randint(
            50257, (batch, args.prompt_tokens), generator=torch.Generator().manual_seed(batch)
        ).to(device)
        n = args.new_tokens
        cases = {
            "minigpt, KV cache": lambda: generate(model, prompt, n, temperature=0).tokens,
            "minigpt, no cache": lambda: generate(model, prompt, n, temperature=0, use_cache=False).tokens,
            "transformers generate, cache": lambda: reference.generate(
                prompt,
                attention_mask=torch.ones_like(prompt),
                max_new_tokens=n,
                do_sample=False,
                use_cache=True,
            ),
        }
        if batch in args.plain_loop_batches:
            cases["plain loop, all logits"] = lambda: plain_loop(model, prompt, n)
        with torch.no_grad():  # warm-up: allocator, kernels, thread pool
            for use_cache in (True, False):
                generate(model, prompt, 4, temperature=0, use_cache=use_cache)
            reference.generate(
                prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=4, do_sample=False
            )
        rates, outputs = {}, {}
        for name, run in cases.items():
            seconds, outputs[name] = timed(run, device)
            rates[name] = batch * n / seconds
            print(f"{batch:>5}  {name:<28} {seconds:>8.2f} {rates[name]:>9.1f}", flush=True)
        ours = outputs["minigpt, KV cache"]
        same = all(torch.equal(ours, tokens) for tokens in outputs.values())
        cached = rates["minigpt, KV cache"]
        ratios = {name: cached / rate for name, rate in rates.items() if name != "minigpt, KV cache"}
        print(f"{'':6}cached against " + ", ".join(f"{name}: {r:.2f}x" for name, r in ratios.items()))
        gap = max_logit_gap(model, ours, args.prompt_tokens)
        print(f"{'':6}same tokens in every case: {same}; largest |cached - uncached| logit: {gap:.1e}\n")


if __name__ == "__main__":
    main()
