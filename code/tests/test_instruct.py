import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from minigpt import GPT, GPTConfig, data, gpt2_tokenizer, train
from minigpt.checkpoint import resume
from minigpt.instruct import (
    ALPACA_52K,
    ALPACA_52K_ENV,
    FREE_SHARE,
    IGNORE_INDEX,
    MICRO_BATCHES,
    NUMBERS,
    TASK_OF_INSTRUCTION,
    TASKS,
    WORDS,
    Example,
    InstructionDataset,
    PinnedDownload,
    Response,
    alpaca_52k_source,
    base_config,
    choose_run,
    collate,
    constant_answers,
    download_alpaca_52k,
    encode_record,
    exact_match,
    format_example,
    format_prompt,
    git_blob_sha1,
    load_instruction_data,
    load_records,
    make_run,
    make_tasks,
    respond,
    score_tasks,
    scored_tasks,
    split_records,
    training_records,
    validate_records,
)
from minigpt.memory import training_memory
from minigpt.train import TrainConfig, Trainer

ENC = gpt2_tokenizer()
EOT = ENC.eot_token
RECORD = {"instruction": "Name the first item of the list.", "input": "cat\ndog", "output": "cat"}


# ---------------------------------------------------------------------------------------------
# Records


@pytest.mark.parametrize(
    "records, message",
    [
        ({"instruction": "x"}, "expected a JSON list"),
        ([RECORD, "text"], "record 1 has type str"),
        ([RECORD, {"instruction": "Do it.", "output": "done"}], "record 1 has no 'input' field"),
        ([{"instruction": "Do it.", "input": "", "output": 3}], "record 0, field 'output' has type int"),
        (
            [RECORD, RECORD, {"instruction": "  ", "input": "", "output": "x"}],
            "record 2, field 'instruction'",
        ),
    ],
)
def test_validation_names_the_record_and_the_field(records, message):
    with pytest.raises(ValueError, match=message):
        validate_records(records, source="test.json")


def test_load_records_validates_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([RECORD, {"instruction": "Do it.", "input": None, "output": "x"}]))
    with pytest.raises(ValueError, match="bad.json: record 1, field 'input' has type NoneType"):
        load_records(path)


def test_shipped_instruction_data():
    records = load_instruction_data(verbose=False)
    assert len(records) == 1100
    assert sum(record["input"] == "" for record in records) == 775


