"""Preference tuning (Chapter 9): pairs of replies, one preferred over the other.

A preference record is an Alpaca record (`instruction`, `input`; `output` may be there too) with two
responses: `chosen`, the preferred one, and `rejected`. Two things learn from such pairs:

- a reward model (minigpt.reward), which scores a reply with one number, trained so that the chosen
  reply scores higher (the Bradley-Terry loss);
- DPO (minigpt.dpo), which tunes the language model itself: it raises the log-probability of the
  chosen reply relative to a frozen copy of the model (the reference) and lowers the rejected one's.

This module holds what both share: the records, pairs as batches, the log-probability of a reply,
pair accuracy; and on-policy pairs, replies sampled from the model itself on tasks whose answers
can be checked (`minigpt.instruct.make_tasks`), a correct one chosen and a wrong one rejected
(`onpolicy_pairs`), and best-of-n sampling.

Batches of pairs. A pair is two sequences, prompt + chosen and prompt + rejected, each followed by
end-of-text, as Chapter 8 encodes a record. `collate_pairs` lays them out as (B, 2, T): pairs first,
so that the Trainer, which cuts batches along their first dimension (between processes), never
separates a pair; `[:, 0]` holds the chosen replies and `[:, 1]` the rejected ones. The scored
targets (`mask`) are the response's tokens and its end-of-text: a reply's log-probability includes
where it stops. A pair longer than the context is an error, never cut: a cut reply would lose its
end, which is what the reward model reads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .data import PREFERENCE_DATA, data_path
from .generate import generate
from .instruct import (
    HELD_OUT,
    IGNORE_INDEX,
    SCORED_TASKS,
    SPLIT_SEED,
    TASK_RECORDS,
    Response,
    check_record_fields,
    exact_match,
    format_prompt,
    make_tasks,
    scored_tasks,
    split_records,
)
from .intervals import wilson_interval  # noqa: F401 (Chapter 9 imports it from here)

PREFERENCE_FIELDS = ("instruction", "input", "chosen", "rejected")
NON_EMPTY_FIELDS = ("instruction", "chosen", "rejected")


# ----------------------------------------------------------------------------------------------
# Records


def check_preference_record(record: object, label: str = "the record") -> dict:
    """Raise ValueError, naming `label` and the field, unless `record` is a preference record."""
    return check_record_fields(
        record,
        label,
        PREFERENCE_FIELDS,
        kind="a preference record",
        non_empty=NON_EMPTY_FIELDS,
        optional=["output"],
    )


def validate_preference_records(records: object, source: str = "the records") -> list[dict]:
    """Check that `records` is a list of preference records; return it, or raise naming the first fault.

    Each record needs string fields instruction, input, chosen and rejected (output is allowed), and a
    non-empty instruction, chosen and rejected. Nothing is dropped or repaired.
    """
    if not isinstance(records, list):
        raise ValueError(f"{source}: expected a JSON list of records, got {type(records).__name__}")
    for i, record in enumerate(records):
        check_preference_record(record, f"{source}: record {i}")
    return records


def load_preference_data(verbose: bool = True) -> list[dict]:
    """The 1,100 preference records shipped with the course (sha256 verified)."""
    path = data_path(PREFERENCE_DATA, verbose)
    with open(path, encoding="utf-8") as f:
        return validate_preference_records(json.load(f), source=path.name)


# ----------------------------------------------------------------------------------------------
# Pairs as tokens and batches


class EncodedPair(NamedTuple):
    """A preference record as token ids; each response ends with end-of-text."""

    prompt: list[int]
    chosen: list[int]
    rejected: list[int]
    label: str  # names the record in errors, e.g. "data.json: record 17"

    @property
    def input_length(self) -> int:
        """The inputs its longer sequence needs: prompt and response, without the final end-of-text."""
        return len(self.prompt) + max(len(self.chosen), len(self.rejected)) - 1


def encode_pair(record: dict, tokenizer, label: str = "the record") -> EncodedPair:
    """Tokenize prompt and both responses separately, so that the prompt is exactly what generation sees."""
    check_preference_record(record, label)
    eot = tokenizer.eot_token
    if eot is None:
        raise ValueError(
            f"{label}: the tokenizer has no end-of-text token to end each response with; use GPT-2's"
        )
    prompt = tokenizer.encode_ordinary(format_prompt(record))
    chosen = tokenizer.encode_ordinary(record["chosen"]) + [eot]
    rejected = tokenizer.encode_ordinary(record["rejected"]) + [eot]
    return EncodedPair(prompt, chosen, rejected, label)


def check_pair_fits(pair: EncodedPair, max_length: int) -> None:
    """Raise ValueError, naming the pair's record, if its longer sequence needs over `max_length` inputs."""
    if pair.input_length > max_length:
        raise ValueError(
            f"{pair.label}: its prompt and longer response take {pair.input_length} tokens, more than "
            f"max_length={max_length}; pairs are never cut (a cut response loses its end, which the reward "
            "model reads): shorten or drop the record, or use a model with a longer context"
        )


