import copy
import hashlib
import math
import re

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from minigpt import GPT, PREFERENCE_DATA, GPTConfig, data, gpt2_tokenizer
from minigpt.dpo import chosen_nll_loss_fn, dpo_loss, dpo_loss_fn, evaluate_dpo, next_token_kl
from minigpt.instruct import IGNORE_INDEX, PROMPT_NO_INPUT, Response, format_prompt
from minigpt.preference import (
    EncodedPair,
    PairBatch,
    PreferenceDataset,
    best_of_n,
    checker_scores,
    collate_pairs,
    encode_pair,
    encode_pairs,
    load_preference_data,
    onpolicy_pairs,
    pair_accuracy,
    pair_logprobs,
    sample_responses,
    sequence_logprobs,
    validate_preference_records,
    wilson_interval,
)
from minigpt.pretrained import load_model, save_pretrained
from minigpt.reward import (
    RewardModel,
    bradley_terry_loss,
    last_response_index,
    load_reward_model,
    pair_rewards,
    reward_model_loss,
    rewards_of_pairs,
    save_reward_model,
    score_responses,
)
from minigpt.train import TrainConfig, Trainer

ENC = gpt2_tokenizer()
EOT = ENC.eot_token
CONFIG = GPTConfig(block_size=8, vocab_size=100, n_layer=1, n_head=2, n_embd=16)
TINY = GPTConfig(block_size=48, vocab_size=50257, n_layer=1, n_head=2, n_embd=16)  # GPT-2's tokens
RECORD = {"instruction": "Name a colour.", "input": "", "chosen": "Blue, gladly.", "rejected": "Blue. Duh."}


# ---------------------------------------------------------------------------------------------
# Records


def test_shipped_preference_data_matches_its_sha256_and_loads():
    path = data.data_path(PREFERENCE_DATA, verbose=False)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == PREFERENCE_DATA.sha256
    records = load_preference_data(verbose=False)
    assert len(records) == 1100
    assert all(record["chosen"].strip() and record["rejected"].strip() for record in records)


@pytest.mark.parametrize(
    "records, message",
    [
        ({"instruction": "x"}, "expected a JSON list of records, got dict"),
        ([RECORD, "text"], "record 1 has type str, expected an object"),
        ([RECORD, {k: v for k, v in RECORD.items() if k != "chosen"}], "record 1 has no 'chosen' field"),
        ([{**RECORD, "rejected": "  \n"}], "record 0, field 'rejected' is empty"),
        ([{**RECORD, "chosen": ""}], "record 0, field 'chosen' is empty"),
        ([{**RECORD, "instruction": " "}], "record 0, field 'instruction' is empty"),
        ([{**RECORD, "chosen": 3}], "record 0, field 'chosen' has type int, expected a string"),
        ([{**RECORD, "output": None}], "record 0, field 'output' has type NoneType"),
    ],
)
def test_bad_records_are_errors_that_name_the_record_and_field(records, message):
    with pytest.raises(ValueError, match=f"^prefs.json: {message}"):
        validate_preference_records(records, source="prefs.json")


def test_a_record_with_an_output_is_valid():
    records = [{**RECORD, "output": "Blue."}]
    assert validate_preference_records(records) is records


def test_encoding_names_the_bad_record():
    with pytest.raises(ValueError, match="^prefs.json: record 1 has no 'chosen' field"):
        encode_pairs([RECORD, {"instruction": "x", "input": "", "rejected": "y"}], ENC, source="prefs.json")
    with pytest.raises(ValueError, match="no end-of-text token"):
        encode_pair(RECORD, type("NoEnd", (), {"eot_token": None})())


# ---------------------------------------------------------------------------------------------
# Pairs as batches


def hand_made_pairs():
    """Two pairs of made-up token ids (99 is end-of-text): prompt, chosen and rejected of each."""
    return [
        EncodedPair(prompt=[1, 2, 3], chosen=[4, 5, 99], rejected=[6, 99], label="pair 0"),
        EncodedPair(prompt=[7], chosen=[8, 99], rejected=[9, 10, 11, 99], label="pair 1"),
    ]