def test_git_blob_sha1_matches_git():
    assert git_blob_sha1(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # `git hash-object /dev/null`
    assert git_blob_sha1(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_alpaca_download_is_verified_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGPT_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "alpaca_data.json"
    source.write_bytes(json.dumps([RECORD]).encode())
    right = PinnedDownload(source.as_uri(), git_blob_sha1(source.read_bytes()))
    with pytest.raises(ValueError, match="git blob SHA-1 is .* expected 0000"):
        download_alpaca_52k(PinnedDownload(source.as_uri(), "0" * 40), verbose=False)
    assert not (tmp_path / "cache").exists()  # the bad download was not kept
    assert download_alpaca_52k(right, verbose=False) == [RECORD]
    source.unlink()  # the second call reads the cached copy
    assert download_alpaca_52k(right, verbose=False) == [RECORD]


def alpaca_file(tmp_path, n: int) -> tuple[list[dict], str]:
    """A small file in Alpaca's format, `n` distinct records, and its MINIGPT_ALPACA_52K setting."""
    records = [{"instruction": f"Say {i}.", "input": "", "output": f"{i}"} for i in range(n)]
    path = tmp_path / "served" / "alpaca_data.json"
    path.parent.mkdir()
    path.write_bytes(json.dumps(records).encode())
    return records, f"{path.as_uri()}#{git_blob_sha1(path.read_bytes())}"


def test_alpaca_source_is_one_setting_the_environment_can_point_elsewhere(tmp_path, monkeypatch):
    monkeypatch.delenv(ALPACA_52K_ENV, raising=False)
    assert alpaca_52k_source() == ALPACA_52K
    assert ALPACA_52K.url.startswith("https://raw.githubusercontent.com/tatsu-lab/stanford_alpaca/761dc5b")
    monkeypatch.setenv("MINIGPT_CACHE", str(tmp_path / "cache"))
    records, setting = alpaca_file(tmp_path, 5)
    monkeypatch.setenv(ALPACA_52K_ENV, setting)
    assert alpaca_52k_source().url == setting.split("#")[0]
    assert download_alpaca_52k(verbose=False) == records
    monkeypatch.setenv(ALPACA_52K_ENV, setting[:-40] + "1" * 40)  # the same file, another hash
    with pytest.raises(ValueError, match="git blob SHA-1 is .* expected 1111"):
        download_alpaca_52k(verbose=False)


@pytest.mark.parametrize("setting", ["https://example.org/a.json", "#" + "0" * 40, "file:///a.json#ABC"])
def test_alpaca_setting_must_be_a_url_and_a_git_blob_sha1(setting, monkeypatch):
    monkeypatch.setenv(ALPACA_52K_ENV, setting)
    with pytest.raises(ValueError, match="MINIGPT_ALPACA_52K must be '<url>#<git blob SHA-1>'"):
        alpaca_52k_source()


def test_failed_alpaca_download_says_what_it_fetched(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGPT_CACHE", str(tmp_path / "cache"))
    missing = (tmp_path / "nowhere.json").as_uri()
    with pytest.raises(OSError, match=f"downloading Stanford Alpaca's 52k records from {missing} failed"):
        download_alpaca_52k(PinnedDownload(missing, "0" * 40), verbose=False)


def test_alpaca_download_has_a_timeout(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGPT_CACHE", str(tmp_path / "cache"))
    seen = {}

    def urlopen(url, timeout=None):
        seen["timeout"] = timeout
        raise TimeoutError("timed out")

    monkeypatch.setattr(data.urllib.request, "urlopen", urlopen)
    with pytest.raises(OSError, match="from https://example.org/alpaca.json failed: timed out"):
        download_alpaca_52k(PinnedDownload("https://example.org/alpaca.json", "0" * 40), verbose=False)
    assert seen["timeout"] == data.DOWNLOAD_TIMEOUT_S


def test_training_records_use_every_alpaca_record_served(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINIGPT_CACHE", str(tmp_path / "cache"))
    served, setting = alpaca_file(tmp_path, 37)
    monkeypatch.setenv(ALPACA_52K_ENV, setting)
    tasks, shipped = make_tasks(70), load_instruction_data(verbose=False)
    run = replace(make_run("stand-in", "cpu"), alpaca_52k=True)
    records = training_records(tasks, shipped, run)
    assert len(records) == len(tasks) + run.shipped + len(served)
    assert records[: len(tasks)] == tasks and records[-len(served) :] == served
    assert "Stanford Alpaca: 37 records added" in capsys.readouterr().out
    # Without Alpaca's records in the run, or when they cannot be had, the rest is the same.
    assert training_records(tasks, shipped, make_run("stand-in", "cpu")) == records[: -len(served)]
    monkeypatch.setenv(ALPACA_52K_ENV, (tmp_path / "nowhere.json").as_uri() + "#" + "0" * 40)
    assert training_records(tasks, shipped, run, verbose=False) == records[: -len(served)]
    assert "could not be used (downloading Stanford Alpaca's 52k records from file:" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# The run: chosen from the device and its free memory


@pytest.fixture
def t4(monkeypatch):
    """A CUDA device as PyTorch reports a Colab T4 (no native bf16), without a GPU."""
    monkeypatch.setattr(train, "native_bf16", lambda device: False)
    return torch.device("cuda")


def test_cpu_and_apple_gpu_fine_tune_the_stand_in_or_gpt2_when_asked():
    for device in ("cpu", "mps"):
        choice = choose_run(device)
        assert choice.run == make_run("stand-in", device)
        assert (choice.run.steps, choice.run.batch_size, choice.run.max_length, choice.run.lr) == (200, 8, 128, 2e-3)
        assert choice.run.precision == "fp32" and not choice.run.alpaca_52k
        assert f"no CUDA GPU ({device})" in choice.reason and "gpt2_on_cpu=True" in choice.reason
        gpt2 = choose_run(device, gpt2_on_cpu=True)
        assert (gpt2.run.base, gpt2.run.steps, gpt2.run.lr) == ("gpt2", 200, 5e-5)


@pytest.mark.parametrize(
    "free_gib, base, micro_batch",
    [
        (139.0, "gpt2-medium", 16),  # an H200
        (14.6, "gpt2-medium", 8),  # a T4: GPT-2 medium, accumulating two micro-batches of 8
        (7.5, "gpt2", 16),  # an 8 GB GPU
        (4.0, "gpt2", 4),
        (1.5, "stand-in", 8),
    ],
)
def test_cuda_run_is_the_largest_that_fits(t4, free_gib, base, micro_batch):
    free = int(free_gib * 2**30)
    choice = choose_run(t4, free_bytes=free)
    run = choice.run
    assert (run.base, run.micro_batch, run.precision) == (base, micro_batch, "fp16")
    assert f"a CUDA GPU with {free_gib:.2f} GiB free" in choice.reason
    if base == "stand-in":
        assert "too little for GPT-2" in choice.reason and run.steps == 200  # the stand-in's run everywhere
    else:
        assert run.memory().peak <= FREE_SHARE * free
        assert (run.steps, run.batch_size, run.max_length, run.alpaca_52k) == (1500, 16, 256, True)
        assert run.train_config().grad_accum_steps == 16 // micro_batch
    larger = [b for b in MICRO_BATCHES if b > micro_batch]
    if base == "gpt2-medium" and larger:  # every larger micro-batch was too large
        assert all(make_run(base, t4, b).memory().peak > FREE_SHARE * free for b in larger)


def test_cuda_free_memory_is_measured_when_not_given(t4, monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (int(14.6 * 2**30), 15 * 2**30))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 0)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 0)
    assert choose_run(t4).run == make_run("gpt2-medium", t4, micro_batch=8)


def test_gpu_with_native_bf16_trains_in_bf16(monkeypatch):
    monkeypatch.setattr(train, "native_bf16", lambda device: True)
    assert choose_run("cuda", free_bytes=80 * 2**30).run.precision == "bf16"


def test_run_train_config():
    config = make_run("stand-in", "cpu").train_config(seed=7)
    assert (config.max_steps, config.batch_size, config.grad_accum_steps, config.lr) == (200, 8, 1, 2e-3)
    assert (config.warmup_steps, config.eval_interval, config.eval_windows, config.seed) == (8, 50, 32, 7)


def test_run_with_a_given_precision_needs_no_device_query(monkeypatch):
    monkeypatch.setattr(train, "native_bf16", lambda device: pytest.fail("the device was queried"))
    run = make_run("gpt2-medium", "cuda", micro_batch=8, precision="fp16")
    assert (run.micro_batch, run.batch_size, run.precision, run.steps) == (8, 16, "fp16", 1500)


def test_run_memory_is_the_estimate_for_its_base_model():
    run = make_run("stand-in", "cpu")
    shape = GPTConfig(block_size=256, n_layer=4, n_head=4, n_embd=96)
    assert base_config("stand-in") == shape
    assert run.memory() == training_memory(shape, 8, 128, "fp32", other_models=1)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: make_run("gpt3", "cpu"), "no fine-tuning run for 'gpt3'"),
        (lambda: base_config("gpt3"), "unknown base model 'gpt3'"),
        (lambda: replace(make_run("stand-in", "cpu"), micro_batch=3), "not a multiple of micro_batch=3"),
        (lambda: choose_run("cuda", free_bytes=-1), "free_bytes must be a number of bytes"),
    ],
)
def test_run_bad_input(call, message, monkeypatch):
    monkeypatch.setattr(train, "native_bf16", lambda device: False)
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------------------------------------
# Template