def encode_pairs(
    records: Sequence[dict], tokenizer, max_length: int | None = None, source: str = "the records"
) -> list[EncodedPair]:
    """Every record encoded, each checked to fit `max_length` inputs; errors name the record."""
    pairs = [encode_pair(record, tokenizer, f"{source}: record {i}") for i, record in enumerate(records)]
    if max_length is not None:
        for pair in pairs:
            check_pair_fits(pair, max_length)
    return pairs


class PairBatch(NamedTuple):
    """A batch of pairs; [:, 0] are the chosen sequences, [:, 1] the rejected ones."""

    x: torch.Tensor  # (B, 2, T) inputs, padded with pad_id
    y: torch.Tensor  # (B, 2, T) targets: x shifted by one, IGNORE_INDEX outside the response
    mask: torch.Tensor  # (B, 2, T) bool: the response's targets, its end-of-text included (y != IGNORE_INDEX)


def collate_pairs(pairs: Sequence[EncodedPair], pad_id: int, max_length: int | None = None) -> PairBatch:
    """Pad both sequences of every pair to the batch's longest, and make targets and response masks.

    Targets inside the prompt and after the end-of-text are IGNORE_INDEX, as in Chapter 8's collate
    with masking, so `y` alone is also an instruction-tuning batch. A pair longer than `max_length`
    inputs is an error naming its record.
    """
    if not pairs:
        raise ValueError("collate_pairs needs at least one pair")
    if max_length is not None:
        for pair in pairs:
            check_pair_fits(pair, max_length)
    width = max(pair.input_length for pair in pairs)
    x = torch.full((len(pairs), 2, width), pad_id, dtype=torch.long)  # (B, 2, T)
    y = torch.full((len(pairs), 2, width), IGNORE_INDEX, dtype=torch.long)  # (B, 2, T)
    for b, pair in enumerate(pairs):
        for k, response in enumerate((pair.chosen, pair.rejected)):
            ids = torch.tensor(pair.prompt + response)
            n = len(ids) - 1  # inputs: every token but the last end-of-text
            x[b, k, :n] = ids[:-1]
            # y[t] is the token after x[: t + 1]: the first response token is y[len(prompt) - 1].
            y[b, k, len(pair.prompt) - 1 : n] = ids[len(pair.prompt) :]
    return PairBatch(x, y, y != IGNORE_INDEX)


class PreferenceDataset:
    """Preference records as a batch source for the `Trainer`: batches are `PairBatch`es of pairs.

    `sample_batch` draws random pairs; `eval_batches` gives a fixed set of pairs spread evenly over
    the records. Every pair is encoded and checked to fit `max_length` inputs when the dataset is made.
    """

    def __init__(self, records: Sequence[dict], tokenizer, max_length: int, source: str = "the records"):
        if not records:
            raise ValueError("a PreferenceDataset needs at least one record")
        self.pairs = encode_pairs(records, tokenizer, max_length, source)
        self.pad_id, self.max_length = tokenizer.eot_token, max_length

    def __len__(self) -> int:
        return len(self.pairs)

    def sample_batch(self, batch_size: int, generator: torch.Generator) -> PairBatch:
        picks = torch.randint(len(self.pairs), (batch_size,), generator=generator).tolist()
        return collate_pairs([self.pairs[i] for i in picks], self.pad_id, self.max_length)

    def eval_batches(self, count: int, batch_size: int) -> list[PairBatch]:
        """Up to `count` pairs spread evenly over the records, in batches of `batch_size` pairs."""
        picks = torch.linspace(0, len(self.pairs) - 1, min(count, len(self.pairs))).long().tolist()
        picked = [self.pairs[i] for i in picks]
        return [
            collate_pairs(picked[i : i + batch_size], self.pad_id, self.max_length)
            for i in range(0, len(picked), batch_size)
        ]


