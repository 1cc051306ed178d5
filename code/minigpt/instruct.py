"""Instruction fine-tuning data (Chapter 8): Alpaca's records and template, checkable tasks, batches.

A record in Alpaca's format is a dict of three strings: `instruction` (what to do), `input` (what
to do it to; may be empty) and `output` (the response to learn). Training text is the record
written into Alpaca's prompt template, followed by the response and GPT-2's end-of-text token, so
that the tuned model learns where a response ends.

Three sources of records:

- `load_instruction_data()`: the 1,100 records shipped in `data/instruction-data.json`.
- `download_alpaca_52k()`: Stanford Alpaca's 52,002 records (CC BY-NC 4.0, so never shipped),
  downloaded from a pinned commit and checked by the git blob SHA-1 that the repository publishes
  (`ALPACA_52K`, which the environment variable MINIGPT_ALPACA_52K can point elsewhere).
- `make_tasks()`: generated instructions whose answers can be checked exactly (the first or last
  of a list of words, the list repeated or reversed, its words counted, the greatest or least of a
  few numbers), which measure instruction following without a judge model.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from .data import DataFile, cache_dir, data_path, fetch
from .generate import generate
from .memory import MemoryEstimate, free_memory, gib, training_memory
from .model import GPTConfig
from .pretrained import (
    CONFIG_FILE,
    FOLDER_INFO_FILE,
    GPT2_SIZES,
    config_from_gpt2,
    from_pretrained,
    load_base_model,
    save_pretrained,
    standin_dir,
)
from .tokenizer import gpt2_tokenizer
from .train import TrainConfig, Trainer, resolve_precision

FIELDS = ("instruction", "input", "output")
IGNORE_INDEX = -100  # the target value F.cross_entropy skips (its default ignore_index)

INSTRUCTION_DATA = DataFile(
    name="instruction-data.json",
    sha256="7e09a9af353722ca15c18bc580f093f9c39d3178335a75177319cb1e1d163944",
    url="https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/28c65cdf/"
    "ch07/01_main-chapter-code/instruction-data.json",
)



@dataclass(frozen=True)
class PinnedDownload:
    """A file fetched from another host: where from, and the git blob SHA-1 its bytes must have.

    Git's id of a file, which GitHub publishes for every file of a commit, is the hash pinned here:
    the course could not download Alpaca's file to compute its sha256 (no network where it was
    written), and the blob SHA-1 is what the repository itself states.
    """

    url: str
    git_blob_sha1: str

    @classmethod
    def parse(cls, setting: str, source: str) -> PinnedDownload:
        """A download from "<url>#<git blob SHA-1>", as the environment variable holds it."""
        url, _, blob_sha1 = setting.rpartition("#")
        if not url or len(blob_sha1) != 40 or any(c not in "0123456789abcdef" for c in blob_sha1):
            raise ValueError(
                f"{source} must be '<url>#<git blob SHA-1>' (40 lowercase hex digits, as "
                f"`git hash-object FILE` prints), got {setting!r}"
            )
        return cls(url, blob_sha1)


# github.com/tatsu-lab/stanford_alpaca at commit 761dc5b, and git's id of alpaca_data.json there
ALPACA_52K = PinnedDownload(
    url="https://raw.githubusercontent.com/tatsu-lab/stanford_alpaca/"
    "761dc5bfbdeeffa89b8bff5d038781a4055f796a/alpaca_data.json",
    git_blob_sha1="3779ddbc040543ab1834ef216c983d6fcc06cc9a",
)
ALPACA_52K_ENV = "MINIGPT_ALPACA_52K"  # "<url>#<git blob SHA-1>": another copy (a test's local file)

# Stanford Alpaca's two prompt templates: with an input, and without one. The wording is Stanford's
# (github.com/tatsu-lab/stanford_alpaca, train.py); Stanford's end at "### Response:", where these add
# a newline, so that the response starts on a line of its own (Chapter 8 says so).
PROMPT_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)


# ----------------------------------------------------------------------------------------------
# Records: loading and validating


def check_record_fields(
    record: object,
    label: str,
    fields: Sequence[str],
    *,
    kind: str,
    non_empty: Sequence[str],
    optional: Sequence[str] = (),
) -> dict:
    """Raise ValueError, naming `label` and the field, unless `record` is an object with string `fields`.

    The `non_empty` fields must hold more than white space; an `optional` field, if present, must be a
    string too. `kind` names the record in the messages ("an instruction record").
    """
    listed = ", ".join(fields)
    if not isinstance(record, dict):
        raise ValueError(
            f"{label} has type {type(record).__name__}, expected an object with the fields {listed}"
        )
    for field in fields:
        if field not in record:
            raise ValueError(
                f"{label} has no '{field}' field ({kind} needs {listed}; "
                "use an empty string for an input that is not needed)"
            )
    for field in (*fields, *optional):
        if field in record and not isinstance(record[field], str):
            raise ValueError(
                f"{label}, field '{field}' has type {type(record[field]).__name__}, expected a string"
            )
    for field in non_empty:
        if not record[field].strip():
            raise ValueError(f"{label}, field '{field}' is empty; {kind} needs a non-empty {field}")
    return record


def validate_records(records: object, source: str = "the records") -> list[dict]:
    """Check that `records` is a list of Alpaca records; return it, or raise naming the first fault.

    Every record must be a dict with string values for instruction, input and output, and a
    non-empty instruction. Nothing is dropped or repaired: a bad record is an error.
    """
    if not isinstance(records, list):
        raise ValueError(f"{source}: expected a JSON list of records, got {type(records).__name__}")
    for i, record in enumerate(records):
        check_record_fields(
            record, f"{source}: record {i}", FIELDS, kind="an instruction record", non_empty=["instruction"]
        )
    return records


def load_records(path: str | Path) -> list[dict]:
    """The validated records of a JSON file in Alpaca's format."""
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        return validate_records(json.load(f), source=path.name)


