"""DPO, Direct Preference Optimization (Chapter 9): tune the language model itself on preference pairs.

DPO needs no reward model and no sampling while it trains. Its implicit reward of a reply is beta
times how much more likely the policy (the model being tuned) finds it than the reference (a frozen
copy of the model it started from) does, and its loss is the Bradley-Terry loss of those rewards:

    loss = -log sigmoid(beta * [(log pi(chosen) - log ref(chosen)) - (log pi(rejected) - log ref(rejected))])

The log-probabilities are those of the responses' tokens only, end-of-text included
(`minigpt.preference.pair_logprobs`). The reference runs on every batch, under no_grad; its weights
never change. How far the policy drifts from the reference is measured by the exact KL of their
next-token distributions over held-out replies (`evaluate_dpo`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .preference import PairBatch, pair_accuracy, pair_logprobs, row_logprobs, sequence_logprobs
from .train import LossFunction, TrainConfig


class DPOResult(NamedTuple):
    """DPO's loss on a batch of pairs, and the implicit rewards it compares."""

    loss: torch.Tensor  # scalar: the mean over pairs of -log sigmoid(margin)
    chosen_rewards: torch.Tensor  # (B,) beta * (log pi(chosen) - log pi_ref(chosen))
    rejected_rewards: torch.Tensor  # (B,) the same for the rejected reply

    @property
    def margins(self) -> torch.Tensor:
        """(B,) how far each pair's chosen reward is above its rejected one."""
        return self.chosen_rewards - self.rejected_rewards


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float,
) -> DPOResult:
    """DPO's loss from the responses' log-probabilities (B,) under the policy and the reference.

    DPO's implicit reward of a reply is beta times how much more likely the policy finds it than the
    reference does; the loss is the Bradley-Terry loss of those rewards. A small beta lets the policy
    move far from the reference for the same reward; a large one keeps it close.
    """
    if not beta > 0:
        raise ValueError(f"beta must be positive, got {beta}")
    shapes = {
        tuple(t.shape)
        for t in (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    }
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise ValueError(
            f"the four log-probabilities must each be one number per pair (B,), got shapes {shapes}"
        )
    chosen_rewards = beta * (policy_chosen_logps - ref_chosen_logps)  # (B,)
    rejected_rewards = beta * (policy_rejected_logps - ref_rejected_logps)  # (B,)
    loss = -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
    return DPOResult(loss, chosen_rewards, rejected_rewards)


def dpo_loss_fn(reference: nn.Module, beta: float, nll_weight: float = 0.0) -> LossFunction:
    """DPO's loss as a Trainer loss function over `PairBatch`es, against a frozen `reference`.

    The reference runs on every batch in eval mode and under no_grad, so it never receives gradients,
    and the Trainer's optimizer holds only the policy's parameters, so it is never updated. It must
    be a copy of the policy (`copy.deepcopy`), not the policy itself, and on the training device. It
    costs one forward pass per batch, without backward.

    With `nll_weight` > 0, the loss adds that weight times the chosen replies' negative log-likelihood
    per token (`chosen_nll`), as in Iterative RPO (Pang et al., 2024, "Iterative Reasoning Preference
    Optimization"): DPO alone only widens the gap between the two replies, and can lower both.
    """
    if not beta > 0:
        raise ValueError(f"beta must be positive, got {beta}")
    if nll_weight < 0:
        raise ValueError(f"nll_weight must be 0 or more, got {nll_weight}")

    def loss_fn(model: nn.Module, batch: PairBatch) -> torch.Tensor:
        check_reference(model, reference, batch[0].device)
        policy = pair_logprobs(model, batch)  # (B, 2)
        reference.eval()
        with torch.no_grad():
            ref = pair_logprobs(reference, batch)  # (B, 2)
        loss = dpo_loss(policy[:, 0], policy[:, 1], ref[:, 0], ref[:, 1], beta).loss
        if nll_weight:
            loss = loss + nll_weight * chosen_nll(policy[:, 0], batch[2][:, 0])  # batch[2]: the masks
        return loss

    return loss_fn


def chosen_nll_loss_fn() -> LossFunction:
    """The NLL term of `dpo_loss_fn` alone, over the same `PairBatch`es: plain fine-tuning on the chosen
    replies (their negative log-likelihood per token, the mean over pairs), with no reference and no
    rejected reply. Trained with the same data, steps and seed as DPO plus NLL, it shows what the DPO
    term adds; the rejected replies are never read."""

    def loss_fn(model: nn.Module, batch: PairBatch) -> torch.Tensor:
        x, y, mask = batch  # each (B, 2, T); column 0 holds the chosen replies
        chosen = sequence_logprobs(model, x[:, 0], y[:, 0], mask[:, 0])  # (B,)
        return chosen_nll(chosen, mask[:, 0])

    return loss_fn


def chosen_nll(chosen_logps: torch.Tensor, chosen_mask: torch.Tensor) -> torch.Tensor:
    """The mean over pairs of the chosen reply's negative log-likelihood per token: (B,), (B, T) -> scalar."""
    return -(chosen_logps / chosen_mask.sum(dim=1).clamp(min=1)).mean()


def check_reference(policy: nn.Module, reference: nn.Module, device: torch.device) -> None:
    """Raise ValueError if the reference shares weights with the policy or sits on another device."""
    if any(p is q for p, q in zip(policy.parameters(), reference.parameters())):
        raise ValueError(
            "the policy and the reference share weights, so the reference would move with training: "
            "make the reference a frozen copy, reference = copy.deepcopy(policy)"
        )
    where = next(reference.parameters()).device
    if where != device:
        raise ValueError(
            f"the reference is on {where} and the batch on {device}: move it, reference.to(device)"
        )


def next_token_kl(policy_logits: torch.Tensor, ref_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """KL(policy || reference) of the next-token distributions at every position, from both models'
    logits (B, T, V) on the same inputs: (B, T), 0 where `mask` is false.

    Summed over a response, this is how far the policy has drifted from the reference in that reply's
    contexts: exact at each position (the whole vocabulary, not a sampled token), and never negative.
    """
    policy_logp = F.log_softmax(policy_logits.float(), dim=-1)  # (B, T, V)
    ref_logp = F.log_softmax(ref_logits.float(), dim=-1)  # (B, T, V)
    kl = (policy_logp.exp() * (policy_logp - ref_logp)).sum(dim=-1)  # (B, T, V) -> (B, T)
    return torch.where(mask.bool(), kl, 0.0)


@dataclass(frozen=True)
class DPOStats:
    """How a policy compares with its reference on held-out pairs (see `evaluate_dpo`)."""

    pairs: int
    accuracy: float  # share of pairs whose implicit reward ranks the chosen reply higher (ties half)
    chosen_reward: float  # mean implicit reward of the chosen replies, beta * log-ratio
    rejected_reward: float  # the same for the rejected replies
    margin: float  # mean of chosen minus rejected reward
    kl_per_token: float  # mean KL(policy || reference) per response token of the chosen replies, in nats


@torch.no_grad()
def evaluate_dpo(
    policy: nn.Module, reference: nn.Module, batches: Sequence[PairBatch], beta: float
) -> DPOStats:
    """DPO's implicit-reward accuracy, rewards, margin and drift from the reference over pair batches.

    The drift is the mean, over the response tokens of the chosen replies (end-of-text included), of
    the exact KL between the two models' next-token distributions (`next_token_kl`): it needs no
    sampling, and comes from the same forward passes as the rewards.
    """
    device = next(policy.parameters()).device
    was_training = policy.training
    policy.eval()
    reference.eval()
    results, kl_sum, kl_tokens = [], 0.0, 0
    for batch in batches:
        x, y, mask = (
            t.to(device).flatten(0, 1) for t in batch
        )  # (B, 2, T) -> (2B, T): chosen, rejected, ...
        mask = mask.bool()
        # logits only at the replies' targets: (N, V) each, in row-major order of the mask
        policy_logits, ref_logits = policy(x, logits_at=mask)[0], reference(x, logits_at=mask)[0]
        policy_logps = row_logprobs(policy_logits, y, mask).view(-1, 2)  # (2B,) -> (B, 2)
        ref_logps = row_logprobs(ref_logits, y, mask).view(-1, 2)  # (2B,) -> (B, 2)
        rows = torch.arange(len(x), device=device).unsqueeze(1).expand_as(mask)[mask]  # (N,) each one's row
        results.append(
            dpo_loss(policy_logps[:, 0], policy_logps[:, 1], ref_logps[:, 0], ref_logps[:, 1], beta)
        )
        chosen = rows % 2 == 0  # (N,): the targets of the chosen rows (rows alternate chosen, rejected)
        kl = next_token_kl(policy_logits[chosen][None], ref_logits[chosen][None], torch.ones_like(chosen[chosen])[None])
        kl_sum += kl.sum().item()
        kl_tokens += int(chosen.sum())
    policy.train(was_training)
    chosen = torch.cat([r.chosen_rewards for r in results])
    rejected = torch.cat([r.rejected_rewards for r in results])
    return DPOStats(
        pairs=len(chosen),
        accuracy=pair_accuracy(chosen, rejected),
        chosen_reward=chosen.mean().item(),
        rejected_reward=rejected.mean().item(),
        margin=(chosen - rejected).mean().item(),
        kl_per_token=kl_sum / kl_tokens,
    )


@dataclass(frozen=True)
class OnPolicyRun:
    """Chapter 9's on-policy DPO: sample on task prompts, pair a right reply with a wrong one, train.

    `prompts` of Chapter 8's training tasks get `samples` replies each at `temperature` (and one greedy
    reply, the first candidate for rejection); DPO with `beta` and the chosen replies' NLL weighted by
    `nll_weight` then trains for `steps` steps of `batch_size` pairs at peak learning rate `lr`.
    """

    prompts: int
    samples: int
    temperature: float
    max_new_tokens: int
    beta: float
    nll_weight: float
    steps: int
    batch_size: int
    lr: float
    precision: str = "fp32"

    def train_config(self, seed: int = 1337) -> TrainConfig:
        """The Trainer's settings: 5 warmup steps, cosine decay, evaluation at the start and the end."""
        return TrainConfig(
            max_steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            warmup_steps=5,
            eval_interval=self.steps,
            eval_windows=32,
            precision=self.precision,
            seed=seed,
        )

    @classmethod
    def for_run(cls, run, device: torch.device | str) -> "OnPolicyRun":
        """The on-policy run for Chapter 8's `run` (a `minigpt.instruct.FineTuneRun`) on a device:
        the stand-in's sizes everywhere, bigger ones for GPT-2 on a CUDA GPU. GPT-2 on a CPU gets the
        stand-in's sizes at GPT-2's learning rate: the stand-in's would be tens of times too high for it."""
        sizes = ONPOLICY_CPU if run.base == "stand-in" or torch.device(device).type != "cuda" else ONPOLICY_GPU
        if run.base != "stand-in":
            sizes = replace(sizes, lr=ONPOLICY_GPU.lr)
        return replace(sizes, precision=run.precision)


ONPOLICY_CPU = OnPolicyRun(
    prompts=400, samples=8, temperature=1.0, max_new_tokens=24, beta=0.5, nll_weight=1.0, steps=200,
    batch_size=16, lr=5e-4,
)
ONPOLICY_GPU = replace(ONPOLICY_CPU, prompts=1300, samples=16, steps=300, lr=1e-5)