# ----------------------------------------------------------------------------------------------
# How likely a model finds each reply


def sequence_logprobs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each sequence's summed log-probability of its targets where `mask` is true: (B, T) -> (B,).

    `x` holds the input ids and `y` the targets (x shifted by one), as in training batches; `mask`
    marks the targets that count, the response's tokens. Targets outside the mask may be anything,
    -100 included (padding); a target of -100 inside it is an error. The sum is in float32 whatever
    the model's precision, and gradients flow through it (DPO trains on it).
    """
    if not x.shape == y.shape == mask.shape or x.dim() != 2:
        raise ValueError(
            f"x, y and mask must have the same shape (batch, time), got {tuple(x.shape)}, {tuple(y.shape)} "
            f"and {tuple(mask.shape)}"
        )
    if (mask.bool() & (y < 0)).any():
        raise ValueError("a masked-in target is negative (padding?): mask only the response's real tokens")
    mask = mask.bool()
    logits, _ = model(x, logits_at=mask)  # (N, V): only where a response token is predicted
    return row_logprobs(logits, y, mask)


def row_logprobs(logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each row's summed log-probability of its targets where `mask` is true, from the logits (N, V) at
    those N positions (`GPT.forward(logits_at=mask)`, row-major): (N, V), (B, T), (B, T) -> (B,)."""
    mask = mask.bool()
    token_logprobs = -F.cross_entropy(logits.float(), y[mask], reduction="none")  # (N,)
    rows = torch.arange(len(y), device=y.device).unsqueeze(1).expand_as(mask)[mask]  # (N,) each one's row
    return torch.zeros(len(y), device=y.device).index_add(0, rows, token_logprobs)  # (N,) -> (B,)


def pair_logprobs(model: nn.Module, batch: PairBatch) -> torch.Tensor:
    """The log-probability of each pair's two responses: (B, 2), chosen in column 0, rejected in 1."""
    x, y, mask = batch
    flat = sequence_logprobs(model, x.flatten(0, 1), y.flatten(0, 1), mask.flatten(0, 1))  # (2B,)
    return flat.view(len(x), 2)


def pair_accuracy(chosen_scores, rejected_scores) -> float:
    """The share of pairs whose chosen reply scores higher; a tie counts half, as a coin would."""
    chosen, rejected = torch.as_tensor(chosen_scores).float(), torch.as_tensor(rejected_scores).float()
    if chosen.shape != rejected.shape or chosen.dim() != 1 or len(chosen) == 0:
        raise ValueError(
            f"need one score of each kind per pair, got shapes {tuple(chosen.shape)} and "
            f"{tuple(rejected.shape)}"
        )
    return ((chosen > rejected).float() + 0.5 * (chosen == rejected).float()).mean().item()


# ----------------------------------------------------------------------------------------------
# On-policy pairs: the model's own replies to checkable tasks