def test_template_with_and_without_input():
    with_input = format_prompt(RECORD)
    assert with_input.startswith("Below is an instruction that describes a task, paired with an input")
    assert with_input.endswith(
        "### Instruction:\nName the first item of the list.\n\n### Input:\ncat\ndog\n\n### Response:\n"
    )
    no_input = format_prompt({**RECORD, "input": ""})
    assert "### Input" not in no_input and "paired with an input" not in no_input
    assert no_input.endswith("\n\n### Instruction:\nName the first item of the list.\n\n### Response:\n")
    assert format_example(RECORD) == with_input + "cat"


def test_encoded_record_is_prompt_response_and_end_of_text():
    example = encode_record(RECORD, ENC)
    assert ENC.decode(example.ids[: example.prompt_length]) == format_prompt(RECORD)
    assert ENC.decode(example.ids[example.prompt_length : -1]) == "cat"
    assert example.ids[-1] == EOT


# ---------------------------------------------------------------------------------------------
# Generated tasks


def test_words_and_numbers_are_single_tokens_with_their_space():
    assert all(len(ENC.encode(" " + word)) == 1 for word in WORDS + list(NUMBERS))
    for record in make_tasks(70):  # and they always appear with it, in the input and in the answer
        for text in (record["input"], record["output"]):
            tokens = [ENC.decode([t]) for t in ENC.encode(text)]
            assert not {w for w in WORDS + list(NUMBERS)} & set(tokens)


