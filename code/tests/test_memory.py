"""The training-memory estimate against what a training step really allocates on the CPU.

The measurement (`peak_allocated`): the highest running total of the allocations and frees that
torch.profiler records during one `Trainer.train_step` (its memory records, `profile_memory=True`),
plus the bytes held when the step starts (the weights and AdamW's state, counted from the live
tensors). The step is the second of the run, so that AdamW's moments exist, as in every later step.
"""

import pytest
import torch

from minigpt import GPT, GPTConfig
from minigpt.memory import (
    MemoryEstimate,
    activation_bytes,
    free_memory,
    gib,
    memory_table,
    parameter_count,
    peak_allocated,
    training_memory,
)
from minigpt.train import TrainConfig, Trainer


class RandomBatches:
    """Batches of random token ids of one shape, as a Trainer's batch source."""

    def __init__(self, seq_len: int, vocab_size: int):
        self.seq_len, self.vocab_size = seq_len, vocab_size

    def sample_batch(self, batch_size, generator):
        x = torch.randint(self.vocab_size, (batch_size, self.seq_len), generator=generator)
        return x, x.roll(-1, dims=1)

    def eval_batches(self, count, batch_size):
        return []


def measured_peak(config: GPTConfig, batch_size: int, seq_len: int, precision: str) -> tuple[int, int]:
    """(bytes held when a training step starts, the most it allocates above them) on the CPU."""
    torch.manual_seed(0)
    data = RandomBatches(seq_len, config.vocab_size)
    train = TrainConfig(max_steps=4, batch_size=batch_size, warmup_steps=1, precision=precision)
    trainer = Trainer(GPT(config), data, data, train, device="cpu")
    trainer.train_step()  # the first step creates AdamW's moments
    held = list(trainer.model.parameters())
    held += [t for state in trainer.optimizer.state.values() for t in state.values() if torch.is_tensor(t)]
    at_start = sum(t.numel() * t.element_size() for t in held)
    return at_start, peak_allocated(trainer.train_step, "cpu")


@pytest.mark.parametrize(
    "shape, batch_size, seq_len, precision, dominant",
    [
        # GPT-2's vocabulary on a narrow model: the logits and loss are most of it (as for the stand-in)
        (dict(n_layer=2, n_head=4, n_embd=64, vocab_size=50257), 4, 64, "fp32", "logits_and_loss"),
        # a small vocabulary: the activations are most of it
        (dict(n_layer=4, n_head=4, n_embd=256, vocab_size=64), 8, 128, "fp32", "activations"),
        # the same under bf16 autocast (the CPU's; a GPU's fp16 keeps the same tensors)
        (dict(n_layer=4, n_head=4, n_embd=256, vocab_size=64), 8, 128, "bf16", "activations"),
        (dict(n_layer=2, n_head=4, n_embd=64, vocab_size=50257), 4, 64, "bf16", "logits_and_loss"),
        # a few short sequences on a wide model: the gradients outgrow the activations
        (dict(n_layer=2, n_head=4, n_embd=512, vocab_size=64), 2, 16, "fp32", "gradients"),
        # the same with GPT-2's vocabulary: the tied matrix's gradient from the head and the embedding
        (dict(n_layer=2, n_head=4, n_embd=256, vocab_size=50257), 1, 16, "fp32", "gradients"),
    ],
)
def test_estimate_is_within_25_percent_of_the_measured_peak(shape, batch_size, seq_len, precision, dominant):
    config = GPTConfig(block_size=128, **shape)
    estimate = training_memory(config, batch_size, seq_len, precision)
    at_start, during_step = measured_peak(config, batch_size, seq_len, precision)
    parts = estimate.parts()
    assert max(("activations", "logits_and_loss", "gradients"), key=parts.get) == dominant
    held = estimate.weights + estimate.adamw_moments
    assert held <= at_start <= held + 1000  # and AdamW's step counters, a number per parameter tensor
    assert abs(estimate.during_step - during_step) <= 0.25 * during_step, (estimate.during_step, during_step)
    measured = at_start + during_step
    assert abs(estimate.peak - measured) <= 0.25 * measured, (estimate.peak, measured, parts)


def test_parameter_count_is_the_models():
    for config in (
        GPTConfig(),
        GPTConfig(n_layer=24, n_head=16, n_embd=1024),
        GPTConfig(block_size=16, vocab_size=100, n_layer=2, n_head=2, n_embd=32, bias=False),
    ):
        with torch.device("meta"):
            model = GPT(config)
        assert parameter_count(config) == model.num_params()


