import math

import pytest
import torch

import minigpt


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


def test_counted_losses_match_a_hand_count():
    # Training text 0 1 0 1 2 over a vocabulary of 3, add-one smoothing:
    #   unigram counts 2, 2, 1 (+1 each) -> P = 3/8, 3/8, 2/8
    #   pairs after 0: (0,1) twice -> P(1|0) = 3/5; after 1: (1,0), (1,2) -> P(0|1) = P(2|1) = 2/5
    train = torch.tensor([0, 1, 0, 1, 2])
    evaluated = torch.tensor([0, 1, 2, 0])  # predicts 1 after 0, 2 after 1, 0 after 2 (row 2: no pairs)
    losses = minigpt.counted_losses(train, evaluated, vocab_size=3)
    assert losses["uniform"] == pytest.approx(math.log(3))
    assert losses["unigram"] == pytest.approx(-(math.log(3 / 8) + math.log(2 / 8) + math.log(3 / 8)) / 3)
    assert losses["bigram"] == pytest.approx(-(math.log(3 / 5) + math.log(2 / 5) + math.log(1 / 3)) / 3)


def test_counted_losses_agree_with_the_counted_model(char_data):
    _, data = char_data
    train, val = minigpt.train_val_split(data)
    losses = minigpt.counted_losses(train, val, 65, smoothing=0.5)
    counted = minigpt.BigramLanguageModel.from_counts(train, 65, smoothing=0.5)
    _, val_loss = counted(val[None, :-1], val[None, 1:])
    assert losses["bigram"] == pytest.approx(val_loss.item(), abs=1e-5)
    assert losses["bigram"] < losses["unigram"] < losses["uniform"]


def test_counted_losses_work_for_a_large_vocabulary():
    # A 50,257 x 50,257 table would need 10 GB; the sparse count needs only the pairs that occur.
    generator = torch.Generator().manual_seed(0)
    train = torch.randint(50257, (20_000,), generator=generator)
    losses = minigpt.counted_losses(train, train[:1000], 50257)
    assert losses["uniform"] == pytest.approx(math.log(50257))
    # Each training pair is almost always unique: P(b | a) = (1 + 1) / (N(a) + 50257), about 2 / 50257.
    assert losses["bigram"] == pytest.approx(math.log(50257 / 2), abs=0.01)


def test_counted_ngram_loss_matches_a_hand_count():
    # Training text 0 1 0 1 2 over a vocabulary of 3, add-one smoothing. Trigrams: (0,1,0), (1,0,1), (0,1,2).
    #   after context (0, 1), seen twice: P(0) = P(2) = 2/5, P(1) = 1/5; after (1, 0), seen once: P(1) = 2/4.
    #   Contexts (1, 2) and (2, 1) are never followed by anything in training: a uniform 1/3.
    train = torch.tensor([0, 1, 0, 1, 2])
    evaluated = torch.tensor([0, 1, 2, 1, 0, 1])  # 2 after (0,1), 1 after (1,2), 0 after (2,1), 1 after (1,0)
    loss = minigpt.counted_ngram_loss(train, evaluated, vocab_size=3, n=3)
    assert loss == pytest.approx(-(math.log(2 / 5) + math.log(1 / 3) + math.log(1 / 3) + math.log(2 / 4)) / 4)


def test_counted_ngram_loss_equals_a_dense_trigram_table(char_data):
    _, data = char_data
    train, val = minigpt.train_val_split(data)
    V = 65
    counts = torch.zeros(V**3)
    counts.index_add_(0, train[:-2] * V * V + train[1:-1] * V + train[2:], torch.ones(len(train) - 2))
    counts = counts.view(V, V, V) + 0.5
    log_probs = (counts / counts.sum(dim=-1, keepdim=True)).log()
    dense = -log_probs[val[:-2], val[1:-1], val[2:]].mean().item()
    sparse = minigpt.counted_ngram_loss(train, val, V, n=3, smoothing=0.5)
    assert sparse == pytest.approx(dense, abs=1e-4)
    # More context helps here: trigram < bigram < unigram, and n = 1, 2 are counted_losses' baselines.
    losses = minigpt.counted_losses(train, val, V, smoothing=0.5)
    assert sparse < losses["bigram"] == pytest.approx(minigpt.counted_ngram_loss(train, val, V, 2, 0.5))
    assert losses["unigram"] == pytest.approx(minigpt.counted_ngram_loss(train, val[1:], V, 1, 0.5))


def test_counted_ngram_loss_rejects_bad_input():
    tokens = torch.tensor([0, 1, 2, 1])
    with pytest.raises(ValueError, match="n must be a whole number >= 1"):
        minigpt.counted_ngram_loss(tokens, tokens, 3, n=0)
    with pytest.raises(ValueError, match="does not fit in 64 bits"):
        minigpt.counted_ngram_loss(tokens, tokens, 50257, n=5)
    with pytest.raises(ValueError, match="at least n = 3 token ids"):
        minigpt.counted_ngram_loss(tokens, tokens[:2], 3, n=3)


