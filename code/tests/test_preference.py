import pytest
import torch

from minigpt import GPT, GPTConfig
from minigpt.preference import sequence_logprobs

CONFIG = GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=16)


def small_batch():
    torch.manual_seed(0)
    model = GPT(CONFIG).eval()
    ids = torch.randint(CONFIG.vocab_size, (2, 7))
    x, y = ids[:, :-1], ids[:, 1:].clone()  # (2, 6) each
    mask = torch.tensor([[0, 0, 1, 1, 1, 0], [0, 1, 1, 1, 1, 1]], dtype=torch.bool)  # the responses
    y[0, 5] = -100  # padding, outside the mask
    return model, x, y, mask


def test_sum_of_response_log_probabilities_equals_a_hand_computation():
    model, x, y, mask = small_batch()
    with torch.no_grad():
        log_probs = torch.log_softmax(model(x)[0], dim=-1)  # (B, T, V)
    by_hand = [
        sum(log_probs[b, t, y[b, t]].item() for t in range(x.shape[1]) if mask[b, t]) for b in range(2)
    ]
    got = sequence_logprobs(model, x, y, mask)
    assert got.shape == (2,) and got.dtype == torch.float32
    torch.testing.assert_close(got, torch.tensor(by_hand), rtol=1e-6, atol=1e-6)


def test_gradients_flow_and_an_empty_mask_gives_zero():
    model, x, y, mask = small_batch()
    mask[1] = False
    logprobs = sequence_logprobs(model, x, y, mask)
    assert logprobs[1].item() == 0.0
    logprobs.sum().backward()
    assert model.transformer.wte.weight.grad.abs().sum() > 0


def test_bad_input_is_a_clear_error():
    model, x, y, mask = small_batch()
    with pytest.raises(ValueError, match=r"same shape \(batch, time\), got \(2, 6\), \(2, 6\) and \(2, 5\)"):
        sequence_logprobs(model, x, y, mask[:, :5])
    mask[0, 5] = True  # over the padding
    with pytest.raises(ValueError, match="a masked-in target is negative"):
        sequence_logprobs(model, x, y, mask)
