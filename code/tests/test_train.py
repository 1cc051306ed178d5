import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import minigpt
import minigpt.cli as cli
from minigpt import GPT, GPTConfig
from minigpt.checkpoint import checkpoint_model, latest_checkpoint, load_weights, resume
from minigpt.train import TrainConfig, Trainer, evaluate_loss, lr_at, make_optimizer, resolve_precision

MODEL = GPTConfig(block_size=16, vocab_size=40, n_layer=2, n_head=2, n_embd=32, dropout=0.1)


def tokens(n=5000, seed=0):
    """A learnable sequence over 40 ids: mostly i -> i + 1, with some noise."""
    g = torch.Generator().manual_seed(seed)
    steps = torch.where(torch.rand(n, generator=g) < 0.8, 1, torch.randint(40, (n,), generator=g))
    return torch.cumsum(steps, 0) % 40


def make_trainer(checkpoint_dir=None, model_config=MODEL, seed=0, device="cpu", **overrides):
    torch.manual_seed(seed)
    settings = dict(max_steps=12, batch_size=4, lr=3e-3, warmup_steps=3, eval_interval=4, eval_windows=8)
    config = TrainConfig(**{**settings, **overrides})
    train, val = tokens(), tokens(800, seed=1)
    return Trainer(GPT(model_config), train, val, config, device=device, checkpoint_dir=checkpoint_dir)


def params(trainer):
    return [p.detach().clone() for p in trainer.model.parameters()]


def test_schedule_values_at_key_steps():
    config = TrainConfig(max_steps=1000, lr=1e-3, min_lr=1e-4, warmup_steps=100)
    assert lr_at(0, config) == pytest.approx(1e-5)  # warmup starts at lr / warmup_steps
    assert lr_at(49, config) == pytest.approx(5e-4)
    assert lr_at(99, config) == pytest.approx(1e-3)  # end of warmup: the peak
    assert lr_at(550, config) == pytest.approx(5.5e-4)  # halfway through the cosine: the midpoint
    assert lr_at(1000, config) == pytest.approx(1e-4)  # the floor
    assert lr_at(5000, config) == pytest.approx(1e-4)
    lrs = [lr_at(s, config) for s in range(100, 1001)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))  # monotone decay after warmup
    assert TrainConfig(lr=3e-3).final_lr == pytest.approx(3e-4)  # default floor: lr / 10


def test_weight_decay_only_on_matrices():
    model = GPT(MODEL)
    decayed, plain = make_optimizer(model, TrainConfig(weight_decay=0.1), torch.device("cpu")).param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decayed["params"]) and all(p.dim() == 1 for p in plain["params"])
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))


def test_gradients_of_4x8_equal_1x32():
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=16, vocab_size=40, n_layer=2, n_head=2, n_embd=32))
    x, y = minigpt.get_batch(tokens(), 16, 32, torch.Generator().manual_seed(0))

    def loss_of(xb, yb):
        logits, _ = model(xb)
        return F.cross_entropy(logits.flatten(0, 1), yb.flatten())

    loss_of(x, y).backward()  # one batch of 32
    big = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    for i in range(4):  # four micro-batches of 8, each loss divided by 4, gradients summed
        (loss_of(x[i * 8 : (i + 1) * 8], y[i * 8 : (i + 1) * 8]) / 4).backward()
    for accumulated, reference in zip((p.grad for p in model.parameters()), big):
        torch.testing.assert_close(accumulated, reference, rtol=1e-4, atol=1e-6)


@pytest.mark.cuda
def test_trainer_steps_with_accumulation_equal_steps_with_the_large_batch(device):
    no_dropout = GPTConfig(**{**MODEL.to_dict(), "dropout": 0.0})
    # fp32 on every device, as on the CPU: the tolerances below are set for fp32 arithmetic
    same = dict(model_config=no_dropout, max_steps=5, precision="fp32", device=device)
    accumulated = make_trainer(batch_size=8, grad_accum_steps=4, **same)
    large = make_trainer(batch_size=32, grad_accum_steps=1, **same)
    assert accumulated.tokens_per_step == large.tokens_per_step
    for _ in range(5):
        loss_a, _ = accumulated.train_step()
        loss_b, _ = large.train_step()
        assert loss_a == pytest.approx(loss_b, rel=1e-5)
    for a, b in zip(params(accumulated), params(large)):  # Adam amplifies rounding in tiny gradients,
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # hence an absolute tolerance


