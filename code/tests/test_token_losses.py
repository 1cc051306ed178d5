"""token_losses: every token of a sequence scored once, from sliding windows (the appendix's loss per character)."""

import pytest
import torch
import torch.nn.functional as F
from minigpt import GPT, GPTConfig
from minigpt.train import evaluate_loss, token_losses

CONFIG = GPTConfig(block_size=8, vocab_size=20, n_layer=1, n_head=2, n_embd=16)


def model_and_tokens(n=61):
    torch.manual_seed(0)
    return GPT(CONFIG).eval(), torch.randint(CONFIG.vocab_size, (n,), generator=torch.Generator().manual_seed(1))


@torch.no_grad()
def one_at_a_time(model, tokens, block_size):
    """Each token's loss from exactly the block_size tokens before it (fewer at the start)."""
    losses = []
    for t in range(1, len(tokens)):
        context = tokens[max(0, t - block_size) : t]
        logits, _ = model(context[None])  # (1, T, V)
        losses.append(F.cross_entropy(logits[0, -1], tokens[t]).item())
    return torch.tensor(losses)


def test_stride_one_scores_each_token_from_its_full_context():
    model, tokens = model_and_tokens()
    expected = one_at_a_time(model, tokens, CONFIG.block_size)
    # With stride 1 every token after the first window has exactly block_size tokens of context.
    torch.testing.assert_close(token_losses(model, tokens, CONFIG.block_size, stride=1), expected)


@pytest.mark.parametrize("stride", [2, 4, 5, 8])
@pytest.mark.parametrize("n", [2, 5, 9, 10, 61])
def test_every_token_is_scored_once_whatever_the_stride_and_length(stride, n):
    model, tokens = model_and_tokens(n)
    losses = token_losses(model, tokens, CONFIG.block_size, stride=stride, batch_size=3)
    assert losses.shape == (n - 1,) and torch.isfinite(losses).all()
    # The tokens of the first window are scored from it, with the context before them.
    first = min(CONFIG.block_size, n - 1)
    torch.testing.assert_close(losses[:first], one_at_a_time(model, tokens[: first + 1], CONFIG.block_size))


def test_windows_that_tile_give_evaluate_loss():
    model, tokens = model_and_tokens(4 * CONFIG.block_size + 1)
    tiled = token_losses(model, tokens, CONFIG.block_size, stride=CONFIG.block_size)
    assert tiled.mean().item() == pytest.approx(evaluate_loss(model, tokens, CONFIG.block_size), rel=1e-6)


def test_bad_input_is_a_clear_error():
    model, tokens = model_and_tokens()
    with pytest.raises(ValueError, match="at least 2 ids"):
        token_losses(model, tokens[:1], CONFIG.block_size)
    with pytest.raises(ValueError, match="stride must be between 1 and block_size=8, got 9"):
        token_losses(model, tokens, CONFIG.block_size, stride=9)
    with pytest.raises(ValueError, match="1-D"):
        token_losses(model, tokens.view(1, -1), CONFIG.block_size)