def test_collated_pairs_have_shifted_targets_and_response_masks():
    batch = collate_pairs(hand_made_pairs(), pad_id=0)
    _ = IGNORE_INDEX  # no target here
    expected_x = torch.tensor([[[1, 2, 3, 4, 5], [1, 2, 3, 6, 0]], [[7, 8, 0, 0, 0], [7, 9, 10, 11, 0]]])
    expected_y = torch.tensor(
        [[[_, _, 4, 5, 99], [_, _, 6, 99, _]], [[8, 99, _, _, _], [9, 10, 11, 99, _]]]
    )  # (B, 2, T): each pair's chosen row, then its rejected row
    assert torch.equal(batch.x, expected_x)
    assert torch.equal(batch.y, expected_y)
    assert torch.equal(batch.mask, expected_y != IGNORE_INDEX)
    assert batch.mask.sum(-1).tolist() == [[3, 2], [2, 4]]  # response tokens and end-of-text


def test_a_pair_longer_than_max_length_is_an_error_naming_it():
    collate_pairs(hand_made_pairs(), pad_id=0, max_length=5)  # pair 0 needs 3 + 3 - 1 = 5 inputs: fits
    with pytest.raises(ValueError, match="^pair 0: its prompt and longer response take 5 tokens, more than"):
        collate_pairs(hand_made_pairs(), pad_id=0, max_length=4)
    records = [RECORD, {**RECORD, "rejected": "word " * 40}]
    with pytest.raises(ValueError, match="^prefs.json: record 1: its prompt and longer response take"):
        PreferenceDataset(records, ENC, max_length=48, source="prefs.json")
    with pytest.raises(ValueError, match="at least one pair"):
        collate_pairs([], pad_id=0)


def test_a_gpt2_pair_row_is_prompt_then_response_then_end_of_text():
    pair = encode_pair(RECORD, ENC)
    batch = collate_pairs([pair], pad_id=EOT)
    prompt = ENC.encode_ordinary(format_prompt(RECORD))
    assert pair.prompt == prompt
    for k, response in enumerate((RECORD["chosen"], RECORD["rejected"])):
        targets = batch.y[0, k][batch.mask[0, k]].tolist()
        assert targets == ENC.encode_ordinary(response) + [EOT]
        assert batch.x[0, k, : len(prompt)].tolist() == prompt


def test_preference_dataset_batches_are_seeded_and_evaluation_is_fixed():
    records = [{**RECORD, "chosen": f"Colour {i}."} for i in range(10)]
    dataset = PreferenceDataset(records, ENC, max_length=48)
    first = dataset.sample_batch(4, torch.Generator().manual_seed(3))
    again = dataset.sample_batch(4, torch.Generator().manual_seed(3))
    assert first.x.shape[:2] == (4, 2) and all(torch.equal(a, b) for a, b in zip(first, again))
    batches = dataset.eval_batches(count=5, batch_size=2)
    assert [len(b.x) for b in batches] == [2, 2, 1]
    assert all(torch.equal(a, b) for a, b in zip(batches[0], dataset.eval_batches(5, 2)[0]))


# ---------------------------------------------------------------------------------------------
# Log-probabilities of replies


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


def test_pair_logprobs_keep_each_pair_and_its_order():
    torch.manual_seed(0)
    model = GPT(CONFIG).eval()
    batch = collate_pairs(hand_made_pairs(), pad_id=0)
    got = pair_logprobs(model, batch)  # (B, 2)
    for b in range(2):
        for k in range(2):
            alone = sequence_logprobs(model, batch.x[b, k][None], batch.y[b, k][None], batch.mask[b, k][None])
            torch.testing.assert_close(got[b, k], alone[0])