# (compute capability, expected choice): T4 (Colab's free GPU) and V100 only emulate bf16
GPUS = {"T4": ((7, 5), "fp16"), "V100": ((7, 0), "fp16"), "A100": ((8, 0), "bf16"), "H100": ((9, 0), "bf16")}


@pytest.mark.parametrize("gpu", GPUS)
def test_auto_precision_is_bf16_only_where_the_gpu_computes_in_it(monkeypatch, gpu):
    capability, expected = GPUS[gpu]
    cuda = torch.device("cuda")

    def is_bf16_supported(including_emulation=True):  # as PyTorch answers: emulation counts by default
        return capability >= (8, 0) or including_emulation

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert resolve_precision("auto", cuda) == expected
    # An older PyTorch, whose is_bf16_supported takes no argument: the compute capability decides.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert resolve_precision("auto", cuda) == expected
    assert resolve_precision("fp32", cuda) == "fp32"  # an explicit choice is kept


def test_auto_precision_off_cuda_is_fp32():
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", torch.device("mps")) == "fp32"


def test_evaluation_is_fp32_whatever_the_training_precision():
    no_dropout = GPTConfig(**{**MODEL.to_dict(), "dropout": 0.0})
    trainer = make_trainer(model_config=no_dropout, precision="bf16")  # CPU autocast to bf16
    trainer.train(progress=False, until=4)
    starts = trainer.eval_starts["val"]
    fp32 = evaluate_loss(trainer.model, trainer.val_data, 16, starts, trainer.config.batch_size)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = evaluate_loss(trainer.model, trainer.val_data, 16, starts, trainer.config.batch_size)
    assert trainer.history[-1]["val_loss"] == trainer.evaluate()["val"] == fp32
    assert bf16 != fp32  # so the equality above tells the two apart


@pytest.mark.cuda
def test_training_lowers_the_loss_and_records_history(device):
    trainer = make_trainer(max_steps=40, eval_interval=20, device=device)  # on a GPU: fp16 or bf16 autocast
    history = trainer.train(progress=False)
    assert [row["step"] for row in history] == [0, 20, 40]
    assert history[-1]["val_loss"] < history[0]["val_loss"] - 0.3
    assert history[-1]["tokens"] == 40 * 4 * 16


@pytest.mark.cuda
def test_resumed_run_continues_exactly(tmp_path, device):
    straight = make_trainer(device=device)
    straight.train(progress=False)

    interrupted = make_trainer(tmp_path, device=device)
    interrupted.train(progress=False, until=6)  # stop halfway, as a crash after a checkpoint would
    interrupted.save_checkpoint()
    del interrupted

    resumed = make_trainer(tmp_path, seed=99, device=device)  # a new process: other initial weights and RNG
    torch.manual_seed(12345)
    resume(resumed)
    assert resumed.step == 6
    resumed.train(progress=False)
    assert resumed.history == [
        {**row, "seconds": r["seconds"]} for row, r in zip(straight.history, resumed.history)
    ]
    for a, b in zip(params(resumed), params(straight)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # bit for bit on the CPU


def test_checkpoint_is_safetensors_and_loads_into_an_equal_model(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=4)
    trainer.train(progress=False)
    checkpoint = trainer.save_checkpoint()
    assert latest_checkpoint(tmp_path) == checkpoint
    assert sorted(p.name for p in checkpoint.iterdir()) == ["config.json", "model.safetensors", "state.pt"]
    loaded = checkpoint_model(checkpoint).eval()
    x = tokens(32)[None, :16]
    torch.testing.assert_close(loaded(x)[0], trainer.model.eval()(x)[0])
    assert loaded.lm_head.weight is loaded.transformer.wte.weight  # tying survives the round trip


def test_a_crash_during_save_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path, max_steps=8)
    trainer.train(progress=False, until=4)
    first = trainer.save_checkpoint()
    trainer.train(progress=False)

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(torch, "save", crash)  # weights and config are written, then this fails
    with pytest.raises(OSError, match="simulated"):
        trainer.save_checkpoint()
    monkeypatch.undo()

    assert latest_checkpoint(tmp_path) == first  # `latest` still names the complete checkpoint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", first.name]  # no half-written folder
    restored = make_trainer(tmp_path, max_steps=8)
    resume(restored)
    assert restored.step == 4


