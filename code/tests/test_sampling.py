import math

import pytest
import torch
import torch.nn.functional as F

from minigpt.sampling import SamplingRule, apply_temperature, greedy, top_k_filter, top_p_filter


def random_logits(rows=16, vocab=50, seed=0) -> torch.Tensor:
    return torch.randn(rows, vocab, generator=torch.Generator().manual_seed(seed)) * 3


@pytest.mark.parametrize("k", [1, 3, 10, 50, 80])
def test_top_k_keeps_exactly_the_k_most_likely(k):
    logits = random_logits()
    filtered = top_k_filter(logits, k)
    kept = torch.isfinite(filtered)
    assert (kept.sum(dim=1) == min(k, 50)).all()
    assert torch.equal(filtered[kept], logits[kept])  # the kept logits are unchanged
    # every kept logit is at least as large as every dropped one
    smallest_kept = torch.where(kept, logits, math.inf).min(dim=1).values
    largest_dropped = torch.where(kept, -math.inf, logits).max(dim=1).values
    assert (smallest_kept >= largest_dropped).all()


def test_top_k_sampling_never_leaves_the_k_most_likely():
    logits = random_logits(rows=4000, vocab=30, seed=1)
    rule = SamplingRule(temperature=1.5, top_k=5)
    drawn = rule.next_token(logits, torch.Generator().manual_seed(0))  # (4000,)
    top5 = logits.topk(5, dim=1).indices
    assert (top5 == drawn[:, None]).any(dim=1).all()


@pytest.mark.parametrize("p", [1e-6, 0.1, 0.5, 0.9, 0.999])
def test_top_p_set_is_minimal_reaches_p_and_is_never_empty(p):
    logits = random_logits(rows=64, seed=2)
    probs = F.softmax(logits, dim=-1)
    kept = torch.isfinite(top_p_filter(logits, p))
    assert (kept.sum(dim=1) >= 1).all()
    kept_mass = (probs * kept).sum(dim=1)
    assert (kept_mass >= p - 1e-6).all()  # reaches p
    # minimal: without its least likely token, the set falls short of p
    least_kept = torch.where(kept, probs, math.inf).min(dim=1).values
    assert (kept_mass - least_kept < p).all()
    # and it is made of the most likely tokens
    largest_dropped = torch.where(kept, 0.0, probs).max(dim=1).values
    assert (least_kept >= largest_dropped).all()


def test_top_p_keeps_only_the_top_token_when_it_alone_reaches_p():
    logits = torch.tensor([[5.0, 1.0, 0.0, -1.0]])  # the first token has probability 0.97
    assert torch.isfinite(top_p_filter(logits, 0.9)).tolist() == [[True, False, False, False]]
    assert torch.isfinite(top_p_filter(logits, 0.99)).sum() == 2


def test_temperature_reshapes_and_zero_is_argmax():
    logits = random_logits()
    for t in (0.5, 2.0):
        assert torch.allclose(apply_temperature(logits, t), logits / t)
    sharp = F.softmax(apply_temperature(logits, 0.5), dim=-1).max(dim=1).values
    flat = F.softmax(apply_temperature(logits, 2.0), dim=-1).max(dim=1).values
    assert (sharp > F.softmax(logits, dim=-1).max(dim=1).values).all() and (flat < sharp).all()
    assert torch.equal(SamplingRule(temperature=0).next_token(logits), logits.argmax(dim=1))
    assert torch.equal(greedy(logits), logits.argmax(dim=1))
    # temperature -> 0: sampling becomes the argmax (these logits' top two differ by far more than 1e-3)
    nearly_greedy = SamplingRule(temperature=1e-3).next_token(logits, torch.Generator().manual_seed(0))
    assert torch.equal(nearly_greedy, logits.argmax(dim=1))


@pytest.mark.parametrize(
    "rule",
    [
        SamplingRule(temperature=1.0),
        SamplingRule(temperature=0.7, top_k=4),
        SamplingRule(temperature=1.3, top_p=0.8),
        SamplingRule(temperature=1.0, top_k=6, top_p=0.9),
    ],
    ids=["plain", "top_k", "top_p", "both"],
)
def test_draws_follow_the_filtered_renormalised_distribution(rule):
    logits = torch.tensor([2.0, 1.5, 1.0, 0.8, 0.5, 0.0, -0.5, -1.0, -2.0, -3.0])
    expected = F.softmax(rule.filter(logits[None]), dim=-1)[0]  # (10,), zeros where filtered out
    n = 40_000
    drawn = rule.next_token(logits.expand(n, -1), torch.Generator().manual_seed(1234))
    observed = torch.bincount(drawn, minlength=10).double() / n
    assert (observed[expected == 0] == 0).all(), "a filtered-out token was drawn"
    total_variation = 0.5 * (observed - expected).abs().sum()
    assert total_variation < 0.01  # its standard deviation at n = 40,000 is about 0.002
    kept = expected > 0
    chi_square = (n * (observed[kept] - expected[kept]) ** 2 / expected[kept]).sum()
    assert chi_square < 29.6  # the 0.1% critical value of chi-square with 9 degrees of freedom (at most)


def test_seeded_draws_repeat():
    logits = random_logits()
    rule = SamplingRule(top_p=0.9)
    a = rule.next_token(logits, torch.Generator().manual_seed(5))
    b = rule.next_token(logits, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(temperature=-0.5), "temperature must be a finite number >= 0"),
        (dict(temperature=math.nan), "temperature"),
        (dict(top_k=0), "top_k must be a whole number >= 1"),
        (dict(top_k=2.5), "top_k"),
        (dict(top_p=0.0), r"top_p must be a number in \(0, 1\]"),
        (dict(top_p=1.5), "top_p"),
    ],
)
def test_bad_rules_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        SamplingRule(**options)


def test_apply_temperature_refuses_zero():
    with pytest.raises(ValueError, match="greedy"):
        apply_temperature(random_logits(), 0.0)


def test_the_inverse_cdf_draw_follows_the_distribution_and_never_picks_a_zero():
    from minigpt.sampling import SamplingRule, inverse_cdf_draw

    probs = torch.tensor([[0.0, 0.5, 0.0, 0.3, 0.2, 0.0]]).repeat(20000, 1)  # (B, V)
    drawn = inverse_cdf_draw(probs, torch.Generator().manual_seed(0))
    counts = torch.bincount(drawn, minlength=6).float() / len(drawn)
    assert counts[[0, 2, 5]].sum() == 0
    torch.testing.assert_close(counts, probs[0], atol=0.015, rtol=0)
    with pytest.raises(ValueError, match="draw must be one of"):
        SamplingRule(draw="gumbel")