def test_counted_losses_reject_bad_input():
    tokens = torch.tensor([0, 1, 2, 1])
    with pytest.raises(ValueError, match="smoothing must be positive"):
        minigpt.counted_losses(tokens, tokens, 3, smoothing=0)
    with pytest.raises(ValueError, match=r"eval_tokens holds ids outside \[0, 3\)"):
        minigpt.counted_losses(tokens, torch.tensor([0, 3]), 3)
    with pytest.raises(ValueError, match="train_tokens must be a 1-D sequence"):
        minigpt.counted_losses(tokens[None], tokens, 3)


def test_batch_diagram_draws_the_shift_and_rejects_rows_that_are_not_shifted():
    import matplotlib

    matplotlib.use("Agg")
    from book_diagrams import bigram as bigram_diagrams

    fig = bigram_diagrams.batch_of_windows(["First Ci", "tizen:\nB"], ["irst Cit", "izen:\nBe"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    # The newlines are drawn visibly, and the shapes are named.
    assert texts.count("↵") == 2 and "(B, T) = (2, 8)" in " ".join(texts)
    matplotlib.pyplot.close(fig)
    with pytest.raises(ValueError, match="shifted left by one"):
        bigram_diagrams.batch_of_windows(["abc"], ["xyz"])


def test_lookup_diagram_shows_the_softmax_of_the_row_and_the_targets_loss():
    import matplotlib

    matplotlib.use("Agg")
    from book_diagrams import bigram as bigram_diagrams

    chars = list("abcdefgh")
    logits = torch.tensor([2.0, 1.5, 1.0, 0.0, -0.5, -1.0, -0.2, -3.0])
    probs = torch.softmax(logits, dim=0)
    # The target "g" is not among the 3 most likely characters: the diagram still shows it.
    fig = bigram_diagrams.lookup(logits.tolist(), chars, current="c", target="g", shown=3)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert f"{probs[6]:.2f}" in texts and f"{probs[0]:.2f}" in texts and "5 more" in texts
    assert any(t.endswith(f"= {-math.log(probs[6]):.2f}") for t in texts)
    matplotlib.pyplot.close(fig)
    with pytest.raises(ValueError, match="one per character"):
        bigram_diagrams.lookup([0.0, 1.0], chars, current="a", target="b")


def test_sampling_loop_diagram_appends_each_drawn_character_to_the_context():
    import matplotlib

    matplotlib.use("Agg")
    from book_diagrams import bigram as bigram_diagrams

    fig = bigram_diagrams.sampling_loop("\nKicl", steps=4)
    texts = [t.get_text() for t in fig.axes[0].texts]
    # Contexts of 1, 2, 3, 4 characters (10 cells) and the 4 drawn characters.
    assert texts.count("↵") == 4 and texts.count("K") == 4 and texts.count("l") == 1
    matplotlib.pyplot.close(fig)
    with pytest.raises(ValueError, match="at least 4 drawn characters"):
        bigram_diagrams.sampling_loop("\nK", steps=4)


def test_interpolated_losses_match_a_hand_count():
    # Training text 0 1 0 1 ... (20 tokens) over a vocabulary of 3, both lambdas fixed at 0.5:
    #   unigram = 0.5 * (10/20, 10/20, 0) + 0.5 / 3 = (5/12, 5/12, 1/6)
    #   after 0: always 1 -> P(1|0) = 1; after 1: always 0 -> P(2|1) = 0; 2 never first: unigram alone
    train = [0, 1] * 10
    evaluated = [0, 1, 2, 0]  # predicts 1 after 0, 2 after 1, 0 after 2
    losses = minigpt.interpolated_losses(train, evaluated, vocab_size=3, grid=(0.5,))
    assert losses["uniform"] == pytest.approx(math.log(3))
    assert (losses["lam_unigram"], losses["lam_bigram"]) == (0.5, 0.5)
    assert losses["unigram"] == pytest.approx(-(math.log(5 / 12) + math.log(1 / 6) + math.log(5 / 12)) / 3)
    mixed = [0.5 * 1 + 0.5 * 5 / 12, 0.5 * 0 + 0.5 * 1 / 6, 5 / 12]
    assert losses["bigram"] == pytest.approx(-sum(math.log(p) for p in mixed) / 3)


def test_interpolated_losses_choose_lambdas_from_the_grid_and_reject_bad_input(char_data):
    _, data = char_data
    train, val = minigpt.train_val_split(data[:50_000])
    losses = minigpt.interpolated_losses(train, val, 65)
    assert losses["lam_unigram"] in minigpt.bigram.LAMBDA_GRID
    assert losses["lam_bigram"] in minigpt.bigram.LAMBDA_GRID
    assert losses["bigram"] < losses["unigram"] < losses["uniform"]
    with pytest.raises(ValueError, match="outside"):
        minigpt.interpolated_losses([0, 1] * 10, [0, 3], vocab_size=3)
    with pytest.raises(ValueError, match="at least 20"):
        minigpt.interpolated_losses([0, 1] * 5, [0, 1], vocab_size=3)
