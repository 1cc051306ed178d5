"""The model's check of token ids: a clear error for a bad id, no cost for a correct batch on the CPU."""

import pytest
import torch

from minigpt import GPT, GPTConfig

TINY = GPTConfig(block_size=16, vocab_size=50, n_layer=2, n_head=2, n_embd=32)


@pytest.mark.parametrize("bad", [50, 1000, -1])
def test_a_bad_id_is_named_without_the_embeddings_index_error(bad):
    idx = torch.zeros((2, 4), dtype=torch.long)
    idx[1, 2] = bad
    with pytest.raises(ValueError, match=rf"token id {bad} is outside the vocabulary.*\[0, 50\)") as error:
        GPT(TINY)(idx)
    assert error.value.__context__ is None  # the embedding's IndexError is not shown beside it


def test_correct_ids_on_the_cpu_cost_no_check(monkeypatch):
    """On the CPU the embedding itself finds a bad id; a correct batch is not scanned beforehand."""

    def scan(self, idx):
        raise AssertionError("a correct batch on the CPU was scanned for bad ids")

    monkeypatch.setattr(GPT, "_bad_id_error", scan)
    logits, _ = GPT(TINY)(torch.randint(50, (2, 4)))
    assert logits.shape == (2, 4, 50)