def test_parts_and_peak():
    config = GPTConfig(n_layer=24, n_head=16, n_embd=1024)  # GPT-2 medium
    fp32 = training_memory(config, 8, 256, "fp32")
    fp16 = training_memory(config, 8, 256, "fp16", other_models=1)
    params = 354_823_168
    assert (fp32.weights, fp32.adamw_moments) == (4 * params, 8 * params)
    assert fp32.gradients == 4 * params + 2 * 4 * 50257 * 1024  # and the tied matrix's two gradients, summed
    assert fp32.autocast_copies == 0 and fp16.autocast_copies == 2 * (12 * 1024**2 * 24 + 50257 * 1024)
    assert fp16.other_models == 4 * params
    assert fp32.logits_and_loss == fp16.logits_and_loss == 8 * 256 * 50257 * 12  # in float32 either way
    assert fp16.activations < fp32.activations
    start = fp16.autocast_copies + fp16.activations + fp16.logits_and_loss
    assert fp16.peak == fp16.weights + fp16.other_models + fp16.adamw_moments + max(start, fp16.gradients)
    table = fp16.table()
    assert table.splitlines()[-1].split() == ["estimated", "peak", f"{fp16.peak / 2**30:.2f}"]
    assert "other models kept" in table and gib(fp16.peak) == f"{fp16.peak / 2**30:.2f} GiB"
    assert "fp16/bf16 copies" in table and "fp16/bf16 copies" not in fp32.table()  # no line for 0 bytes
    assert "8x256 fp16" in table


def test_activations_grow_with_batch_and_length():
    config = GPTConfig(block_size=256, n_layer=4, n_head=4, n_embd=96)
    one = activation_bytes(config, 1, 128, "fp32")
    assert activation_bytes(config, 8, 128, "fp32") == 8 * one
    assert activation_bytes(config, 1, 256, "fp32") == 2 * one


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(batch_size=8, seq_len=64, precision="auto"), "resolve 'auto'"),
        (dict(batch_size=8, seq_len=64, precision="fp8"), "precision must be one of fp32, bf16, fp16"),
        (dict(batch_size=0, seq_len=64), "batch_size must be a positive integer, got 0"),
        (dict(batch_size=8, seq_len=2.5), "seq_len must be a positive integer, got 2.5"),
        (dict(batch_size=8, seq_len=512), "seq_len=512 is longer than the model's block_size=256"),
        (dict(batch_size=8, seq_len=64, other_models=-1), "other_models must be a count"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        training_memory(GPTConfig(block_size=256, n_layer=2, n_head=2, n_embd=32), **kwargs)


def test_peak_allocated_on_the_cpu_is_what_a_step_holds_at_once():
    def step():
        a = torch.ones(1_000_000)  # 4 MB
        b = torch.ones(2_000_000)  # 8 MB: 12 MB at once
        del a, b
        torch.ones(3_000_000)  # 12 MB again, after both were freed

    assert peak_allocated(step, "cpu") == 12_000_000
    assert peak_allocated(step, "mps") is None  # not measured there


def test_free_memory_is_measured_on_cuda_only(monkeypatch):
    assert free_memory("cpu") is None and free_memory(torch.device("mps")) is None
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (10 * 2**30, 16 * 2**30))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 3 * 2**30)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 2 * 2**30)
    assert free_memory("cuda") == 11 * 2**30  # the driver's free memory and what the allocator holds unused


def test_estimate_is_a_value():
    estimate = MemoryEstimate(8, 64, "fp32", 1, 2, 3, 4, 5, 6, other_models=7)
    assert estimate.peak == 1 + 2 + 7 + max(3 + 4 + 5, 6)
    assert estimate.parts() == dict(
        weights=1, other_models=7, adamw_moments=2, autocast_copies=3, activations=4, logits_and_loss=5, gradients=6
    )


def test_table_of_several_estimates():
    shape = GPTConfig(block_size=256, n_layer=4, n_head=4, n_embd=96)
    small, large = training_memory(shape, 8, 128, "fp32"), training_memory(shape, 16, 256, "bf16")
    lines = memory_table({"small": small, "large": large}).splitlines()
    assert lines[0].split() == ["small", "large"] and lines[1].split()[-4:] == ["8x128", "fp32", "16x256", "bf16"]
    peak = lines[-1].split()
    assert peak[:2] == ["estimated", "peak"] and peak[2:] == [f"{e.peak / 2**30:.2f}" for e in (small, large)]
    assert len(lines) == 2 + 6 + 1  # every part but other_models is in use in one column or the other