def test_resuming_into_a_different_configuration_is_a_clear_error(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=2)
    trainer.train(progress=False)
    checkpoint = trainer.save_checkpoint()
    wider = make_trainer(tmp_path, model_config=GPTConfig(**{**MODEL.to_dict(), "n_embd": 64}))
    with pytest.raises(ValueError, match=r"different model configuration.*'n_embd': \(32, 64\)"):
        resume(wider)
    with pytest.raises(
        ValueError, match=r"transformer\.wte\.weight: checkpoint \(40, 32\), model \(40, 64\)"
    ):
        load_weights(wider.model, checkpoint / "model.safetensors")


def test_corpus_shorter_than_one_window_is_a_clear_error():
    with pytest.raises(
        ValueError, match="the training data has 10 tokens, fewer than one window of block_size=16"
    ):
        Trainer(GPT(MODEL), torch.arange(10), tokens(800), TrainConfig())


def test_token_files_round_trip_as_uint16(tmp_path):
    ids = np.array([0, 1, 50256, 65535])
    path = minigpt.data.write_tokens(ids, tmp_path / "t.bin")
    assert path.stat().st_size == 8  # two bytes a token
    assert minigpt.data.read_tokens(path).tolist() == ids.tolist()
    with pytest.raises(ValueError, match="uint16"):
        minigpt.data.write_tokens([70000], tmp_path / "bad.bin")


def test_ddp_with_two_processes_matches_one_process_with_the_same_global_batch(tmp_path):
    """Two CPU processes (gloo) with 4 windows each against one process with 8: the same windows,
    so the same losses up to float rounding in the gradient all-reduce (tolerance 1e-4)."""
    common = [
        "--data",
        "shakespeare",
        "--tokenizer",
        "char",
        "--n-layer",
        "2",
        "--n-head",
        "2",
        "--n-embd",
        "32",
        "--block-size",
        "32",
        "--max-steps",
        "20",
        "--eval-interval",
        "5",
        "--eval-windows",
        "16",
        "--warmup-steps",
        "5",
        "--lr",
        "3e-3",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single, double = tmp_path / "single.json", tmp_path / "ddp.json"
    subprocess.run(
        [sys.executable, "-m", "minigpt", "train", *common, "--batch-size", "8", "--history-json", str(single)],
        check=True,
        env=env,
        capture_output=True,
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            "--standalone",
            "-m",
            "minigpt",
            "train",
            *common,
            "--batch-size",
            "4",
            "--history-json",
            str(double),
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    one, two = json.loads(single.read_text()), json.loads(double.read_text())
    assert [r["step"] for r in one] == [r["step"] for r in two] == [0, 5, 10, 15, 20]
    assert one[-1]["val_loss"] < one[0]["val_loss"] - 0.5  # it trained
    for a, b in zip(one, two):
        assert b["tokens"] == a["tokens"]
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-4)
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)


@pytest.mark.parametrize("gpus", [0, 1])
def test_torchrun_with_more_processes_than_gpus_is_a_clear_error(monkeypatch, gpus):
    """Process 1 of `torchrun --nproc_per_node=2` on a machine with one GPU (Colab) or none."""
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    with pytest.raises(SystemExit, match=f"this machine has {gpus}: .*--device cpu"):
        cli._process_device("cuda" if gpus == 0 else None)


