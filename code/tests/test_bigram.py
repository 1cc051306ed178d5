import math

import minigpt
import pytest
import torch


def test_counted_model_reaches_the_bigram_optimum(char_data):
    _, data = char_data
    train, val = minigpt.train_val_split(data)
    model = minigpt.BigramLanguageModel.from_counts(train, 65)
    probs = model.token_embedding.weight.exp()
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(65))
    _, val_loss = model(val[None, :-1], val[None, 1:])
    assert 2.45 < val_loss.item() < 2.52  # about 2.48, far below ln(65)
    assert val_loss.item() < math.log(65) - 1.5


def test_untrained_forward_shapes_and_loss():
    model = minigpt.BigramLanguageModel(10)
    idx = torch.randint(10, (3, 7))
    logits, loss = model(idx)
    assert logits.shape == (3, 7, 10) and loss is None
    _, loss = model(idx, idx)
    assert loss.ndim == 0 and loss.item() > 0


def test_out_of_vocabulary_ids_are_a_clear_error():
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 10\)"):
        minigpt.BigramLanguageModel(10)(torch.tensor([[3, 10]]))


def test_generation_is_reproducible_and_respects_the_table():
    # A table where token i is always followed by token (i + 1) % 5.
    model = minigpt.BigramLanguageModel(5)
    with torch.no_grad():
        model.token_embedding.weight.fill_(-1e9)
        for i in range(5):
            model.token_embedding.weight[i, (i + 1) % 5] = 0.0
    out = minigpt.generate(model, torch.zeros((2, 1), dtype=torch.long), max_new_tokens=7)
    assert out.tokens.tolist() == [[0, 1, 2, 3, 4, 0, 1, 2]] * 2

    random_model = minigpt.BigramLanguageModel(50)
    start = torch.zeros((1, 1), dtype=torch.long)
    a = minigpt.generate(random_model, start, 20, generator=torch.Generator().manual_seed(3))
    b = minigpt.generate(random_model, start, 20, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.tokens, b.tokens)


def test_generate_rejects_a_negative_temperature():
    with pytest.raises(ValueError, match="temperature"):
        minigpt.generate(
            minigpt.BigramLanguageModel(5), torch.zeros((1, 1), dtype=torch.long), 3, temperature=-1
        )
