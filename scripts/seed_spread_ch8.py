"""Chapter 8's seed spread: exact match and stop rate of its two fine-tuning runs, over several seeds.

    python scripts/seed_spread_ch8.py                      # seeds 1337 (the chapter's), 1 and 2
    python scripts/seed_spread_ch8.py --seeds 1337 1 2 3

Runs the chapter's CPU run (the stand-in, 200 steps of 8 records, `make_run("stand-in", "cpu")`) with
and without response masking once per seed, on the chapter's records and split, and scores both on the
chapter's 300 scored tasks (`scored_tasks`). The seed is the Trainer's, which draws the training
batches; the base weights and the data stay the chapter's. Prints each seed's exact match and stop
rate, the masked run's gain over the oracle constant (the commonest answer of each task among the
scored records) with its paired 95% interval, the spread of each figure (largest less smallest), and
how far each of the chapter's asserts on exact match and stop rate is from failing at the worst
seed (its asserts on single tasks are not measured here). On 2 CPU cores a seed takes
about two minutes. `ch8(seeds)` returns the same figures to another script.
"""

from __future__ import annotations

import argparse
import copy
import shlex
import sys
import time

from minigpt import gpt2_tokenizer
from minigpt.instruct import (
    InstructionDataset,
    constant_answers,
    exact_match,
    load_instruction_data,
    make_run,
    make_tasks,
    respond,
    score_tasks,
    scored_tasks,
    split_records,
    training_records,
)
from minigpt.intervals import paired_interval
from minigpt.pretrained import from_pretrained, standin_dir
from minigpt.train import Trainer

MAX_NEW_TOKENS = 24  # as in the chapter
# The chapter's asserts: (what, the figure, the least value it asks for)
ASSERTS = (
    ("exact match, masked, gain over the base model", "masked_exact_gain", 0.10),
    ("stop rate, masked, gain over the base model", "masked_stop_gain", 0.50),
    ("stop rate, unmasked, gain over the base model", "unmasked_stop_gain", 0.50),
    ("exact match, masked, gain over the oracle constant", "masked_oracle_gain", 0.04),
)


def ch8(seeds=(1337, 1, 2), device: str = "cpu", verbose: bool = True) -> dict:
    """Per seed, the scored tasks' exact match and stop rate of the masked and the unmasked run, and the
    masked run's gain over the oracle constant with its paired interval; the base model's and the oracle's
    scores; and per figure the spread over the seeds."""
    enc, run = gpt2_tokenizer(), make_run("stand-in", device)
    base_model = from_pretrained(standin_dir(), device=device).eval()
    task_train, task_held_out = split_records(make_tasks(1400, seed=0), held_out=100, seed=0)
    shipped_train, shipped_held_out = split_records(load_instruction_data(verbose=False), held_out=100, seed=0)
    train_records = training_records(task_train, shipped_train, run, verbose=False)
    val_data = InstructionDataset(task_held_out + shipped_held_out, enc, run.max_length)
    scored = scored_tasks()
    oracle = constant_answers(scored)
    oracle_right = [record["output"] == oracle[record["instruction"]] for record in scored]

    def scores(model):
        return score_tasks(scored, respond(model.eval(), enc, scored, max_new_tokens=MAX_NEW_TOKENS))

    base = scores(base_model)
    results = {
        "base_exact": base.exact_match,
        "base_stop": base.stop_rate,
        "oracle_exact": sum(oracle_right) / len(scored),
        "seeds": {},
    }
    for seed in seeds:
        start, row = time.perf_counter(), {}
        for mask_prompt, name in ((True, "masked"), (False, "unmasked")):
            data = InstructionDataset(train_records, enc, run.max_length, mask_prompt=mask_prompt)
            trainer = Trainer(copy.deepcopy(base_model), data, val_data, run.train_config(seed), device=device)
            trainer.train(progress=False)
            tuned = scores(trainer.model)
            row[f"{name}_exact"], row[f"{name}_stop"] = tuned.exact_match, tuned.stop_rate
            if mask_prompt:
                right = [exact_match(r.text, record["output"]) for r, record in zip(tuned.responses, scored)]
                row["masked_oracle_gain"], row["masked_oracle_low"], _ = paired_interval(right, oracle_right)
        row["masked_exact_gain"] = row["masked_exact"] - base.exact_match
        row["masked_stop_gain"] = row["masked_stop"] - base.stop_rate
        row["unmasked_stop_gain"] = row["unmasked_stop"] - base.stop_rate
        results["seeds"][seed] = row
        if verbose:
            print(f"seed {seed}: " + ", ".join(f"{k} {v:+.1%}" for k, v in row.items())
                  + f" ({time.perf_counter() - start:.0f} s)", flush=True)
    columns = next(iter(results["seeds"].values())).keys()
    results["spread"] = {
        key: max(r[key] for r in results["seeds"].values()) - min(r[key] for r in results["seeds"].values())
        for key in columns
    }
    return results


COLUMNS = (
    ("masked exact", "masked_exact"),
    ("masked stop", "masked_stop"),
    ("unmasked exact", "unmasked_exact"),
    ("unmasked stop", "unmasked_stop"),
    ("masked - oracle", "masked_oracle_gain"),
    ("its low end", "masked_oracle_low"),
)


def report(results: dict) -> None:
    rows = results["seeds"]
    print(f"{len(scored_tasks())} scored tasks; base model: exact match {results['base_exact']:.1%}, "
          f"stop rate {results['base_stop']:.1%}; oracle constant: exact match {results['oracle_exact']:.1%}")
    print(f"{'seed':>6}  " + "  ".join(f"{title:>15}" for title, _ in COLUMNS))
    for seed, row in rows.items():
        print(f"{seed:>6}  " + "  ".join(f"{row[key]:>15.1%}" for _, key in COLUMNS))
    print(f"{'spread':>6}  " + "  ".join(f"{results['spread'][key] * 100:>14.1f}p" for _, key in COLUMNS))
    print("the chapter's asserts at the worst seed (the figure, the least asked for, its spread over the seeds):")
    for what, key, needed in ASSERTS:
        worst = min(row[key] for row in rows.values())
        print(f"  {what}: {worst:+.1%}, {needed:+.0%} asked, spread {results['spread'][key] * 100:.1f} points")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1337, 1, 2], help="the Trainer's seeds")
    args = parser.parse_args(argv)
    if len(args.seeds) < 3:
        parser.error("a spread needs at least 3 seeds")
    print("command: python " + shlex.join(["scripts/seed_spread_ch8.py", *sys.argv[1:]]), flush=True)
    report(ch8(args.seeds))


if __name__ == "__main__":
    main()
