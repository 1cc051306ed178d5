"""The spread between seeds of the trained comparisons that Chapters 2, 3 and 5 and Appendix A assert.

    python scripts/seed_spread.py ch2                     # Chapter 2's attention models (about 4 min)
    python scripts/seed_spread.py ch3                     # Chapter 3's ablation (about 8 min)
    python scripts/seed_spread.py ch5                     # Chapter 5's BPE GPT against its baselines (about 4 min)
    python scripts/seed_spread.py zh                      # Appendix A's three tokenizers (about 10 min)
    python scripts/seed_spread.py zh --lr 1e-2            # the same at another peak learning rate
    python scripts/seed_spread.py ch3 --seeds 1337 1 2 3  # other seeds
    python scripts/seed_spread.py ch3 --only "3 layers, no residual or LayerNorm"  # one row

A chapter has time for one or two seeds of each model; its asserts must hold by more than the spread
between seeds, which this script measures over more of them. It runs the chapter's own code: the
notebook's code cells are executed, in order, until what the experiment needs (the models and the
training recipe) is defined, which is before the chapter's own training runs; only the Colab set-up
cell is skipped. So the models, data and recipe are exactly the chapter's, with no copy to drift
from it.

Seeds are the chapter's first (1337 in every chapter) and then others; each seed sets the initial
weights and the order of the batches, as in the chapter. A run that diverges shows as nan.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def chapter_namespace(notebook: str, needs: tuple[str, ...]) -> dict:
    """Execute a chapter's code cells until every name in `needs` is defined; return the namespace."""
    import matplotlib

    matplotlib.use("Agg")  # figures are drawn and discarded
    import matplotlib.pyplot as plt

    os.environ.setdefault("MINIGPT_PROGRESS", "plain")
    cells = json.loads((ROOT / "chapters" / notebook).read_text(encoding="utf-8"))["cells"]
    namespace: dict = {"__name__": "__chapter__"}
    cwd = os.getcwd()
    os.chdir(ROOT / "chapters")  # where the chapter runs, as in Jupyter
    try:
        for index, cell in enumerate(c for c in cells if c["cell_type"] == "code"):
            if all(name in namespace for name in needs):
                return namespace
            if index > 0:  # not the Colab set-up cell
                exec(compile("".join(cell["source"]), f"{notebook}, code cell {index}", "exec"), namespace)
            plt.close("all")
    finally:
        os.chdir(cwd)
    missing = [name for name in needs if name not in namespace]
    raise SystemExit(f"{notebook} never defines {', '.join(missing)}: has the chapter changed?")


def summarise(results: dict[str, list[float]], seeds: list[int]) -> None:
    """Print each row's losses by seed, its range, and the largest spread of any row."""
    width = max(len(name) for name in results) + 2
    print(f"{'':{width}}" + "".join(f"{seed:>8d}" for seed in seeds) + "      min      max   spread")
    for name, losses in results.items():
        finite = [loss for loss in losses if math.isfinite(loss)]
        low, high = (min(finite), max(finite)) if finite else (math.nan, math.nan)
        print(f"{name:{width}}" + "".join(f"{loss:8.3f}" for loss in losses) + f" {low:8.3f} {high:8.3f} "
              f"{high - low:8.3f}" + (f"   ({len(losses) - len(finite)} diverged)" if len(finite) < len(losses) else ""))


def ch2(seeds: list[int], only: list[str] | None = None) -> dict[str, list[float]]:
    """Chapter 2: the three one-layer attention models at 1,500 steps, four heads at 6,000, and with a residual."""
    ns = chapter_namespace("02_self_attention.ipynb", ("models", "train_and_evaluate", "AttentionLM"))
    four_heads = ns["models"]["four heads + projection"]
    runs = {name: dict(make_model=make, max_steps=1500) for name, make in ns["models"].items()}
    runs["four heads + projection, 6,000 steps"] = dict(make_model=four_heads, max_steps=6000)
    runs["four heads + projection + residual"] = dict(
        make_model=lambda: ns["AttentionLM"](ns["attention_layer"](n_head=4), residual=True), max_steps=1500
    )
    results = {}
    for name, run in runs.items():
        if only and name not in only:
            continue
        results[name] = [ns["train_and_evaluate"](seed=seed, **run)[1] for seed in seeds]
        print(f"{name}: " + ", ".join(f"{loss:.3f}" for loss in results[name]), flush=True)
    print(f"counted trigram {ns['baselines']['trigram']:.3f}, bigram {ns['baselines']['bigram']:.3f}")
    return results