def test_tasks_are_deterministic_distinct_and_balanced():
    records = make_tasks(700, seed=3)
    assert records == make_tasks(700, seed=3)
    assert records != make_tasks(700, seed=4)
    assert len({(r["instruction"], r["input"]) for r in records}) == 700
    validate_records(records)
    for task in TASKS:
        assert sum(r["instruction"] == task.instruction for r in records) == 100
    with pytest.raises(ValueError, match="could not draw 2000 distinct records"):
        make_tasks(2000)


def test_task_answers_are_right():
    def value(word):
        return NUMBERS.index(word) + 1

    check = {
        "first word": lambda items: f"The first word is {items[0]}.",
        "last word": lambda items: f"The last word is {items[-1]}.",
        "repeat": lambda items: f"The words are {', '.join(items)}.",
        "reverse": lambda items: f"From last to first: {', '.join(reversed(items))}.",
        "count": lambda items: f"There are {NUMBERS[len(items) - 1]} words.",
        "greatest number": lambda items: f"It is {max(items, key=value)}.",
        "least number": lambda items: f"It is {min(items, key=value)}.",
    }
    for record in make_tasks(140, seed=0):
        kind, _, listed = record["input"].partition(": ")
        items = listed.split(", ")
        assert kind in ("Words", "Numbers") and len(set(items)) == len(items)
        assert 2 <= len(items) <= (5 if kind == "Words" else 3)
        assert record["output"] == check[TASK_OF_INSTRUCTION[record["instruction"]]](items)


def test_split_is_disjoint_and_deterministic():
    records = make_tasks(100)
    train, held_out = split_records(records, held_out=20, seed=1)
    assert len(train) == 80 and len(held_out) == 20
    assert not {json.dumps(r) for r in train} & {json.dumps(r) for r in held_out}
    assert (train, held_out) == split_records(records, held_out=20, seed=1)
    with pytest.raises(ValueError, match="held_out must be between 1 and 99"):
        split_records(records, held_out=100)


def test_constant_answers_are_each_instructions_commonest_answer():
    records = [
        {"instruction": "A?", "input": "1", "output": "x"},
        {"instruction": "A?", "input": "2", "output": "y"},
        {"instruction": "A?", "input": "3", "output": "y"},
        {"instruction": "B?", "input": "1", "output": "z"},
    ]
    assert constant_answers(records) == {"A?": "y", "B?": "z"}

def test_scored_tasks_are_none_of_chapter_8s_training_tasks_and_kinds_take_turns():
    trained, _ = split_records(make_tasks(1400, seed=0), held_out=100, seed=0)
    scored = scored_tasks(70)
    key = lambda r: (r["instruction"], r["input"])  # noqa: E731
    assert not {key(r) for r in trained} & {key(r) for r in scored}
    assert len({key(r) for r in scored}) == 70
    kinds = [TASK_OF_INSTRUCTION[r["instruction"]] for r in scored]
    assert all(kinds.count(task.name) == 10 for task in TASKS)
    assert kinds[:7] == kinds[7:14]  # the same order of kinds in every turn
    assert scored_tasks(300)[:70] == scored  # more records extend the same list
    with pytest.raises(ValueError, match="count must be between 1 and"):
        scored_tasks(0)