@torch.no_grad()
def sample_responses(
    model: nn.Module,
    tokenizer,
    records: Sequence[dict],
    n: int,
    *,
    temperature: float = 1.0,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    max_new_tokens: int = 32,
    batch_size: int = 64,
) -> list[list[Response]]:
    """`n` sampled responses to each record's prompt, each stopped at end-of-text: one list per record.

    Each prompt is repeated n times, and prompts of the same length in tokens share batches, so no
    padding is needed. A seeded `generator` gives the same samples on every run.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1 sample per prompt, got {n}")
    eot = tokenizer.eot_token
    prompts = [tokenizer.encode_ordinary(format_prompt(record)) for record in records]
    by_length: dict[int, list[int]] = {}  # prompt length -> the record of each sample to draw
    for i, prompt in enumerate(prompts):
        by_length.setdefault(len(prompt), []).extend([i] * n)
    device = next(model.parameters()).device
    samples: list[list[Response]] = [[] for _ in records]
    for length, owners in by_length.items():
        for start in range(0, len(owners), batch_size):
            chunk = owners[start : start + batch_size]
            idx = torch.tensor([prompts[i] for i in chunk], device=device)  # (B, length)
            sampled = generate(
                model,
                idx,
                max_new_tokens,
                temperature=temperature,
                top_p=top_p,
                stop_tokens=[eot],
                generator=generator,
                draw="inverse-cdf",  # the same law as multinomial, tens of times faster on a CPU
            )
            for i, row in zip(chunk, sampled.rows()):
                new = row[length:]
                stopped = bool(new) and new[-1] == eot
                samples[i].append(Response(tokenizer.decode(new[:-1] if stopped else new), stopped))
    return samples


class OnPolicyPairs(NamedTuple):
    records: list[
        dict
    ]  # preference records: the task's fields, a correct sample chosen, a wrong one rejected
    no_correct: int  # prompts skipped: no sample was correct
    no_wrong: int  # prompts skipped: a sample was correct, but none was a usable wrong one


def onpolicy_pairs(
    records: Sequence[dict], samples: Sequence[Sequence[Response]], greedy: Sequence[Response] | None = None
) -> OnPolicyPairs:
    """Preference pairs from a model's own samples on checkable tasks (records with an `output`).

    For each prompt the first correct sample (exact match with the record's output) is chosen and
    the first wrong one rejected. With `greedy`, the model's greedy reply to each prompt is the first
    candidate for rejection: when it is wrong, it is the reply the model gives by default, the one
    to push down. Only replies that stopped by themselves count: the encoded pair ends each reply
    with an end-of-text, which a reply cut at max_new_tokens never produced. A wrong reply that is
    empty cannot be a rejected response (an empty response is not a preference record).
    """
    if len(records) != len(samples) or (greedy is not None and len(greedy) != len(records)):
        raise ValueError(
            f"need one list of samples per record (and one greedy reply, if given), got {len(samples)} lists"
            f"{'' if greedy is None else f' and {len(greedy)} greedy replies'} for {len(records)} records"
        )
    pairs, no_correct, no_wrong = [], 0, 0
    for i, (record, responses) in enumerate(zip(records, samples)):
        finished = [r for r in ([greedy[i]] if greedy is not None else []) + list(responses) if r.stopped]
        correct = [r for r in finished if exact_match(r.text, record["output"])]
        wrong = [r for r in finished if r.text.strip() and not exact_match(r.text, record["output"])]
        if not correct:
            no_correct += 1
        elif not wrong:
            no_wrong += 1
        else:
            pairs.append({**record, "chosen": correct[0].text, "rejected": wrong[0].text})
    return OnPolicyPairs(pairs, no_correct, no_wrong)


def checker_scores(records: Sequence[dict], samples: Sequence[Sequence[Response]]) -> list[list[float]]:
    """1.0 for each sample that is exactly its record's output, else 0.0: best-of-n's ceiling scorer."""
    return [
        [float(exact_match(r.text, record["output"])) for r in responses]
        for record, responses in zip(records, samples)
    ]


def best_of_n(samples: Sequence[Sequence[Response]], scores: Sequence[Sequence[float]]) -> list[Response]:
    """For each prompt, the sample with the highest score (the first of equals)."""
    if len(samples) != len(scores) or any(len(s) != len(c) for s, c in zip(samples, scores)):
        raise ValueError("need one score per sample, in lists shaped like the samples'")
    if any(not s for s in samples):
        raise ValueError("every prompt needs at least one sample to pick from")
    return [responses[max(range(len(row)), key=row.__getitem__)] for responses, row in zip(samples, scores)]


def onpolicy_tasks(prompts: int, held_out: int = SCORED_TASKS) -> tuple[list[dict], list[dict]]:
    """(prompts to sample on, held-out records) of generated tasks for on-policy preference tuning.

    The prompts are the first `prompts` of Chapter 8's training tasks (`make_tasks(1400, seed=0)` less its
    100 held out), which the instruction-tuned model was trained on. The held-out records are Chapter 8's
    scored ones (`scored_tasks`), none of Chapter 8's training tasks, so neither Chapter 8 nor preference
    tuning ever trains on them; in them the task kinds take turns.
    """
    trained, _ = split_records(make_tasks(TASK_RECORDS, seed=SPLIT_SEED), HELD_OUT, SPLIT_SEED)
    if not 0 < prompts <= len(trained):
        raise ValueError(f"prompts must be between 1 and {len(trained)} (Chapter 8's training tasks), got {prompts}")
    return list(trained[:prompts]), scored_tasks(held_out)
