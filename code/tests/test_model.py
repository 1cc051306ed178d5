import math

import pytest
import torch
import torch.nn.functional as F

from minigpt import GPT, GPTConfig, set_seed
from minigpt.model import CausalSelfAttention

TINY = GPTConfig(block_size=16, vocab_size=50, n_layer=2, n_head=2, n_embd=32)


def test_gpt2_small_has_124_439_808_parameters():
    assert GPT(GPTConfig()).num_params() == 124_439_808  # tied head counted once


def test_head_is_tied_to_the_token_embedding():
    model = GPT(TINY)
    assert model.lm_head.weight is model.transformer.wte.weight


@pytest.mark.cuda
def test_shapes_and_loss(device):
    model = GPT(TINY).to(device)
    idx = torch.randint(50, (3, 16)).to(device)
    logits, loss = model(idx)
    assert logits.shape == (3, 16, 50) and loss is None
    _, loss = model(idx, idx)
    assert loss.shape == ()


def test_loss_at_initialisation_is_close_to_ln_vocab_size():
    set_seed(0)
    config = GPTConfig(block_size=64, vocab_size=65, n_layer=4, n_head=4, n_embd=128)
    model = GPT(config)
    idx = torch.randint(65, (8, 64))
    _, loss = model(idx, torch.randint(65, (8, 64)))
    assert abs(loss.item() - math.log(65)) < 0.05  # small init: nearly uniform predictions


@pytest.mark.cuda
def test_causality_future_tokens_do_not_change_earlier_logits(device):
    set_seed(0)
    model = GPT(TINY).to(device).eval()
    idx = torch.randint(50, (2, 16)).to(device)
    changed = idx.clone()
    changed[:, 10:] = (changed[:, 10:] + 7) % 50  # change every token from position 10 on
    before, _ = model(idx)
    after, _ = model(changed)
    torch.testing.assert_close(after[:, :10], before[:, :10])
    assert not torch.allclose(after[:, 10:], before[:, 10:])


@pytest.mark.cuda
def test_attention_matches_an_explicit_masked_softmax(device):
    set_seed(0)
    attn = CausalSelfAttention(TINY).to(device).eval()
    x = torch.randn(2, 9, 32).to(device)
    q, k, v = attn.c_attn(x).split(32, dim=2)
    q, k, v = (t.view(2, 9, 2, 16).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / math.sqrt(16)
    scores = scores.masked_fill(torch.ones(9, 9, device=device).triu(1).bool(), float("-inf"))
    y = (F.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(2, 9, 32)
    torch.testing.assert_close(attn(x), attn.c_proj(y))


def test_residual_projections_use_the_scaled_initialisation():
    set_seed(0)
    model = GPT(GPTConfig(block_size=8, vocab_size=100, n_layer=8, n_head=4, n_embd=256))
    expected = 0.02 / math.sqrt(2 * 8)
    std = model.transformer.h[0].mlp.c_proj.weight.std().item()
    assert abs(std - expected) / expected < 0.05
    assert abs(model.transformer.h[0].mlp.c_fc.weight.std().item() - 0.02) < 0.001


def test_same_seed_same_model_and_outputs():
    idx = torch.randint(50, (2, 16), generator=torch.Generator().manual_seed(1))
    set_seed(42)
    a = GPT(TINY)(idx)[0]
    set_seed(42)
    b = GPT(TINY)(idx)[0]
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_n_embd_not_divisible_by_n_head_names_the_values():
    with pytest.raises(ValueError, match=r"n_embd=100 is not divisible by n_head=3.*n_head=2 or n_head=4"):
        GPTConfig(n_embd=100, n_head=3)


@pytest.mark.parametrize("field", ["n_layer", "block_size", "vocab_size"])
def test_non_positive_sizes_are_rejected(field):
    with pytest.raises(ValueError, match=f"GPTConfig.{field} must be a positive integer, got 0"):
        GPTConfig(**{field: 0})


def test_sequence_longer_than_block_size_is_a_clear_error():
    with pytest.raises(ValueError, match="length 17 is longer than block_size=16"):
        GPT(TINY)(torch.zeros((1, 17), dtype=torch.long))


@pytest.mark.parametrize("bad", [50, -1])
def test_token_id_outside_the_vocabulary_is_a_clear_error(bad):
    idx = torch.zeros((1, 4), dtype=torch.long)
    idx[0, 2] = bad
    with pytest.raises(ValueError, match=rf"token id {bad} is outside the vocabulary.*\[0, 50\)"):
        GPT(TINY)(idx)


def test_dropout_is_active_only_in_training_mode():
    set_seed(0)
    model = GPT(GPTConfig(block_size=8, vocab_size=20, n_layer=1, n_head=2, n_embd=16, dropout=0.5))
    idx = torch.randint(20, (2, 8))
    model.eval()
    torch.testing.assert_close(model(idx)[0], model(idx)[0])
    model.train()
    assert not torch.allclose(model(idx)[0], model(idx)[0])


def test_final_hidden_states_give_the_logits_through_the_head():
    torch.manual_seed(0)
    config = GPTConfig(block_size=8, vocab_size=11, n_layer=2, n_head=2, n_embd=16)
    model = GPT(config).eval()
    x = torch.randint(config.vocab_size, (3, 8))
    y = torch.randint(config.vocab_size, (3, 8))
    logits, loss = model(x, y)
    same_logits, same_loss, hidden = model(x, y, return_hidden=True)
    assert hidden.shape == (3, 8, config.n_embd)
    assert torch.equal(same_logits, logits) and torch.equal(same_loss, loss)  # the default is unchanged
    assert torch.equal(model.lm_head(hidden), logits)
    ln_f_input = {}
    model.transformer.ln_f.register_forward_hook(lambda module, args, out: ln_f_input.update(out=out))
    model(x)
    assert torch.equal(hidden, ln_f_input["out"])  # after the final LayerNorm
    last_logits, _, last_hidden = model(x, last_only=True, return_hidden=True)
    assert last_hidden.shape == (3, 1, config.n_embd) and torch.equal(model.lm_head(last_hidden), last_logits)


def test_bf16_training_step_runs_on_a_cpu_without_avx512(tmp_path):
    # PyTorch's fused CPU attention raises under bf16 for long sequences on CPUs without AVX-512; the
    # model must fall back to the math kernel there. ATEN_CPU_CAPABILITY=default stands in for such a
    # CPU, and it is read when torch starts: hence a fresh interpreter.
    import os
    import subprocess
    import sys

    script = (
        "import torch\n"
        "from minigpt import GPT, GPTConfig\n"
        "assert torch.backends.cpu.get_cpu_capability() == 'DEFAULT'\n"
        "model = GPT(GPTConfig(block_size=128, vocab_size=64, n_layer=1, n_head=2, n_embd=128))\n"
        "x = torch.randint(0, 64, (2, 128))\n"
        "with torch.autocast('cpu', dtype=torch.bfloat16):\n"
        "    _, loss = model(x, x)\n"
        "loss.backward()\n"
        "assert torch.isfinite(loss), loss\n"
        "print('ok', round(loss.item(), 1))\n"
    )
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")