# ---------------------------------------------------------------------------------------------
# Collate


def test_collate_pads_shifts_and_ignores_padding_targets():
    short, long = Example([1, 2, 3, EOT], prompt_length=2), Example([4, 5, 6, 7, 8, EOT], prompt_length=3)
    x, y, truncated = collate([short, long], pad_id=EOT, mask_prompt=False)
    assert truncated == 0
    assert x.tolist() == [[1, 2, 3, EOT, EOT], [4, 5, 6, 7, 8]]
    # the short example's first end-of-text is a target; the padding after it is not
    assert y.tolist() == [[2, 3, EOT, IGNORE_INDEX, IGNORE_INDEX], [5, 6, 7, 8, EOT]]


def test_collate_masks_the_prompt():
    example = Example([10, 11, 12, 13, 14, EOT], prompt_length=3)  # prompt 10 11 12, response 13 14
    _, y, _ = collate([example], pad_id=EOT, mask_prompt=True)
    assert y.tolist() == [[IGNORE_INDEX, IGNORE_INDEX, 13, 14, EOT]]  # only the response is scored


def test_collate_truncates_to_max_length_and_counts():
    examples = [Example(list(range(10)) + [EOT], 4), Example([1, 2, EOT], 1)]
    x, y, truncated = collate(examples, pad_id=EOT, max_length=6, mask_prompt=False)
    assert truncated == 1
    assert x.shape == (2, 6)
    assert x[0].tolist() == [0, 1, 2, 3, 4, 5] and y[0].tolist() == [1, 2, 3, 4, 5, 6]
    with pytest.raises(ValueError, match="at least one example"):
        collate([], pad_id=EOT)


def test_dataset_batches():
    records = make_tasks(30)
    dataset = InstructionDataset(records, ENC, max_length=40, mask_prompt=False)
    assert dataset.n_truncated == sum(len(encode_record(r, ENC).ids) - 1 > 40 for r in records) > 0
    a = dataset.sample_batch(4, torch.Generator().manual_seed(0))
    b = dataset.sample_batch(4, torch.Generator().manual_seed(0))
    assert all(torch.equal(s, t) for s, t in zip(a, b))
    assert (a[1][:, :10] != IGNORE_INDEX).all()  # unmasked: prompt tokens are targets too
    batches = dataset.eval_batches(count=10, batch_size=4)
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    assert all((y[:, :10] == IGNORE_INDEX).all() for _, y in batches)  # evaluation: responses only


# ---------------------------------------------------------------------------------------------
# Responses and scores


