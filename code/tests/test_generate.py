import copy

import pytest
import torch
from torch import nn

import minigpt
from minigpt import GPT, GPTConfig, generate, stream

TINY = GPTConfig(block_size=24, vocab_size=40, n_layer=2, n_head=2, n_embd=32)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run hundreds of small steps: a second thread only adds synchronisation (10x slower on
    a busy two-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model() -> GPT:
    torch.manual_seed(0)
    model = GPT(TINY)
    with torch.no_grad():  # larger weights than the initialisation's: sharper, more varied distributions
        for p in model.parameters():
            p.mul_(4.0)
    return model.eval()


@pytest.fixture(scope="module")
def model_on_device(model, device) -> GPT:
    """The same model on the device of the tests marked cuda (the CPU unless pytest --device cuda)."""
    return copy.deepcopy(model).to(device)


def prompts(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(TINY.vocab_size, (batch, length), generator=torch.Generator().manual_seed(seed))


class CountingModel(nn.Module):
    """Greedy continuation of token i is (i + 1) % vocab: stop tokens arrive at known steps."""

    def __init__(self, vocab: int = 10):
        super().__init__()
        self.vocab = vocab
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, idx, targets=None):
        return self.scale * 10 * nn.functional.one_hot((idx + 1) % self.vocab, self.vocab).float(), None


# --- the KV cache ---------------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.parametrize("batch", [1, 3])
def test_cached_logits_equal_uncached_at_every_step(model_on_device, device, batch):
    model = model_on_device
    tokens = prompts(batch, TINY.block_size).to(device)
    full, _ = model(tokens)  # (B, T, V): every position's logits without a cache
    cache = model.make_kv_cache(batch)
    prefill, _ = model(tokens[:, :5], cache=cache)  # the prompt in one pass
    torch.testing.assert_close(prefill, full[:, :5], atol=1e-5, rtol=0)
    for t in range(5, TINY.block_size):  # then one position per step
        step, _ = model(tokens[:, t : t + 1], cache=cache)
        torch.testing.assert_close(step[:, 0], full[:, t], atol=1e-5, rtol=0)
    assert cache.length == TINY.block_size


@pytest.mark.cuda
def test_cache_accepts_several_new_positions_at_once(model_on_device, device):
    model = model_on_device
    tokens = prompts(2, 20).to(device)
    full, _ = model(tokens)
    cache = model.make_kv_cache(2)
    model(tokens[:, :7], cache=cache)
    chunk, _ = model(tokens[:, 7:15], cache=cache)  # 8 new positions: each sees the past and itself only
    torch.testing.assert_close(chunk, full[:, 7:15], atol=1e-5, rtol=0)


def test_cache_errors_and_memory(model):
    cache = model.make_kv_cache(2, max_len=6)
    assert cache.bytes_per_token == 2 * TINY.n_layer * TINY.n_embd * 4  # keys and values, float32
    model(prompts(2, 4), cache=cache)
    with pytest.raises(ValueError, match="holds 4 of at most 6 positions"):
        model(prompts(2, 3), cache=cache)
    with pytest.raises(ValueError, match="holds 2 sequences"):
        model(prompts(3, 1), cache=cache)
    with pytest.raises(ValueError, match="block_size"):
        model.make_kv_cache(1, max_len=TINY.block_size + 1)
    cache.reset()
    assert cache.length == 0


def test_last_only_returns_the_last_positions_logits(model):
    tokens = prompts(2, 10)
    full, _ = model(tokens)
    last, _ = model(tokens, last_only=True)
    assert last.shape == (2, 1, TINY.vocab_size)
    torch.testing.assert_close(last[:, 0], full[:, -1])
    with pytest.raises(ValueError, match="last_only"):
        model(tokens, tokens, last_only=True)


@pytest.mark.cuda
@pytest.mark.parametrize("batch", [1, 4])
def test_cached_generation_equals_uncached(model_on_device, batch):
    model = model_on_device
    idx = prompts(batch, 6)
    cached = generate(model, idx, 15, temperature=0)
    uncached = generate(model, idx, 15, temperature=0, use_cache=False)
    assert torch.equal(cached.tokens, uncached.tokens)
    # the same holds for sampling with the same seed (the draws see the same probabilities)
    a = generate(model, idx, 15, top_k=10, generator=torch.Generator().manual_seed(3))
    b = generate(model, idx, 15, top_k=10, generator=torch.Generator().manual_seed(3), use_cache=False)
    assert torch.equal(a.tokens, b.tokens)


def test_generation_past_block_size_slides_the_window_in_both_paths(model):
    idx = prompts(2, 10)
    n = 3 * TINY.block_size  # far past the 24 positions the model has
    cached = generate(model, idx, n, temperature=0)
    uncached = generate(model, idx, n, temperature=0, use_cache=False)
    assert cached.tokens.shape == (2, 10 + n)
    assert torch.equal(cached.tokens, uncached.tokens)
    # and each new token is the argmax given exactly the last block_size tokens
    t = TINY.block_size + 30
    window = cached.tokens[:, t - TINY.block_size : t]
    assert torch.equal(model(window)[0][:, -1].argmax(-1), cached.tokens[:, t])


def test_a_prompt_longer_than_the_context_is_cropped_for_the_model_but_returned_whole(model):
    long_prompt = prompts(1, TINY.block_size + 9)
    out = generate(model, long_prompt, 5, temperature=0)
    assert torch.equal(out.tokens[:, : long_prompt.shape[1]], long_prompt)
    cropped = generate(model, long_prompt[:, -TINY.block_size :], 5, temperature=0)
    assert torch.equal(out.tokens[:, -5:], cropped.tokens[:, -5:])


def test_greedy_picks_the_argmax_of_the_full_context(model):
    out = generate(model, prompts(2, 4), 8, temperature=0, use_cache=False)
    for t in range(4, 12):
        expected = model(out.tokens[:, :t])[0][:, -1].argmax(-1)
        assert torch.equal(out.tokens[:, t], expected)


@pytest.mark.cuda
def test_each_row_of_a_batch_is_generated_as_if_alone(model_on_device):
    model = model_on_device
    idx = prompts(3, 5, seed=7)
    batch = generate(model, idx, 12, temperature=0)
    for row in range(3):
        alone = generate(model, idx[row : row + 1], 12, temperature=0)
        assert torch.equal(batch.tokens[row], alone.tokens[0])


# --- stop tokens ----------------------------------------------------------------------------------


@pytest.mark.cuda
def test_batched_stop_tokens_end_each_row_on_its_own(device):
    model = CountingModel(10).to(device)
    idx = torch.tensor([[3], [7], [0]])  # reach the stop token 9 after 6, 2 and 9 new tokens
    out = generate(model, idx, 8, temperature=0, stop_tokens=9)
    assert out.lengths.tolist() == [7, 3, 9]  # prompt + new tokens (stop token included); row 2 never stops
    assert out.rows() == [[3, 4, 5, 6, 7, 8, 9], [7, 8, 9], [0, 1, 2, 3, 4, 5, 6, 7, 8]]
    assert out.tokens.tolist()[1] == [
        7,
        8,
        9,
        9,
        9,
        9,
        9,
        9,
        9,
    ]  # a finished row is padded with its stop token


def test_generation_ends_early_once_every_row_has_stopped():
    model = CountingModel(10)
    out = generate(model, torch.tensor([[5], [6]]), 50, temperature=0, stop_tokens=[8, 9])
    assert out.rows() == [[5, 6, 7, 8], [6, 7, 8]]
    assert out.tokens.shape == (2, 4)  # as wide as the longest row, not 1 + 50


@pytest.mark.cuda
def test_sampled_rows_stay_finished_and_lengths_are_right(model_on_device):
    model = model_on_device
    idx = prompts(8, 3, seed=1)
    stop = [0, 1, 2]  # 3 of 40 tokens: rows end at different steps
    out = generate(
        model, idx, 40, temperature=1.5, stop_tokens=stop, generator=torch.Generator().manual_seed(0)
    )
    lengths = out.lengths.tolist()
    assert len(set(lengths)) > 2, "the test needs rows that end at different steps"
    for row, length in zip(out.tokens.tolist(), lengths):
        new = row[3:length]
        assert all(t not in stop for t in new[:-1])  # no stop token before the last one
        assert new[-1] in stop or length == 3 + 40
        assert all(t == row[length - 1] for t in row[length:])  # after it: only padding
    again = generate(
        model, idx, 40, temperature=1.5, stop_tokens=stop, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(out.tokens, again.tokens) and torch.equal(out.lengths, again.lengths)
    other = generate(
        model, idx, 40, temperature=1.5, stop_tokens=stop, generator=torch.Generator().manual_seed(1)
    )
    assert not torch.equal(out.tokens[:, :10], other.tokens[:, :10])


# --- streaming, other models, bad input --------------------------------------------------------------


@pytest.mark.cuda
def test_stream_yields_what_generate_returns(model_on_device):
    model = model_on_device
    idx = prompts(1, 4, seed=2)
    options = dict(temperature=0.8, top_p=0.9, stop_tokens=[5, 6, 7])
    out = generate(model, idx, 30, generator=torch.Generator().manual_seed(4), **options)
    streamed = list(stream(model, idx[0].tolist(), 30, generator=torch.Generator().manual_seed(4), **options))
    row = out.rows()[0][4:]
    assert streamed == (row[:-1] if row[-1] in (5, 6, 7) else row)  # the stop token is not yielded


def test_generate_works_for_the_bigram_model_and_restores_training_mode():
    model = minigpt.BigramLanguageModel(12).train()
    out = generate(model, torch.zeros(2, 1, dtype=torch.long), 30, generator=torch.Generator().manual_seed(0))
    assert out.tokens.shape == (2, 31) and model.training
    assert out.lengths.tolist() == [31, 31]


def test_generation_ignores_dropout(model):
    dropout_model = GPT(GPTConfig(**{**TINY.to_dict(), "dropout": 0.5}))
    dropout_model.load_state_dict(model.state_dict())
    dropout_model.train()
    out = generate(dropout_model, prompts(2, 4), 10, temperature=0)
    assert torch.equal(out.tokens, generate(model, prompts(2, 4), 10, temperature=0).tokens)
    assert dropout_model.training


def test_zero_new_tokens_returns_the_prompt(model):
    idx = prompts(2, 4)
    out = generate(model, idx, 0)
    assert torch.equal(out.tokens, idx) and out.lengths.tolist() == [4, 4]


@pytest.mark.parametrize(
    "idx, options, error, message",
    [
        (torch.tensor([1, 2, 3]), {}, ValueError, r"shape \(batch, time\)"),
        ([[1, 2, 3]], {}, TypeError, "tensor"),
        (torch.tensor([[1.0, 2.0]]), {}, TypeError, "integer token ids"),
        (torch.zeros(2, 0, dtype=torch.long), {}, ValueError, "prompt is empty"),
        (torch.tensor([[1, 2]]), dict(max_new_tokens=-1), ValueError, "max_new_tokens"),
        (torch.tensor([[1, 2]]), dict(temperature=-1.0), ValueError, "temperature"),
        (torch.tensor([[1, 2]]), dict(top_p=0.0), ValueError, "top_p"),
        (torch.tensor([[1, 2]]), dict(top_k=0), ValueError, "top_k"),
        (torch.tensor([[1, 2]]), dict(stop_tokens=[-1]), ValueError, "stop tokens"),
    ],
)
def test_bad_input_gets_a_clear_error(model, idx, options, error, message):
    options = {"max_new_tokens": 3, **options}
    with pytest.raises(error, match=message):
        generate(model, idx, **options)


def test_stream_takes_one_prompt(model):
    with pytest.raises(ValueError, match="one prompt"):
        stream(model, prompts(2, 3), 3)  # raises at the call, before any token