def test_command_line_saves_and_resumes_a_run(tmp_path):
    args = [
        sys.executable,
        "-m",
        "minigpt",
        "train",
        "--data",
        "shakespeare",
        "--tokenizer",
        "char",
        "--n-layer",
        "1",
        "--n-head",
        "2",
        "--n-embd",
        "16",
        "--block-size",
        "16",
        "--batch-size",
        "4",
        "--eval-windows",
        "8",
        "--eval-interval",
        "3",
        "--out",
        str(tmp_path / "run"),
    ]
    first = subprocess.run([*args, "--max-steps", "6"], check=True, capture_output=True, text=True)
    assert "from step 0" in first.stdout
    assert latest_checkpoint(tmp_path / "run" / "checkpoints").name == "step_000006"
    again = subprocess.run(
        [*args, "--max-steps", "6", "--resume"], check=True, capture_output=True, text=True
    )
    assert "from step 6" in again.stdout  # nothing left to do: the run was complete
    missing = subprocess.run([*args[:-2], "--resume"], capture_output=True, text=True)
    assert missing.returncode != 0 and "--resume needs --out" in missing.stderr


class FixedBatches:
    """A BatchSource that hands out the given (global) batches in turn."""

    def __init__(self, batches):
        self.batches, self.drawn = batches, 0

    def sample_batch(self, batch_size, generator):
        batch = self.batches[self.drawn % len(self.batches)]
        self.drawn += 1
        assert len(batch[0]) == batch_size
        return batch

    def eval_batches(self, count, batch_size):
        return self.batches[:1]


NO_DROPOUT = GPTConfig(**{**MODEL.to_dict(), "dropout": 0.0})
SCORED = ([16, 13], [5, 0], [0, 0])  # scored targets in each row of three padded micro-batches


def padded_micro_batches():
    """Three micro-batches of two 16-token rows, as padded instruction batches: targets of -100 after
    each row's scored ones. They hold 29, 5 and 0 targets: the last is all masked."""
    g = torch.Generator().manual_seed(0)
    batches = []
    for scored in SCORED:
        x, y = torch.randint(40, (2, 16), generator=g), torch.randint(40, (2, 16), generator=g)
        for row, n in enumerate(scored):
            y[row, n:] = -100
        batches.append((x, y))
    return batches


def uneven_trainer(batch_size=2):
    torch.manual_seed(0)
    config = TrainConfig(
        max_steps=1, batch_size=batch_size, grad_accum_steps=3, grad_clip=None, precision="fp32", warmup_steps=1
    )
    batches = FixedBatches(padded_micro_batches())
    return Trainer(GPT(NO_DROPOUT), batches, batches, config)


def step_gradients(trainer):
    """(the step's loss, each parameter's gradient as the optimizer receives it)."""
    grads, step = {}, trainer.optimizer.step

    def capture(*args, **kwargs):
        grads.update({name: p.grad.clone() for name, p in trainer.model.named_parameters()})
        return step(*args, **kwargs)

    trainer.optimizer.step = capture
    loss, _ = trainer.train_step()
    return loss, grads


def one_batch_gradients():
    """The loss and gradients of one batch holding all six rows: the mean over its 34 targets."""
    torch.manual_seed(0)
    model = GPT(NO_DROPOUT)
    x, y = (torch.cat(parts) for parts in zip(*padded_micro_batches()))  # (6, 16) each
    logits, _ = model(x)
    loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
    loss.backward()
    return loss.item(), {name: p.grad for name, p in model.named_parameters()}


def largest_difference(grads, reference):
    return max((grads[name] - reference[name]).abs().max().item() for name in reference)