def test_pair_accuracy_counts_ties_as_half_and_wilson_interval_is_known():
    assert pair_accuracy([2.0, 0.0, 1.0, 5.0], [1.0, 1.0, 1.0, 4.0]) == 0.625  # 1 + 0 + 0.5 + 1 of 4
    low, high = wilson_interval(0.5, 100)
    assert (round(low, 4), round(high, 4)) == (0.4038, 0.5962)
    low, high = wilson_interval(1.0, 10)
    assert round(low, 4) == 0.7225 and high == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one score of each kind per pair"):
        pair_accuracy([1.0, 2.0], [1.0])


# ---------------------------------------------------------------------------------------------
# The reward model


def test_bradley_terry_loss_on_known_numbers():
    loss = bradley_terry_loss(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0]))
    assert loss.item() == pytest.approx((math.log(1 + math.exp(-1)) + math.log(2)) / 2)


def test_last_response_index_is_each_rows_last_scored_target():
    mask = torch.tensor([[0, 1, 1, 0], [1, 1, 1, 1], [0, 0, 1, 0]], dtype=torch.bool)
    assert last_response_index(mask).tolist() == [2, 3, 2]
    with pytest.raises(ValueError, match="no response target"):
        last_response_index(torch.zeros(1, 3, dtype=torch.bool))


def reward_model(seed: int = 0) -> RewardModel:
    torch.manual_seed(seed)
    model = RewardModel(GPT(CONFIG)).eval()
    nn.init.normal_(model.head.weight)  # a head that reads every channel strongly
    return model


def test_reward_is_read_at_each_sequences_last_real_token():
    model = reward_model()
    batch = collate_pairs(hand_made_pairs(), pad_id=0)
    with torch.no_grad():
        got = pair_rewards(model, batch)  # (B, 2), from padded rows
        for b, pair in enumerate(hand_made_pairs()):
            for k, response in enumerate((pair.chosen, pair.rejected)):
                ids = torch.tensor([pair.prompt + response[:-1]])  # unpadded, end-of-text left out
                hidden = model.backbone(ids, return_hidden=True)[2]  # (1, T, C)
                by_hand = hidden[0, -1] @ model.head.weight[0] + model.head.bias[0]
                torch.testing.assert_close(got[b, k], by_hand)


def test_scored_samples_get_the_rewards_their_pair_gets():
    model = RewardModel(GPT(TINY)).eval()
    pair = collate_pairs([encode_pair(RECORD, ENC)], pad_id=EOT)
    samples = [[Response(RECORD["rejected"], True), Response(RECORD["chosen"], False)]]
    scores = score_responses(model, ENC, [RECORD], samples)
    chosen, rejected = rewards_of_pairs(model, [pair])
    assert scores[0] == pytest.approx([rejected.item(), chosen.item()], rel=1e-5, abs=1e-7)
    samples[0].append(Response("word " * 40, False))
    with pytest.raises(ValueError, match="^record 0, sample 2: prompt and reply take .* context of 48"):
        score_responses(model, ENC, [RECORD], samples)