def ch3(seeds: list[int], only: list[str] | None = None) -> dict[str, list[float]]:
    """Chapter 3: each row of the ablation (or only the rows named), 300 steps, one run per seed."""
    ns = chapter_namespace("03_gpt.ipynb", ("variants", "ablation_config"))
    torch, Trainer = ns["torch"], ns["Trainer"]
    results = {}
    for name, build in ns["variants"].items():
        if only and name not in only:
            continue
        results[name] = []
        for seed in seeds:
            torch.manual_seed(seed)
            config = dataclasses.replace(ns["ablation_config"], seed=seed)
            trainer = Trainer(build(), ns["train_data"], ns["val_data"], config, device=ns["device"])
            trainer.train(progress=False)
            results[name].append(trainer.history[-1]["val_loss"])
            # How a run diverges: the gradient norm before clipping, step by step (Trainer.step_log)
            norms = [norm for _, _, norm in trainer.step_log]
            broken = next((step for step, loss, norm in trainer.step_log if not math.isfinite(loss + norm)), None)
            print(f"  {name}, seed {seed}: val {results[name][-1]:.3f}; gradient norm before clipping: "
                  f"median {sorted(norms)[len(norms) // 2]:.2g}, largest finite "
                  f"{max((n for n in norms if math.isfinite(n)), default=math.nan):.2g}"
                  + (f"; first non-finite at step {broken}" if broken is not None else ""), flush=True)
        print(f"{name}: " + ", ".join(f"{loss:.3f}" for loss in results[name]), flush=True)
    counted = ns["minigpt"].counted_losses(ns["train_data"], ns["val_data"], ns["vocab_size"])
    print(f"counted unigram {counted['unigram']:.3f}, bigram {counted['bigram']:.3f}")
    return results


def ch5(seeds: list[int], only: list[str] | None = None) -> dict[str, list[float]]:
    """Chapter 5: the BPE GPT of "Training a BPE GPT", scored on the whole validation split."""
    ns = chapter_namespace("05_training.ipynb", ("bpe_config", "bpe_train", "unigram_loss", "bigram_loss"))
    torch, Trainer, evaluate_loss = ns["torch"], ns["Trainer"], ns["evaluate_loss"]
    losses = []
    for seed in seeds:
        torch.manual_seed(seed)
        config = dataclasses.replace(ns["bpe_train"], seed=seed)
        trainer = Trainer(ns["GPT"](ns["bpe_config"]), ns["train_tokens"], ns["val_tokens"], config, device=ns["device"])
        trainer.train(progress=False)
        losses.append(evaluate_loss(trainer.model, ns["val_tokens"], ns["bpe_config"].block_size, batch_size=8))
        print(f"  seed {seed}: val {losses[-1]:.3f}", flush=True)
    print(f"counted unigram {ns['unigram_loss']:.3f}, bigram {ns['bigram_loss']:.3f} (per token)")
    return {"BPE GPT, CPU configuration": losses}


def zh(seeds: list[int], only: list[str] | None = None, lr: float | None = None) -> dict[str, list[float]]:
    """Appendix A: the GPT on each tokenizer, scored in nats per character on the held-out poems (at the
    peak learning rate `lr` for all three, if given; else each tokenizer's own, as in the appendix)."""
    ns = chapter_namespace("appendix_a_chinese.ipynb", ("train_model", "nats_per_character", "baselines"))
    results = {}
    for name in ns["tokenizers"]:
        if only and name not in only:
            continue
        results[name] = []
        for seed in seeds:
            trainer = ns["train_model"](name, seed=seed, progress=False, lr=lr)
            results[name].append(ns["nats_per_character"](name, trainer.model)["total"])
            print(f"  {name}, seed {seed}: {results[name][-1]:.3f} nats per character "
                  f"({trainer.train_seconds:.0f} s of training)", flush=True)
    print(", ".join(f"{name} {loss:.3f}" for name, loss in ns["baselines"].items()) + " (nats per character)")
    return results


EXPERIMENTS = {
    "ch2": (ch2, [1337, 1338, 1, 2, 3]),
    "ch3": (ch3, [1337, 1, 2, 3, 4, 5, 6, 7]),
    "ch5": (ch5, [1337, 1, 2]),
    "zh": (zh, [1337, 1, 2, 3, 4]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", choices=EXPERIMENTS, help="which chapter's comparisons to repeat")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds to run (default: the experiment's own list)")
    parser.add_argument("--only", nargs="+", metavar="ROW", help="only these rows (models), by their name in the chapter")
    parser.add_argument("--lr", type=float, help="zh only: this peak learning rate for every tokenizer")
    args = parser.parse_args()
    if args.lr is not None and args.experiment != "zh":
        parser.error("--lr applies to the zh experiment only")
    run, default_seeds = EXPERIMENTS[args.experiment]
    seeds = args.seeds or default_seeds
    start = time.perf_counter()
    results = run(seeds, args.only, **({"lr": args.lr} if args.lr is not None else {}))
    print()
    summarise(results, seeds)
    perturbed = {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "OMP_NUM_THREADS") if k in os.environ}
    print(f"{len(seeds)} seeds in {time.perf_counter() - start:.0f} s; CPU settings: {perturbed or 'native'}")


if __name__ == "__main__":
    main()