def test_uneven_micro_batches_give_the_gradient_of_one_batch_holding_them_all():
    """Accumulation weighs each micro-batch by its scored targets (29, 5 and 0), not equally: the
    step equals one batch of all six rows. The all-masked micro-batch adds nothing and no NaN."""
    loss, grads = step_gradients(uneven_trainer())
    reference_loss, reference = one_batch_gradients()
    assert loss == pytest.approx(reference_loss, rel=1e-6)
    difference = largest_difference(grads, reference)
    scale = max(g.abs().max().item() for g in reference.values())
    print(f"accumulated against one batch: largest gradient difference {difference:.1e} (largest entry {scale:.1e})")
    assert difference < 1e-6 * scale
    # What averaging the three micro-batch means would have given: NaN, from the all-masked one.
    means = [F.cross_entropy(GPT(NO_DROPOUT)(x)[0].flatten(0, 1), y.flatten()) for x, y in padded_micro_batches()]
    assert torch.isnan(means[2])


def test_a_step_whose_targets_are_all_masked_is_a_clear_error():
    trainer = uneven_trainer()
    trainer.train_data = FixedBatches(padded_micro_batches()[2:])  # only the all-masked micro-batch
    with pytest.raises(ValueError, match="every target of its 3 micro-batch.* is masked"):
        trainer.train_step()


def ddp_gradients_worker(rank: int, world_size: int, init_file: str, out_file: str) -> None:
    """One process of the DDP test: one row of each global micro-batch; process 0 saves the gradients."""
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        loss, grads = step_gradients(uneven_trainer(batch_size=1))
        if rank == 0:
            torch.save({"loss": torch.tensor(loss), **grads}, out_file)
    finally:
        torch.distributed.destroy_process_group()


def test_ddp_with_uneven_micro_batches_gives_the_gradient_of_one_batch(tmp_path):
    """Two gloo processes, each with one row of every micro-batch: process 0 scores 16, 5 and 0
    targets, process 1 scores 13, 0 and 0. DDP's average, scaled by the step's 34 targets, is still
    the gradient of one batch holding all six rows."""
    out = tmp_path / "grads.pt"
    torch.multiprocessing.spawn(ddp_gradients_worker, args=(2, str(tmp_path / "init"), str(out)), nprocs=2)
    saved = torch.load(out, weights_only=True)
    reference_loss, reference = one_batch_gradients()
    assert saved.pop("loss").item() == pytest.approx(reference_loss, rel=1e-6)
    difference = largest_difference(saved, reference)
    scale = max(g.abs().max().item() for g in reference.values())
    print(f"two DDP processes against one batch: largest gradient difference {difference:.1e}")
    assert difference < 1e-6 * scale


class WeightedWindows:
    """A BatchSource of (x, y, weight) batches: a batch of three tensors, for a loss of one's own."""

    def __init__(self, data):
        self.data = data

    def sample_batch(self, batch_size, generator):
        x, y = minigpt.get_batch(self.data, MODEL.block_size, batch_size, generator)
        return x, y, torch.rand(batch_size, generator=generator)

    def eval_batches(self, count, batch_size):
        g = torch.Generator().manual_seed(0)
        return [self.sample_batch(batch_size, g) for _ in range(count // batch_size)]


def weighted_loss(model, batch):
    x, y, weight = batch
    logits, _ = model(x)  # (B, T, V)
    per_sequence = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(dim=1)  # (B, T) -> (B,)
    return (weight * per_sequence).mean()


def test_a_loss_function_of_ones_own_trains_and_evaluates_on_its_batches():
    torch.manual_seed(0)
    config = TrainConfig(max_steps=2, batch_size=4, eval_interval=2, eval_windows=8, precision="fp32")
    train, val = WeightedWindows(tokens()), WeightedWindows(tokens(800, seed=1))
    seen = []

    def loss_fn(model, batch):
        seen.append([tuple(t.shape) for t in batch])
        return weighted_loss(model, batch)

    trainer = Trainer(GPT(MODEL), train, val, config, loss_fn=loss_fn)
    loss, _ = trainer.train_step()
    assert seen == [[(4, 16), (4, 16), (4,)]] and np.isfinite(loss)  # the three tensors, one micro-batch
    losses = trainer.evaluate()
    trainer.model.eval()
    with torch.no_grad():
        by_hand = [weighted_loss(trainer.model, batch).item() for batch in val.eval_batches(8, 4)]
    assert losses["val"] == pytest.approx(sum(by_hand) / len(by_hand), rel=1e-6)
