"""A reward model (Chapter 9): a GPT that scores a reply to a prompt with one number.

The score is read where the model has seen the whole reply: the final hidden state (after the last
LayerNorm) at the reply's last token, through a linear head. End-of-text is not part of what it
reads: in a pair batch (minigpt.preference) the last input of each sequence is the response's last
token, whose target is end-of-text, so the reward sits at the position where the language model
would predict the end. A sampled reply is scored the same way, with or without its end-of-text.

It learns from pairs with the Bradley-Terry loss, -log sigmoid(r(chosen) - r(rejected)): the
probability that the chosen reply wins is the sigmoid of the difference of the two scores.

The reward model is not a chat model, so it is not saved as a model folder (`minigpt chat` would
load its backbone and chat with it): `save_reward_model` writes one safetensors file with the GPT's
shape in its metadata, and `load_reward_model` reads it back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_model, save_model
from torch import nn

from .instruct import Response, format_prompt
from .model import GPT, GPTConfig
from .preference import PairBatch

CONFIG_KEY = "gpt_config"  # the safetensors metadata entry that holds the backbone's GPTConfig


class RewardModel(nn.Module):
    """A GPT backbone and a linear head from its final hidden state to one number."""

    def __init__(self, backbone: GPT):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.config.n_embd, 1)
        nn.init.normal_(self.head.weight, mean=0.0, std=0.02)  # GPT-2's initialisation, as the backbone's
        nn.init.zeros_(self.head.bias)

    @property
    def config(self) -> GPTConfig:
        """The backbone's shape (the Trainer reads block_size from it)."""
        return self.backbone.config

    def forward(self, idx: torch.Tensor, last_index: torch.Tensor) -> torch.Tensor:
        """The reward of each sequence of `idx` (B, T), read at position `last_index` (B,): (B,), in float32
        whatever the precision the model runs in (the loss compares small differences of rewards).

        The backbone's LM head is never used: only its final hidden states are read.
        """
        hidden = self.backbone.hidden_states(idx)  # (B, T, C)
        last = hidden[torch.arange(len(idx), device=idx.device), last_index]  # (B, T, C) -> (B, C)
        return self.head(last).squeeze(-1).float()  # (B, 1) -> (B,)


def last_response_index(mask: torch.Tensor) -> torch.Tensor:
    """The position of each row's last scored target (B, T) -> (B,): the input there is the response's
    last token, whose target is end-of-text."""
    positions = torch.arange(mask.shape[-1], device=mask.device)  # (T,)
    last = torch.where(mask.bool(), positions, -1).amax(dim=-1)  # (B, T) -> (B,)
    if (last < 0).any():
        raise ValueError("a row has no response target in its mask: there is no reply to score")
    return last


def bradley_terry_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> torch.Tensor:
    """The mean over pairs of -log sigmoid(r_chosen - r_rejected): small when chosen replies score higher."""
    return -F.logsigmoid(chosen_rewards - rejected_rewards).mean()


def pair_rewards(model: RewardModel, batch: PairBatch) -> torch.Tensor:
    """The reward of each pair's two replies: (B, 2), chosen in column 0, rejected in 1."""
    x, _, mask = batch
    flat_mask = mask.flatten(0, 1)  # (B, 2, T) -> (2B, T)
    return model(x.flatten(0, 1), last_response_index(flat_mask)).view(len(x), 2)  # (2B,) -> (B, 2)


def reward_model_loss(model: RewardModel, batch: PairBatch) -> torch.Tensor:
    """The Bradley-Terry loss of a batch of pairs, as a Trainer loss function."""
    rewards = pair_rewards(model, batch)  # (B, 2)
    return bradley_terry_loss(rewards[:, 0], rewards[:, 1])


@torch.no_grad()
def rewards_of_pairs(model: RewardModel, batches: Sequence[PairBatch]) -> tuple[torch.Tensor, torch.Tensor]:
    """The rewards of every pair's chosen and rejected replies over batches: two tensors (N,)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    rewards = torch.cat([pair_rewards(model, PairBatch(*(t.to(device) for t in b))).cpu() for b in batches])
    model.train(was_training)
    return rewards[:, 0], rewards[:, 1]


@torch.no_grad()
def score_responses(
    model: RewardModel,
    tokenizer,
    records: Sequence[dict],
    samples: Sequence[Sequence[Response]],
    batch_size: int = 64,
) -> list[list[float]]:
    """The reward of every sample, read as in a pair (prompt + reply): lists shaped like `samples`."""
    if len(records) != len(samples):
        raise ValueError(
            f"need one list of samples per record, got {len(samples)} for {len(records)} records"
        )
    sequences = []
    for i, (record, responses) in enumerate(zip(records, samples)):
        prompt = tokenizer.encode_ordinary(format_prompt(record))
        for j, response in enumerate(responses):
            sequences.append(prompt + tokenizer.encode_ordinary(response.text))
            if len(sequences[-1]) > model.config.block_size:
                raise ValueError(
                    f"record {i}, sample {j}: prompt and reply take {len(sequences[-1])} tokens, more than "
                    f"the reward model's context of {model.config.block_size}; sample fewer new tokens"
                )
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    scores: list[float] = []
    for start in range(0, len(sequences), batch_size):
        chunk = sequences[start : start + batch_size]
        idx = torch.zeros(len(chunk), max(map(len, chunk)), dtype=torch.long)  # (B, T), right-padded
        for b, ids in enumerate(chunk):
            idx[b, : len(ids)] = torch.tensor(ids)
        last = torch.tensor([len(ids) - 1 for ids in chunk])  # (B,)
        scores += model(idx.to(device), last.to(device)).tolist()
    model.train(was_training)
    flat = iter(scores)
    return [[next(flat) for _ in responses] for responses in samples]


def save_reward_model(model: RewardModel, path: str | Path) -> Path:
    """Write the reward model's weights, and its backbone's GPTConfig as metadata, to one safetensors file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, str(path), metadata={CONFIG_KEY: json.dumps(asdict(model.config))})
    return path


def load_reward_model(path: str | Path, device: torch.device | str = "cpu") -> RewardModel:
    """A reward model written by `save_reward_model`, in eval mode."""
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
    if CONFIG_KEY not in metadata:
        raise ValueError(
            f"{path} has no {CONFIG_KEY!r} in its metadata: it was not written by save_reward_model"
        )
    model = RewardModel(GPT(GPTConfig(**json.loads(metadata[CONFIG_KEY]))))
    load_model(model, str(path))
    return model.to(device).eval()