def load_instruction_data(verbose: bool = True) -> list[dict]:
    """The 1,100 records shipped with the course (sha256 verified)."""
    return load_records(data_path(INSTRUCTION_DATA, verbose))


def git_blob_sha1(content: bytes) -> str:
    """Git's object id of a file: the SHA-1 of `blob <size>\\0` followed by the bytes."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def alpaca_52k_source() -> PinnedDownload:
    """Where Alpaca's 52k records come from: MINIGPT_ALPACA_52K if set, else the pinned commit."""
    setting = os.environ.get(ALPACA_52K_ENV)
    return PinnedDownload.parse(setting, ALPACA_52K_ENV) if setting else ALPACA_52K


def download_alpaca_52k(source: PinnedDownload | None = None, verbose: bool = True) -> list[dict]:
    """Stanford Alpaca's 52k records, downloaded once into the cache and verified by git blob SHA-1.

    The data is CC BY-NC 4.0 (non-commercial use only), which is why the course downloads it from the
    pinned commit (`alpaca_52k_source()`) instead of shipping it. A download whose hash differs is
    refused and not kept; a failed download raises an OSError that names what was being fetched.
    """
    source = alpaca_52k_source() if source is None else source
    path = cache_dir() / f"alpaca_data.{source.git_blob_sha1[:12]}.json"
    if not path.is_file():
        if verbose:
            print(f"alpaca_data.json: downloading it from {source.url}")
        content = fetch(source.url, "Stanford Alpaca's 52k records")
        actual = git_blob_sha1(content)
        if actual != source.git_blob_sha1:
            raise ValueError(
                f"{source.url}: git blob SHA-1 is {actual}, expected {source.git_blob_sha1}; the "
                "download is corrupt or not the pinned version, so it was not kept"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        partial.write_bytes(content)
        os.replace(partial, path)
    elif verbose:
        print("alpaca_data.json: using the copy downloaded earlier to the cache")
    return load_records(path)


# ----------------------------------------------------------------------------------------------
# Alpaca's template


def format_prompt(record: dict) -> str:
    """The record's instruction (and input, if any) in Alpaca's template, up to '### Response:\\n'."""
    template = PROMPT_WITH_INPUT if record["input"] else PROMPT_NO_INPUT
    return template.format(instruction=record["instruction"], input=record["input"])


def format_example(record: dict) -> str:
    """The whole training text of a record: its prompt followed by its response."""
    return format_prompt(record) + record["output"]


# ----------------------------------------------------------------------------------------------
# Generated tasks whose answers can be checked exactly

# The words and numbers are ones the offline stand-in saw often in Tiny Shakespeare, each a single
# GPT-2 token with its leading space, and they always appear with that space (after "Words:" and in
# the answers' sentences). A token a model never saw in training keeps an embedding that training
# pushed, with every other unseen token, in one shared direction: such tokens look alike to it, and no
# short fine-tuning could teach it to copy one of them rather than another.
WORDS = (
    "lord love man king father death time heart life son brother honour blood day hand name queen "
    "world night eyes mother wife head grace heaven crown tears soul daughter prince house face"
).split()
NUMBERS = ("one", "two", "three", "four", "five", "six", "seven")  # in order: NUMBERS[i] is i + 1


@dataclass(frozen=True)
class Task:
    """A kind of generated instruction: its wording, what it lists, and the answer for a list."""

    name: str
    instruction: str
    lists: str  # "Words" (2 to 5 of WORDS) or "Numbers" (2 or 3 of NUMBERS)
    answer: Callable[[list[str]], str]

    def draw(self, rng: random.Random) -> tuple[str, str]:
        """A random input for this task, and its answer."""
        if self.lists == "Words":
            items = rng.sample(WORDS, rng.randint(2, 5))
        else:
            items = rng.sample(NUMBERS, rng.randint(2, 3))
        return f"{self.lists}: {_listed(items)}", self.answer(items)


def _listed(items: Sequence[str]) -> str:
    return ", ".join(items)


TASKS = (
    Task("first word", "Which word comes first?", "Words", lambda words: f"The first word is {words[0]}."),
    Task("last word", "Which word comes last?", "Words", lambda words: f"The last word is {words[-1]}."),
    Task("repeat", "Say the words again.", "Words", lambda words: f"The words are {_listed(words)}."),
    Task(
        "reverse",
        "Say the words from last to first.",
        "Words",
        lambda words: f"From last to first: {_listed(words[::-1])}.",
    ),
    Task(
        "count",
        "How many words are there?",
        "Words",
        lambda words: f"There are {NUMBERS[len(words) - 1]} words.",
    ),
    Task(
        "greatest number",
        "Which number is the greatest?",
        "Numbers",
        lambda numbers: f"It is {max(numbers, key=NUMBERS.index)}.",
    ),
    Task(
        "least number",
        "Which number is the least?",
        "Numbers",
        lambda numbers: f"It is {min(numbers, key=NUMBERS.index)}.",
    ),
)
TASK_OF_INSTRUCTION = {task.instruction: task.name for task in TASKS}


def make_tasks(n: int, seed: int = 0) -> list[dict]:
    """`n` distinct generated records in Alpaca's format, the same ones for the same seed.

    Task kinds take turns, so each gets n / len(TASKS) records (the number tasks have 252 distinct
    inputs each, which caps n at 1,764); inputs are drawn from a generator seeded with `seed`.
    """
    rng, records, seen = random.Random(seed), [], set()
    attempts = 0
    while len(records) < n:
        task = TASKS[len(records) % len(TASKS)]
        attempts += 1
        if attempts > 100 * n:
            raise ValueError(
                f"could not draw {n} distinct records; the task {task.name!r} has too few inputs"
            )
        text, answer = task.draw(rng)
        if (task.instruction, text) not in seen:  # a held-out record must never also be a training record
            seen.add((task.instruction, text))
            records.append({"instruction": task.instruction, "input": text, "output": answer})
    return records


def split_records(records: Sequence[dict], held_out: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(train, held-out): `held_out` records drawn at random (seeded), the rest for training."""
    if not 0 < held_out < len(records):
        raise ValueError(
            f"held_out must be between 1 and {len(records) - 1} for {len(records)} records, got {held_out}"
        )
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    return [records[i] for i in order[held_out:]], [records[i] for i in order[:held_out]]


# ----------------------------------------------------------------------------------------------
# Tokens and batches


class Example(NamedTuple):
    """A record as token ids: prompt, then response, then end-of-text; the prompt's length in tokens."""

    ids: list[int]
    prompt_length: int


def encode_record(record: dict, tokenizer) -> Example:
    """Tokenize prompt and response separately, so that the prompt is exactly what generation sees."""
    prompt = tokenizer.encode_ordinary(format_prompt(record))
    response = tokenizer.encode_ordinary(record["output"])
    return Example(prompt + response + [tokenizer.eot_token], len(prompt))


def check_prompts_fit(records: Sequence[dict], tokenizer, max_length: int, source: str = "the records") -> None:
    """Raise ValueError naming the first record whose prompt leaves no room for its response in
    `max_length` tokens: cut to fit, it would have no target to train on."""
    for i, record in enumerate(records):
        length = len(tokenizer.encode_ordinary(format_prompt(record)))
        if length >= max_length:
            raise ValueError(
                f"{source}: record {i}'s prompt takes {length} tokens in Alpaca's template, and the context "
                f"holds {max_length}: no room is left for its response; shorten its instruction and input, "
                "or train a model with a longer context"
            )


class Batch(NamedTuple):
    x: torch.Tensor  # (B, T) inputs
    y: torch.Tensor  # (B, T) targets: x shifted by one, IGNORE_INDEX where no loss is taken
    truncated: int  # how many of the batch's examples were longer than max_length and were cut


def collate(
    examples: Sequence[Example], pad_id: int, max_length: int | None = None, mask_prompt: bool = True
) -> Batch:
    """Pad a batch of examples to its longest, and make the targets.

    Each example ends with the end-of-text token and is padded with `pad_id` (end-of-text, for
    GPT-2). The targets are the inputs shifted by one; every target after the example's own
    end-of-text is IGNORE_INDEX, so the model learns to stop but not to predict padding. With
    `mask_prompt`, the targets inside the prompt are ignored too, and the loss is on the response
    only. Examples longer than `max_length` inputs are cut to fit (they lose their ending).
    """
    if not examples:
        raise ValueError("collate needs at least one example")
    limit = max_length + 1 if max_length is not None else None  # inputs plus the last target
    rows = [example.ids[:limit] for example in examples]
    truncated = sum(len(row) < len(example.ids) for row, example in zip(rows, examples))
    width = max(len(row) for row in rows)
    x = torch.full((len(rows), width - 1), pad_id, dtype=torch.long)  # (B, T)
    y = torch.full((len(rows), width - 1), IGNORE_INDEX, dtype=torch.long)  # (B, T)
    for b, (row, example) in enumerate(zip(rows, examples)):
        ids = torch.tensor(row)
        x[b, : len(row) - 1] = ids[:-1]
        y[b, : len(row) - 1] = ids[1:]  # the last real target is this example's end-of-text
        if mask_prompt:
            # y[t] is the token after x[: t + 1]: the first response token is y[prompt_length - 1].
            y[b, : example.prompt_length - 1] = IGNORE_INDEX
    return Batch(x, y, truncated)


class InstructionDataset:
    """One split's examples as a batch source for the `Trainer`.

    `sample_batch` draws a random training batch (with or without response masking);
    `eval_batches` gives a fixed set of evaluation batches, always masked to the responses, so
    that runs trained with and without masking are evaluated on the same tokens.
    """

    def __init__(self, records: Sequence[dict], tokenizer, max_length: int, mask_prompt: bool = True):
        if not records:
            raise ValueError("an InstructionDataset needs at least one record")
        self.examples = [encode_record(record, tokenizer) for record in records]
        self.pad_id, self.max_length, self.mask_prompt = tokenizer.eot_token, max_length, mask_prompt
        self.n_truncated = sum(len(e.ids) - 1 > max_length for e in self.examples)

    def __len__(self) -> int:
        return len(self.examples)

    def sample_batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        picks = torch.randint(len(self.examples), (batch_size,), generator=generator).tolist()
        batch = collate([self.examples[i] for i in picks], self.pad_id, self.max_length, self.mask_prompt)
        return batch.x, batch.y

    def eval_batches(self, count: int, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Up to `count` examples spread evenly over the split, in batches of `batch_size`."""
        picks = torch.linspace(0, len(self.examples) - 1, min(count, len(self.examples))).long().tolist()
        chosen = [self.examples[i] for i in picks]
        batches = [
            collate(chosen[i : i + batch_size], self.pad_id, self.max_length, mask_prompt=True)
            for i in range(0, len(chosen), batch_size)
        ]
        return [(batch.x, batch.y) for batch in batches]


# ----------------------------------------------------------------------------------------------
# Responses and their scores


class Response(NamedTuple):
    text: str  # the generated response, without its end-of-text token
    stopped: bool  # whether the model ended it with end-of-text by itself


@torch.no_grad()
def respond(
    model: torch.nn.Module, tokenizer, records: Sequence[dict], max_new_tokens: int = 32, batch_size: int = 64
) -> list[Response]:
    """The model's greedy response to each record's prompt, stopped at end-of-text.

    Prompts of the same length in tokens are generated together as one batch, so no padding (and
    no attention mask) is needed.
    """
    eot = tokenizer.eot_token
    prompts = [tokenizer.encode_ordinary(format_prompt(record)) for record in records]
    by_length: dict[int, list[int]] = {}
    for i, prompt in enumerate(prompts):
        by_length.setdefault(len(prompt), []).append(i)
    device = next(model.parameters()).device
    responses: list[Response | None] = [None] * len(records)
    for length, indices in by_length.items():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            idx = torch.tensor([prompts[i] for i in chunk], device=device)  # (B, length)
            rows = generate(model, idx, max_new_tokens, temperature=0, stop_tokens=[eot]).rows()
            for i, row in zip(chunk, rows):
                new = row[length:]
                stopped = bool(new) and new[-1] == eot
                responses[i] = Response(tokenizer.decode(new[:-1] if stopped else new), stopped)
    return responses


def exact_match(response: str, answer: str) -> bool:
    """Whether a response is the expected answer, ignoring whitespace at either end."""
    return response.strip() == answer.strip()


def constant_answers(records: Sequence[dict]) -> dict[str, str]:
    """For each instruction among `records`, its commonest answer there (the first of equals).

    Answering every record of an instruction with it ignores the input: a baseline a model can reach
    without reading the list. Taken from the training records, it is a constant a model could learn;
    taken from the records it is scored on, it is an oracle, chosen with the answers' help.
    """
    answers: dict[str, Counter] = {}
    for record in records:
        answers.setdefault(record["instruction"], Counter())[record["output"]] += 1
    return {instruction: counts.most_common(1)[0][0] for instruction, counts in answers.items()}


@dataclass
class TaskScores:
    """Exact-match accuracy and the share of responses that stopped by themselves, overall and per task."""

    exact_match: float
    stop_rate: float
    per_task: dict[str, float]  # task name -> exact-match accuracy
    responses: list[Response]


def score_tasks(records: Sequence[dict], responses: Sequence[Response]) -> TaskScores:
    """Score responses to generated task records (see `make_tasks`) against their answers."""
    if len(records) != len(responses) or not records:
        raise ValueError(f"need one response per record, got {len(responses)} for {len(records)} records")
    hits = [exact_match(r.text, record["output"]) for r, record in zip(responses, records)]
    per_task: dict[str, list[bool]] = {}
    for hit, record in zip(hits, records):
        per_task.setdefault(TASK_OF_INSTRUCTION.get(record["instruction"], "other"), []).append(hit)
    return TaskScores(
        exact_match=sum(hits) / len(hits),
        stop_rate=sum(r.stopped for r in responses) / len(responses),
        per_task={name: sum(h) / len(h) for name, h in per_task.items()},
        responses=list(responses),
    )


# ----------------------------------------------------------------------------------------------
# The run: what to fine-tune on the reader's machine

# The run's sizes: a CPU's (the stand-in's on every device, so that its outputs are the same
# everywhere) and a CUDA GPU's, which trains GPT-2 longer, on longer sequences and more records.
CPU_SIZES = dict(steps=200, batch_size=8, max_length=128, shipped=300, alpaca_52k=False)
GPU_SIZES = dict(steps=1500, batch_size=16, max_length=256, shipped=1000, alpaca_52k=True)
LEARNING_RATE = {"stand-in": 2e-3, "gpt2": 5e-5, "gpt2-medium": 5e-5}  # the stand-in's set for 200 steps
GPU_BASES = ("gpt2-medium", "gpt2")  # in order of preference: the largest that fits
MICRO_BATCHES = (16, 8, 4)  # examples per forward pass to try, largest first (accumulating the rest)
FREE_SHARE = 0.8  # a run fits if its estimated peak is at most this share of the free memory


@dataclass(frozen=True)
class FineTuneRun:
    """One fine-tuning run of Chapter 8: the base model, the data it sees, and how it trains."""

    base: str  # "stand-in" or a GPT-2 size ("gpt2", "gpt2-medium")
    steps: int
    batch_size: int  # examples per optimizer step
    micro_batch: int  # examples per forward pass; batch_size / micro_batch are accumulated
    max_length: int  # the longest training sequence, in tokens (longer ones are cut, and counted)
    shipped: int  # how many of the shipped training records join the generated tasks
    alpaca_52k: bool  # whether Stanford Alpaca's 52k records join them too, when they can be downloaded
    lr: float  # peak learning rate
    precision: str  # the Trainer's, resolved for the device: "fp32", "bf16" or "fp16"

    def __post_init__(self) -> None:
        if self.batch_size % self.micro_batch:
            raise ValueError(f"batch_size={self.batch_size} is not a multiple of micro_batch={self.micro_batch}")

    def train_config(self, seed: int = 1337) -> TrainConfig:
        """The Trainer's settings: 8 warmup steps, cosine decay, 4 evaluations of 32 records each."""
        return TrainConfig(
            max_steps=self.steps,
            batch_size=self.micro_batch,
            grad_accum_steps=self.batch_size // self.micro_batch,
            lr=self.lr,
            warmup_steps=8,
            eval_interval=max(self.steps // 4, 1),
            eval_windows=32,
            precision=self.precision,
            seed=seed,
        )

    def memory(self) -> MemoryEstimate:
        """The estimated memory of a training step, with the base model kept beside the one trained."""
        return training_memory(
            base_config(self.base), self.micro_batch, self.max_length, self.precision, other_models=1
        )


class RunChoice(NamedTuple):
    run: FineTuneRun
    reason: str  # why this run, in words


def base_config(base: str) -> GPTConfig:
    """The shape of a base model by name, without loading it: the stand-in's or a GPT-2 size's."""
    if base == "stand-in":
        return config_from_gpt2(json.loads((standin_dir() / CONFIG_FILE).read_text(encoding="utf-8")))
    if base not in GPT2_SIZES:
        raise ValueError(f"unknown base model {base!r}: choose 'stand-in' or one of {', '.join(GPT2_SIZES)}")
    return GPT2_SIZES[base].config()


def make_run(
    base: str, device: torch.device | str, micro_batch: int | None = None, precision: str | None = None
) -> FineTuneRun:
    """The run for a base model on a device: the stand-in's sizes everywhere, GPT-2's by the device.

    `precision` defaults to the one the Trainer would pick on this device (`resolve_precision`).
    """
    device = torch.device(device)
    sizes = GPU_SIZES if device.type == "cuda" and base != "stand-in" else CPU_SIZES
    if base not in LEARNING_RATE:
        raise ValueError(f"no fine-tuning run for {base!r}: choose one of {', '.join(LEARNING_RATE)}")
    return FineTuneRun(
        base=base,
        micro_batch=micro_batch or sizes["batch_size"],
        lr=LEARNING_RATE[base],
        precision=precision or resolve_precision("auto", device),
        **sizes,
    )


def choose_run(
    device: torch.device | str, *, gpt2_on_cpu: bool = False, free_bytes: int | None = None
) -> RunChoice:
    """Chapter 8's run for this device, and why.

    On a CUDA GPU: the largest GPT-2 of GPU_BASES, in the largest micro-batch of MICRO_BATCHES, whose
    estimated peak memory is at most FREE_SHARE of the free memory (`free_bytes`, measured when not
    given), else the stand-in. On a CPU or Apple's MPS: the stand-in, or GPT-2 124M with
    `gpt2_on_cpu` (the same run, about 23 times the parameters: slow, see the time printed).
    """
    device = torch.device(device)
    if device.type != "cuda":
        if gpt2_on_cpu:
            return RunChoice(make_run("gpt2", device), f"no CUDA GPU ({device.type}); GPT-2 124M, as asked")
        reason = f"no CUDA GPU ({device.type}): the stand-in (gpt2_on_cpu=True would fine-tune GPT-2 124M)"
        return RunChoice(make_run("stand-in", device), reason)
    free = free_memory(device) if free_bytes is None else free_bytes
    if not isinstance(free, int) or free < 0:
        raise ValueError(f"free_bytes must be a number of bytes, 0 or more, got {free!r}")
    budget, too_big = FREE_SHARE * free, []
    for base in GPU_BASES:
        for micro_batch in MICRO_BATCHES:
            run = make_run(base, device, micro_batch)
            peak = run.memory().peak
            if peak <= budget:
                larger = f"; the larger choices need more: {', '.join(too_big)}" if too_big else ""
                reason = (
                    f"a CUDA GPU with {gib(free)} free: {base} in micro-batches of {micro_batch}, an "
                    f"estimated peak of {gib(peak)}, at most {FREE_SHARE:.0%} of the free memory{larger}"
                )
                return RunChoice(run, reason)
            too_big.append(f"{base} x {micro_batch}: {gib(peak)}")
    run = make_run("stand-in", device)
    reason = (
        f"a CUDA GPU with {gib(free)} free, too little for GPT-2 ({', '.join(too_big)}): the stand-in, "
        f"an estimated {gib(run.memory().peak)}"
    )
    return RunChoice(run, reason)


def training_records(
    task_train: Sequence[dict], shipped_train: Sequence[dict], run: FineTuneRun, verbose: bool = True
) -> list[dict]:
    """Chapter 8's training records: the generated tasks, the run's share of the shipped records, and
    Stanford Alpaca's 52k records when the run asks for them and they can be downloaded."""
    records = [*task_train, *shipped_train[: run.shipped]]
    if run.alpaca_52k:
        try:
            alpaca = download_alpaca_52k(verbose=verbose)
        except (OSError, ValueError) as error:  # no network, or a file that is not the pinned one
            print(f"Stanford Alpaca's 52k records could not be used ({error}); training without them")
        else:
            records += alpaca
            if verbose:
                print(f"Stanford Alpaca: {len(alpaca):,} records added")
    return records


# ----------------------------------------------------------------------------------------------
# Chapter 8's tuned model, for the chapters after it

TUNED_SUBDIR = "instruction-tuned"  # under cache_dir(): one model folder per recipe
TASK_RECORDS, HELD_OUT, SPLIT_SEED = 1400, 100, 0  # Chapter 8's generated tasks and its two held-out splits
SCORED_TASKS, SCORED_SEED = 300, 8  # the held-out tasks whose exact match Chapters 8 and 9 report
TRAIN_SEED = 1337  # the Trainer's seed of Chapter 8's run


def recipe_key(run: FineTuneRun) -> str:
    """A short hash of everything that makes Chapter 8's tuned model: the run, the data and the seed."""
    recipe = {
        "run": asdict(run),
        "data": f"make_tasks({TASK_RECORDS}, seed={SPLIT_SEED}) and the shipped records, {HELD_OUT} of each held "
        f"out (split seed {SPLIT_SEED}); masked prompts; Trainer seed {TRAIN_SEED}",
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def scored_tasks(count: int = SCORED_TASKS, seed: int = SCORED_SEED) -> list[dict]:
    """The generated records whose exact match Chapters 8 and 9 report: `count` of them, none of them one
    of Chapter 8's training tasks, so neither chapter ever trains on them, with the task kinds taking turns.

    They are drawn with `make_tasks` from another `seed` than Chapter 8's tasks, and every record that is
    also one of Chapter 8's training tasks is left out.
    """
    trained, _ = split_records(make_tasks(TASK_RECORDS, seed=SPLIT_SEED), HELD_OUT, SPLIT_SEED)
    seen = {(r["instruction"], r["input"]) for r in trained}
    fresh = [r for r in make_tasks(1764, seed=seed) if (r["instruction"], r["input"]) not in seen]
    instructions = sorted(task.instruction for task in TASKS)  # the kinds' turns, in alphabetical order
    per_kind = [[r for r in fresh if r["instruction"] == instruction] for instruction in instructions]
    in_turns = [r for group in zip(*per_kind) for r in group]  # kinds take turns while all last
    if not 0 < count <= len(in_turns):
        raise ValueError(f"count must be between 1 and {len(in_turns)} (every kind equally often), got {count}")
    return in_turns[:count]


def instruction_tuned_dir(run: FineTuneRun) -> Path:
    """The model folder where Chapter 8 saves the model `run` tunes: one per recipe, in the cache."""
    return cache_dir() / TUNED_SUBDIR / f"{run.base}-{recipe_key(run)}"


def instruction_tuning_records(run: FineTuneRun, verbose: bool = False) -> tuple[list[dict], list[dict], list[dict]]:
    """Chapter 8's (training records, held-out task records, held-out shipped records) for `run`."""
    task_train, task_held_out = split_records(make_tasks(TASK_RECORDS, seed=SPLIT_SEED), HELD_OUT, SPLIT_SEED)
    shipped_train, shipped_held_out = split_records(load_instruction_data(verbose), HELD_OUT, SPLIT_SEED)
    return training_records(task_train, shipped_train, run, verbose), task_held_out, shipped_held_out


def instruction_tuned_model(run: FineTuneRun, device: torch.device | str, verbose: bool = True):
    """Chapter 8's instruction-tuned model for `run`, in eval mode: read from the folder Chapter 8 saved
    it to (`instruction_tuned_dir`), or, when there is none (a fresh machine, Colab), rebuilt with
    Chapter 8's recipe (the masked run) and saved there. Rebuilding the stand-in's run takes about
    a minute of training on an idle 2-core CPU (Chapter 8 prints the time of its run)."""
    folder = instruction_tuned_dir(run)
    # save_pretrained writes this file last, each file atomically: once it is there, the folder is whole
    # (Chapters 8 and 9 may run at the same time, in two test processes, and both save here)
    if (folder / FOLDER_INFO_FILE).is_file():
        if verbose:
            print(f"Chapter 8's tuned {run.base}: read from the cache")  # two lines: fits the book's page
            print(f"  ({TUNED_SUBDIR}/{folder.name})")
        return from_pretrained(folder, device=device).eval()
    if verbose:
        print(f"Chapter 8's tuned {run.base}: not in the cache; rebuilding it")
        print(f"  with Chapter 8's recipe ({run.steps} steps), then saving it to")
        print(f"  {TUNED_SUBDIR}/{folder.name}")
    if run.base == "stand-in":
        base = from_pretrained(standin_dir(), device=device)
    else:
        loaded = load_base_model(run.base, device=device)
        if loaded.is_standin:
            raise ValueError(f"{run.base} could not be loaded (the Hub is unreachable): use the stand-in's run")
        base = loaded.model
    enc = gpt2_tokenizer()
    train_records, task_held_out, shipped_held_out = instruction_tuning_records(run)
    data = InstructionDataset(train_records, enc, run.max_length, mask_prompt=True)
    val_data = InstructionDataset(task_held_out + shipped_held_out, enc, run.max_length)
    trainer = Trainer(base, data, val_data, run.train_config(TRAIN_SEED), device=device)
    trainer.train(progress=verbose)
    save_pretrained(trainer.model, folder, prompt_format="alpaca")
    return trainer.model.eval()