def always_says(token: int, block_size: int = 96) -> GPT:
    """A tiny GPT whose next token is always `token`: its last LayerNorm outputs one fixed vector."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=block_size, vocab_size=50257, n_layer=1, n_head=2, n_embd=8))
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.fill_(1.0)
        model.transformer.wte.weight[token] = 10.0  # the tied head scores `token` far above the rest
    return model


def test_respond_stops_at_end_of_text_or_the_limit():
    records = make_tasks(10)  # prompts of several lengths, generated in batches of equal length
    assert len({len(encode_record(r, ENC).ids) for r in records}) > 1
    stops = respond(always_says(EOT), ENC, records, max_new_tokens=4, batch_size=2)
    assert stops == [Response("", True)] * 10
    bang = ENC.encode("!")[0]
    goes_on = respond(always_says(bang), ENC, records, max_new_tokens=4, batch_size=2)
    assert goes_on == [Response("!!!!", False)] * 10


def test_scores():
    first, greatest = make_tasks(6)[0], make_tasks(6)[5]
    records = [first, greatest, RECORD]
    responses = [Response(first["output"] + " ", True), Response("It is two.", False), Response("cat", True)]
    scores = score_tasks(records, responses)
    assert scores.exact_match == pytest.approx(2 / 3) and scores.stop_rate == pytest.approx(2 / 3)
    assert scores.per_task == {"first word": 1.0, "greatest number": 0.0, "other": 1.0}
    assert exact_match(" cat\n", "cat") and not exact_match("cat\ndog", "cat")
    with pytest.raises(ValueError, match="one response per record"):
        score_tasks(records, responses[:2])


# ---------------------------------------------------------------------------------------------
# The Trainer on instruction batches

TINY = GPTConfig(block_size=96, vocab_size=50257, n_layer=1, n_head=2, n_embd=16)


def instruction_trainer(checkpoint_dir=None, seed=0, mask_prompt=True, **overrides):
    torch.manual_seed(seed)
    train, held_out = split_records(make_tasks(60), held_out=10)
    settings = dict(max_steps=6, batch_size=4, lr=1e-2, warmup_steps=2, eval_interval=2, eval_windows=8)
    return Trainer(
        GPT(TINY),
        InstructionDataset(train, ENC, TINY.block_size, mask_prompt),
        InstructionDataset(held_out, ENC, TINY.block_size),
        TrainConfig(**{**settings, **overrides}),
        checkpoint_dir=checkpoint_dir,
    )


def test_trainer_steps_on_instruction_batches():
    trainer = instruction_trainer(max_steps=20, eval_interval=10)
    trainer.train(progress=False)
    assert [row["step"] for row in trainer.history] == [0, 10, 20]
    assert trainer.history[-1]["val_loss"] < trainer.history[0]["val_loss"] - 1


def test_trainer_loss_skips_ignored_targets():
    trainer = instruction_trainer()
    generator_state = trainer.generator.get_state()
    x, y = trainer.global_micro_batch()  # one process: its whole batch
    trainer.generator.set_state(generator_state)
    loss, _ = trainer.train_step()
    torch.manual_seed(0)
    logits, _ = GPT(TINY)(x)  # the trainer's model before its step (no dropout)
    # the step's loss is the mean over the response targets only
    scored = y != IGNORE_INDEX
    expected = F.cross_entropy(logits[scored], y[scored])
    assert loss == pytest.approx(expected.item(), rel=1e-5)


def test_trainer_evaluation_is_the_mean_over_response_targets():
    trainer = instruction_trainer()
    losses = trainer.evaluate()
    total, count = 0.0, 0
    for x, y in trainer.val_data.eval_batches(8, 4):
        logits, _ = trainer.model(x)
        total += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
        count += (y != IGNORE_INDEX).sum().item()
    assert losses["val"] == pytest.approx(total / count, rel=1e-5)


def test_resumed_instruction_run_continues_exactly(tmp_path):
    uninterrupted = instruction_trainer()
    uninterrupted.train(progress=False)
    first = instruction_trainer(tmp_path)
    first.train(progress=False, until=3)
    first.save_checkpoint()
    continued = instruction_trainer(tmp_path, seed=1)
    resume(continued)
    continued.train(progress=False)
    assert continued.step_log == uninterrupted.step_log
    losses = [(row["train_loss"], row["val_loss"]) for row in uninterrupted.history]
    assert [(row["train_loss"], row["val_loss"]) for row in continued.history] == losses


def test_instruction_tuned_model_is_read_from_its_recipes_folder(tmp_path, monkeypatch, capsys):
    from minigpt.instruct import instruction_tuned_dir, instruction_tuned_model, recipe_key
    from minigpt.pretrained import save_pretrained

    monkeypatch.setenv("MINIGPT_CACHE", str(tmp_path))
    run = make_run("stand-in", "cpu")
    assert recipe_key(run) != recipe_key(make_run("stand-in", "cpu", micro_batch=4))  # another recipe, another folder
    torch.manual_seed(0)
    saved = GPT(TINY)
    save_pretrained(saved, instruction_tuned_dir(run), prompt_format="alpaca")
    loaded = instruction_tuned_model(run, "cpu")
    assert "read from the cache" in capsys.readouterr().out and not loaded.training
    for (name, a), (_, b) in zip(saved.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
