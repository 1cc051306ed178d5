"""Chapter 9's seed spread: held-out exact match and stop rate of on-policy DPO, over several seeds.

    python scripts/seed_spread_ch9.py                  # seeds 0 (the chapter's) to 4, about 7 min on a 2-core CPU
    python scripts/seed_spread_ch9.py --seeds 0 1 2

Runs the chapter's on-policy recipe (`OnPolicyRun.for_run` of Chapter 8's stand-in run, on the CPU)
once per seed: sample replies from Chapter 8's tuned model on the run's prompts, pair a right reply with
a wrong one (the greedy reply first), train DPO with the chosen replies' NLL, and score greedy exact
match on the chapter's 300 held-out tasks; beside it, the same steps of plain fine-tuning on the chosen
replies alone, the NLL term without DPO's (the baseline DPO has to beat). The seed is both the sampling generator's and the Trainer's;
the model, the prompts and the held-out records stay the chapter's. Chapter 8's model is read from the
cache, or rebuilt there first. Prints each seed's figures and their spread (largest less smallest).
`ch9(seeds)` returns the same figures to another script.
"""

from __future__ import annotations

import argparse
import copy
import shlex
import statistics
import sys
import time

import torch

from minigpt import gpt2_tokenizer
from minigpt.dpo import OnPolicyRun, chosen_nll_loss_fn, dpo_loss_fn
from minigpt.instruct import instruction_tuned_model, make_run, respond, score_tasks
from minigpt.preference import PreferenceDataset, onpolicy_pairs, onpolicy_tasks, sample_responses
from minigpt.train import Trainer

HELD_OUT = 300  # as in the chapter


def ch9(seeds=(0, 1, 2, 3, 4), device: str = "cpu", verbose: bool = True, onpolicy: OnPolicyRun | None = None) -> dict:
    """Chapter 8's held-out exact match and stop rate, and per seed those of on-policy DPO, with the spread.
    `onpolicy` replaces the chapter's run (`OnPolicyRun.for_run`), to measure another recipe."""
    enc, run = gpt2_tokenizer(), make_run("stand-in", device)
    sft = instruction_tuned_model(run, device, verbose=verbose)
    onpolicy = onpolicy or OnPolicyRun.for_run(run, device)
    prompts, held_out = onpolicy_tasks(onpolicy.prompts, held_out=HELD_OUT)

    def scores(model):
        return score_tasks(held_out, respond(model.eval(), enc, held_out, max_new_tokens=onpolicy.max_new_tokens))

    base = scores(sft)
    greedy = respond(sft, enc, prompts, max_new_tokens=onpolicy.max_new_tokens)
    results = {"sft_exact": base.exact_match, "sft_stop": base.stop_rate, "run": onpolicy, "seeds": {}}
    for seed in seeds:
        start = time.perf_counter()
        samples = sample_responses(sft, enc, prompts, onpolicy.samples, temperature=onpolicy.temperature,
                                   generator=torch.Generator().manual_seed(seed), max_new_tokens=onpolicy.max_new_tokens)
        made = onpolicy_pairs(prompts, samples, greedy)
        data = PreferenceDataset(made.records, enc, sft.config.block_size, source="on-policy pairs")
        reference = copy.deepcopy(sft).eval()
        trainer = Trainer(copy.deepcopy(sft), data, data, onpolicy.train_config(seed), device=device,
                          loss_fn=dpo_loss_fn(reference, onpolicy.beta, nll_weight=onpolicy.nll_weight))
        trainer.train(progress=False)
        tuned = scores(trainer.model)
        # the baseline: the NLL term alone, on the same pairs, steps and seed (the chosen replies only)
        plain = Trainer(copy.deepcopy(sft), data, data, onpolicy.train_config(seed), device=device,
                        loss_fn=chosen_nll_loss_fn())
        plain.train(progress=False)
        plain_scores = scores(plain.model)
        row = {"pairs": len(made.records), "dpo_exact": tuned.exact_match, "dpo_stop": tuned.stop_rate,
               "sft_on_chosen_exact": plain_scores.exact_match}
        results["seeds"][seed] = row
        if verbose:
            print(f"seed {seed}: {row['pairs']} pairs, exact match {tuned.exact_match:.1%}, stop rate "
                  f"{tuned.stop_rate:.0%}; the NLL term alone {plain_scores.exact_match:.1%} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    exact = [r["dpo_exact"] for r in results["seeds"].values()]
    results["spread"] = max(exact) - min(exact)
    results["least_gain"] = min(exact) - base.exact_match
    return results


def report(results: dict) -> None:
    print(results["run"])
    print(f"Chapter 8's model: exact match {results['sft_exact']:.1%}, stop rate {results['sft_stop']:.0%} "
          f"({HELD_OUT} held-out records)")
    for seed, row in results["seeds"].items():
        print(f"  seed {seed}: DPO exact match {row['dpo_exact']:.1%}, stop rate {row['dpo_stop']:.0%}, "
              f"{row['pairs']} pairs; the NLL term alone {row['sft_on_chosen_exact']:.1%}")
    dpo = [row["dpo_exact"] for row in results["seeds"].values()]
    gap = [row["dpo_exact"] - row["sft_on_chosen_exact"] for row in results["seeds"].values()]
    mean, sd = statistics.mean(dpo), statistics.stdev(dpo)
    print(f"DPO: mean {mean:.1%}, standard deviation {sd * 100:.1f} points, standard error {sd / len(dpo) ** 0.5 * 100:.1f}")
    print(f"DPO plus NLL less the NLL term alone, per seed: " + ", ".join(f"{g * 100:+.1f}" for g in gap)
          + f" points (mean {statistics.mean(gap) * 100:+.1f})")
    print(f"spread of DPO's exact match over the seeds: {results['spread'] * 100:.1f} points; "
          f"gain over Chapter 8 at the worst seed: {results['least_gain'] * 100:.1f} points")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="sampling and Trainer seeds (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    if len(args.seeds) < 3:
        parser.error("a spread needs at least 3 seeds")
    print("command: python " + shlex.join(["scripts/seed_spread_ch9.py", *(argv if argv is not None else sys.argv[1:])]), flush=True)
    report(ch9(args.seeds))


if __name__ == "__main__":
    main()