def test_a_saved_reward_model_gives_the_same_rewards(tmp_path):
    model = reward_model()
    batch = collate_pairs(hand_made_pairs(), pad_id=0)
    path = save_reward_model(model, tmp_path / "reward.safetensors")
    loaded = load_reward_model(path)
    assert loaded.backbone.lm_head.weight is loaded.backbone.transformer.wte.weight  # still tied
    torch.testing.assert_close(rewards_of_pairs(loaded, [batch]), rewards_of_pairs(model, [batch]))
    save_file({"weight": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not written by save_reward_model"):
        load_reward_model(tmp_path / "other.safetensors")


# A toy preference set, trivially separable: "yes" is always preferred to "no", whatever the
# instruction; the held-out pairs have instructions never seen in training.
FILLERS = "please now kindly quickly today again softly loudly".split()


def toy_records(fillers):
    return [
        {"instruction": f"Say {word}, {filler}.", "input": "", "chosen": "yes", "rejected": "no"}
        for filler in fillers
        for word in ("yes", "no")
    ]


class WordTokenizer:
    """Words, punctuation and runs of space as tokens, then end-of-text: a vocabulary of a few dozen,
    so that a toy model trains in a second (GPT-2's 50,257 logits per token would take most of it)."""

    PIECES = re.compile(r"\w+|[^\w\s]|\s+")

    def __init__(self, texts):
        pieces = sorted({piece for text in texts for piece in self.PIECES.findall(text)})
        self.stoi = {piece: i for i, piece in enumerate(pieces)}
        self.eot_token = len(pieces)
        self.n_vocab = len(pieces) + 1

    def encode_ordinary(self, text):
        return [self.stoi[piece] for piece in self.PIECES.findall(text)]

    def decode(self, ids):
        pieces = list(self.stoi)
        return "".join(pieces[i] for i in ids if i != self.eot_token)


TOY_TOKENIZER = WordTokenizer(format_prompt(r) + r["chosen"] for r in toy_records(FILLERS))
TOY = GPTConfig(block_size=64, vocab_size=TOY_TOKENIZER.n_vocab, n_layer=1, n_head=2, n_embd=32)


def toy_trainer(model, loss_fn, steps, lr=1e-2, device="cpu"):
    train = PreferenceDataset(toy_records(FILLERS[:6]), TOY_TOKENIZER, TOY.block_size)
    held_out = PreferenceDataset(toy_records(FILLERS[6:]), TOY_TOKENIZER, TOY.block_size)
    config = TrainConfig(
        max_steps=steps, batch_size=8, lr=lr, warmup_steps=2, eval_interval=steps, eval_windows=8, seed=0
    )
    return Trainer(model, train, held_out, config, device=device, loss_fn=loss_fn)


def test_the_reward_model_learns_a_toy_preference_with_the_trainer():
    torch.manual_seed(0)
    trainer = toy_trainer(RewardModel(GPT(TOY)), reward_model_loss, steps=10)
    trainer.train(progress=False)
    first, last = trainer.history[0]["val_loss"], trainer.history[-1]["val_loss"]
    assert abs(first - math.log(2)) < 0.1 and last < 0.1  # from a near coin to a sure ranking
    assert pair_accuracy(*rewards_of_pairs(trainer.model, trainer.val_data.eval_batches(8, 8))) == 1.0


# ---------------------------------------------------------------------------------------------
# DPO


@pytest.mark.parametrize("beta", [0.1, 1.0, 10.0])
def test_dpo_of_a_policy_equal_to_its_reference_is_log_2_with_zero_margins(beta):
    policy = torch.tensor([-3.0, -10.0, -0.5]), torch.tensor([-4.0, -2.0, -7.0])
    result = dpo_loss(*policy, *policy, beta=beta)
    assert result.loss.item() == pytest.approx(math.log(2))
    assert result.margins.tolist() == [0.0, 0.0, 0.0]


def test_dpo_on_a_case_computed_by_hand():
    # pair 0: the policy made chosen 1 nat likelier than the reference did, rejected 1 nat less likely
    # pair 1: it moved the wrong way, by 2 nats in all
    result = dpo_loss(
        torch.tensor([-1.0, -5.0]),  # policy, chosen
        torch.tensor([-3.0, -2.0]),  # policy, rejected
        torch.tensor([-2.0, -4.0]),  # reference, chosen
        torch.tensor([-2.0, -3.0]),  # reference, rejected
        beta=0.5,
    )
    assert result.chosen_rewards.tolist() == [0.5, -0.5]
    assert result.rejected_rewards.tolist() == [-0.5, 0.5]
    assert result.margins.tolist() == [1.0, -1.0]
    expected = (math.log(1 + math.exp(-1.0)) + math.log(1 + math.exp(1.0))) / 2
    assert result.loss.item() == pytest.approx(expected)


def test_dpo_refuses_bad_beta_and_shapes():
    ones = torch.ones(3)
    with pytest.raises(ValueError, match="beta must be positive, got 0"):
        dpo_loss(ones, ones, ones, ones, beta=0)
    with pytest.raises(ValueError, match="one number per pair"):
        dpo_loss(ones, ones, ones, torch.ones(2), beta=0.1)


def test_the_reference_gets_no_gradient_and_no_update_in_a_trainer_step():
    torch.manual_seed(0)
    policy = GPT(TOY)
    reference = copy.deepcopy(policy)
    before = copy.deepcopy(reference.state_dict())
    trainer = toy_trainer(policy, dpo_loss_fn(reference, beta=0.1), steps=2)
    trainer.train_step()
    assert all(p.grad is None for p in reference.parameters())
    assert all(torch.equal(before[name], value) for name, value in reference.state_dict().items())
    moved = [not torch.equal(p, q) for p, q in zip(policy.parameters(), reference.parameters())]
    assert any(moved)  # while the policy took its step


def test_dpo_refuses_a_reference_that_is_the_policy():
    torch.manual_seed(0)
    policy = GPT(TINY)
    loss_fn = dpo_loss_fn(policy, beta=0.1)
    batch = PreferenceDataset([RECORD], ENC, TINY.block_size).eval_batches(1, 1)[0]
    with pytest.raises(ValueError, match=r"share weights.*copy\.deepcopy\(policy\)"):
        loss_fn(policy, batch)


def test_dpo_with_the_trainer_raises_held_out_implicit_reward_accuracy():
    torch.manual_seed(0)
    policy = GPT(TOY)
    reference = copy.deepcopy(policy)
    trainer = toy_trainer(policy, dpo_loss_fn(reference, beta=0.5), steps=10)
    held_out = trainer.val_data.eval_batches(8, 8)
    before = evaluate_dpo(policy, reference, held_out, beta=0.5)
    assert (before.accuracy, before.margin, before.kl_per_token) == (0.5, 0.0, 0.0)
    trainer.train(progress=False)
    after = evaluate_dpo(policy, reference, held_out, beta=0.5)
    assert after.pairs == 4 and after.accuracy >= 0.9
    assert after.margin > 0.5 and after.chosen_reward > after.rejected_reward
    with torch.no_grad():  # the drift is over the chosen replies' tokens
        chosen_kl = [
            next_token_kl(policy(b.x[:, 0])[0], reference(b.x[:, 0])[0], b.mask[:, 0]).sum() for b in held_out
        ]
    chosen_tokens = sum(b.mask[:, 0].sum() for b in held_out)
    assert after.kl_per_token == pytest.approx((sum(chosen_kl) / chosen_tokens).item(), rel=1e-5)
    assert after.kl_per_token > 0.01


@pytest.mark.cuda
def test_the_reward_model_and_dpo_train_and_sample_on_the_device(device):
    """On a GPU the Trainer runs in bf16 or fp16: rewards, log-probabilities and KL stay float32."""
    torch.manual_seed(0)
    reward = toy_trainer(RewardModel(GPT(TOY)), reward_model_loss, steps=10, device=device)
    held_out = reward.val_data.eval_batches(8, 8)
    reward.train(progress=False)
    chosen, rejected = rewards_of_pairs(reward.model, held_out)
    assert chosen.dtype == torch.float32 and pair_accuracy(chosen, rejected) == 1.0
    policy = GPT(TOY).to(device)
    reference = copy.deepcopy(policy)
    toy_trainer(policy, dpo_loss_fn(reference, beta=0.5), steps=10, device=device).train(progress=False)
    stats = evaluate_dpo(policy, reference, held_out, beta=0.5)
    assert stats.accuracy == 1.0 and stats.margin > 0.5 and stats.kl_per_token > 0.01
    records = toy_records(FILLERS[6:])
    generator = torch.Generator().manual_seed(0)
    samples = sample_responses(policy, TOY_TOKENIZER, records, n=3, generator=generator, max_new_tokens=4)
    assert [len(s) for s in samples] == [3] * len(records)
    answers = [[Response("no", True), Response("yes", True)] for _ in records]
    scores = score_responses(reward.model, TOY_TOKENIZER, records, answers)
    assert [r.text for r in best_of_n(answers, scores)] == ["yes"] * len(records)


def test_next_token_kl_is_zero_for_equal_models_and_a_hand_computation_otherwise():
    torch.manual_seed(0)
    policy, reference = GPT(CONFIG).eval(), GPT(CONFIG).eval()
    x = torch.randint(CONFIG.vocab_size, (2, 5))
    mask = torch.tensor([[0, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    with torch.no_grad():
        policy_logits, ref_logits = policy(x)[0], reference(x)[0]  # (B, T, V) each
        assert next_token_kl(policy_logits, policy_logits, mask).abs().max() < 1e-6
        got = next_token_kl(policy_logits, ref_logits, mask)  # (B, T)
        p, q = torch.softmax(policy_logits, dim=-1), torch.softmax(ref_logits, dim=-1)  # (B, T, V) each
    by_hand = (p * (p / q).log()).sum(-1) * mask
    torch.testing.assert_close(got, by_hand)
    assert (got[mask] > 0).all() and (got[~mask] == 0).all()


def test_a_dpo_tuned_policy_saves_as_a_chat_model_folder(tmp_path):
    torch.manual_seed(0)
    policy = GPT(TINY)
    pairs = PreferenceDataset([RECORD], ENC, TINY.block_size)
    config = TrainConfig(max_steps=1, batch_size=1, warmup_steps=1)
    Trainer(policy, pairs, pairs, config, loss_fn=dpo_loss_fn(copy.deepcopy(policy), beta=0.1)).train_step()
    save_pretrained(policy, tmp_path / "dpo", prompt_format="alpaca")
    loaded = load_model(tmp_path / "dpo")
    assert loaded.prompt_format == "alpaca" and loaded.tokenizer.eot_token == EOT
    x = torch.tensor([ENC.encode_ordinary(format_prompt(RECORD))])
    torch.testing.assert_close(loaded.model(x)[0], policy.eval()(x)[0])


# ---------------------------------------------------------------------------------------------
# On-policy pairs and best-of-n

NEWLINE = ENC.encode_ordinary("\n")[0]
NO = ENC.encode_ordinary(" no")[0]
INSTRUCTION_AT = len(ENC.encode_ordinary(PROMPT_NO_INPUT.split("{instruction}")[0]))


class CopyOrNoModel(nn.Module):
    """After a prompt (which ends with a newline) it answers, with equal odds, the instruction's first
    token or " no"; after that, end-of-text. Its samples are known: one of two answers per prompt."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(()))  # where generate looks for the device

    def forward(self, idx, targets=None):
        B, T = idx.shape
        logits = torch.full((B, T, ENC.n_vocab), -1e9)
        answering = idx[:, -1] == NEWLINE  # (B,)
        for b in range(B):
            if answering[b]:
                logits[b, -1, [idx[b, INSTRUCTION_AT], NO]] = 0.0
            else:
                logits[b, -1, EOT] = 0.0
        return logits, None


def task(word: str, filler: str = "") -> dict:
    return {"instruction": f"{word}{filler}", "input": "", "output": word}


def test_sampled_responses_belong_to_their_prompts():
    records = [task("cat"), task("dog", " and more words"), task("king"), task("rose", " also")]
    assert ENC.encode_ordinary(format_prompt(records[0]))[-1] == NEWLINE
    samples = sample_responses(
        CopyOrNoModel(), ENC, records, n=6, generator=torch.Generator().manual_seed(0), batch_size=4
    )
    assert [len(s) for s in samples] == [6] * 4
    for record, responses in zip(records, samples):
        assert all(r.stopped for r in responses)
        assert {r.text for r in responses} == {record["output"], " no"}  # both answers drawn, no other
    again = sample_responses(
        CopyOrNoModel(), ENC, records, n=6, generator=torch.Generator().manual_seed(0), batch_size=4
    )
    assert again == samples
    pairs = onpolicy_pairs(records, samples)
    assert (len(pairs.records), pairs.no_correct, pairs.no_wrong) == (4, 0, 0)
    assert [(p["chosen"], p["rejected"]) for p in pairs.records] == [(r["output"], " no") for r in records]
    validate_preference_records(pairs.records)


def test_onpolicy_pairs_choose_a_correct_sample_and_reject_a_wrong_one():
    records = [task("cat"), task("dog"), task("king"), task("rose")]
    samples = [
        [Response("dog", True), Response(" cat ", True), Response("cat", True)],  # pair: " cat " over "dog"
        [Response("dog", True), Response("dog", True)],  # only correct ones: no wrong
        [Response("king", False), Response("", True), Response("queen", True)],  # correct one never stopped
        [Response("rosebud", False), Response("", True), Response("rose", True)],  # wrong ones unusable
    ]
    pairs = onpolicy_pairs(records, samples)
    assert pairs.records == [{**records[0], "chosen": " cat ", "rejected": "dog"}]
    assert (pairs.no_correct, pairs.no_wrong) == (1, 2)
    with pytest.raises(ValueError, match="one list of samples per record"):
        onpolicy_pairs(records, samples[:2])


def test_best_of_n_picks_the_top_scored_sample():
    samples = [[Response("a", True), Response("b", True), Response("c", True)], [Response("d", True)]]
    picked = best_of_n(samples, [[0.1, 3.0, 3.0], [-1.0]])
    assert [r.text for r in picked] == ["b", "d"]  # the first of equals
    records = [task("c"), task("x")]
    assert checker_scores(records, samples) == [[0.0, 0.0, 1.0], [0.0]]
    assert [r.text for r in best_of_n(samples, checker_scores(records, samples))] == ["c", "d"]
    with pytest.raises(ValueError, match="one score per sample"):
        best_of_n(samples, [[1.0, 2.0], [1.0]])


# ---------------------------------------------------------------------------------------------
# Chapter 9's additions: logits only where they are needed, greedy rejections, the on-policy run


def test_logits_at_equals_the_full_logits_at_those_positions():
    model, x, y, mask = small_batch()
    with torch.no_grad():
        full = model(x)[0]  # (B, T, V)
        picked = model(x, logits_at=mask)[0]  # (N, V)
    torch.testing.assert_close(picked, full[mask], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="logits_at goes alone"):
        model(x, targets=y, logits_at=mask)
    with pytest.raises(ValueError, match="shaped like idx"):
        model(x, logits_at=mask[:, :3])


def test_hidden_states_are_what_forward_returns_as_hidden():
    model, x, _, _ = small_batch()
    with torch.no_grad():
        torch.testing.assert_close(model.hidden_states(x), model(x, return_hidden=True)[2])


def test_the_reward_model_never_runs_the_lm_head():
    model = reward_model()
    calls = []
    model.backbone.lm_head.register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        pair_rewards(model, collate_pairs(hand_made_pairs(), pad_id=0))
    assert not calls


def test_a_wrong_greedy_reply_is_rejected_first_and_a_right_one_chosen_first():
    records = [task("cat"), task("dog"), task("owl")]
    samples = [
        [Response("dog", True), Response("cat", True)],
        [Response("cow", True), Response(" dog", True)],
        [Response("owl", True)],
    ]
    greedy = [Response("bat", True), Response("dog", True), Response("owl", False)]  # the last never stopped
    pairs = onpolicy_pairs(records, samples, greedy)
    assert [(p["chosen"], p["rejected"]) for p in pairs.records] == [("cat", "bat"), ("dog", "cow")]
    assert (pairs.no_correct, pairs.no_wrong) == (0, 1)
    with pytest.raises(ValueError, match="one greedy reply"):
        onpolicy_pairs(records, samples, greedy[:2])


def test_onpolicy_tasks_hold_out_records_chapter_8_never_trained_on():
    from minigpt.instruct import TASKS, make_tasks, split_records
    from minigpt.preference import onpolicy_tasks

    prompts, held_out = onpolicy_tasks(50, held_out=70)
    trained, _ = split_records(make_tasks(1400, seed=0), 100, 0)
    assert prompts == trained[:50]
    key = lambda r: (r["instruction"], r["input"])  # noqa: E731
    assert not {key(r) for r in trained} & {key(r) for r in held_out}
    assert len({key(r) for r in held_out}) == 70
    assert sorted(collections_count(held_out).values()) == [10] * len(TASKS)  # the kinds take turns
    with pytest.raises(ValueError, match="prompts must be between 1 and 1300"):
        onpolicy_tasks(0)
    with pytest.raises(ValueError, match="count must be between 1 and"):
        onpolicy_tasks(10, held_out=5000)


def collections_count(records):
    from collections import Counter

    return Counter(r["instruction"] for r in records)


def test_the_nll_term_adds_the_chosen_replies_loss_per_token():
    from minigpt.dpo import chosen_nll

    batch = collate_pairs(hand_made_pairs(), pad_id=0)
    torch.manual_seed(0)
    policy = GPT(CONFIG)
    reference = copy.deepcopy(policy)
    with torch.no_grad():
        plain = dpo_loss_fn(reference, 0.1)(policy, tuple(batch))
        with_nll = dpo_loss_fn(reference, 0.1, nll_weight=0.5)(policy, tuple(batch))
        logps = pair_logprobs(policy, batch)
    nll = -(logps[:, 0] / batch.mask[:, 0].sum(dim=1)).mean()
    torch.testing.assert_close(with_nll - plain, 0.5 * nll)
    torch.testing.assert_close(chosen_nll(torch.tensor([-2.0, -6.0]), torch.ones(2, 2)), torch.tensor(2.0))
    with pytest.raises(ValueError, match="nll_weight must be 0 or more"):
        dpo_loss_fn(reference, 0.1, nll_weight=-1.0)


def test_the_onpolicy_run_is_sized_by_the_base_and_the_device():
    from minigpt.dpo import ONPOLICY_CPU, ONPOLICY_GPU, OnPolicyRun
    from minigpt.instruct import make_run

    standin = OnPolicyRun.for_run(make_run("stand-in", "cpu"), "cpu")
    assert standin == ONPOLICY_CPU and standin.train_config(3).seed == 3
    assert OnPolicyRun.for_run(make_run("stand-in", "cuda", precision="fp16"), "cuda").prompts == ONPOLICY_CPU.prompts
    gpu = OnPolicyRun.for_run(make_run("gpt2", "cuda", precision="fp16"), "cuda")
    assert gpu.prompts == ONPOLICY_GPU.prompts and gpu.precision == "fp16"
    gpt2_on_cpu = OnPolicyRun.for_run(make_run("gpt2", "cpu"), "cpu")  # the stand-in's sizes, GPT-2's rate
    assert gpt2_on_cpu.prompts == ONPOLICY_CPU.prompts and gpt2_on_cpu.lr == ONPOLICY_GPU.lr



def test_the_nll_baseline_is_the_nll_term_of_dpo_and_never_reads_the_rejected_reply():
    torch.manual_seed(0)
    policy = GPT(TINY)
    batch = PreferenceDataset([RECORD], ENC, TINY.block_size).eval_batches(1, 1)[0]
    x, y, mask = batch
    chosen = pair_logprobs(policy, batch)[:, 0]
    by_hand = -(chosen / mask[:, 0].sum(dim=1)).mean()  # per token, the mean over pairs
    torch.testing.assert_close(chosen_nll_loss_fn()(policy, batch), by_hand)
    # DPO plus NLL, less DPO alone, is the NLL term
    reference = copy.deepcopy(policy)
    with_nll = dpo_loss_fn(reference, beta=0.1, nll_weight=1.0)(policy, batch)
    without = dpo_loss_fn(reference, beta=0.1)(policy, batch)
    torch.testing.assert_close(with_nll - without, by_hand)
    # the rejected reply does not enter: changing it changes nothing
    other = PairBatch(x.clone(), y.clone(), mask.clone())
    other.x[:, 1] = 0
    torch.testing.assert_close(chosen_nll_loss_fn()(policy, other), by_hand)
