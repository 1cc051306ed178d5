import hashlib

import pytest
import tiktoken
import tiktoken_ext.openai_public as openai_public
import torch
from tiktoken import load as tiktoken_load

import minigpt


def test_char_round_trip(shakespeare, char_data):
    tokenizer, _ = char_data
    sample = shakespeare[:5000]
    assert tokenizer.decode(tokenizer.encode(sample)) == sample
    assert tokenizer.decode(torch.tensor(tokenizer.encode(sample))) == sample  # tensors decode too


def test_char_ids_follow_sorted_order(char_data):
    tokenizer, _ = char_data
    assert tokenizer.encode("\n") == [0] and tokenizer.encode(" ") == [1]
    assert tokenizer.encode("az") == [39, 64]


def test_unknown_character_names_the_character_and_its_position(char_data):
    tokenizer, _ = char_data
    with pytest.raises(ValueError, match=r"'é' \(position 3\)"):
        tokenizer.encode("caté")


@pytest.mark.parametrize("bad_id", [65, -1, 1000])
def test_decode_rejects_ids_outside_the_vocabulary(char_data, bad_id):
    tokenizer, _ = char_data
    with pytest.raises(ValueError, match=f"token id {bad_id} is outside"):
        tokenizer.decode([0, bad_id])


def test_gpt2_tokenizer_offline():
    enc = minigpt.gpt2_tokenizer()
    assert enc.encode("Hello, world!") == [15496, 11, 995, 0]
    assert enc.n_vocab == 50257
    assert enc.eot_token == 50256
    assert enc.encode("<|endoftext|>", allowed_special={"<|endoftext|>"}) == [50256]
    text = "First Citizen:\nBefore we proceed any further, hear me speak.  Ünïcödé ✓"
    assert enc.decode(enc.encode(text)) == text  # byte-level BPE encodes any text


def test_gpt2_tokenizer_matches_tiktokens_own_constructor_offline(monkeypatch, tmp_path, shakespeare):
    """tiktoken's own r50k_base (GPT-2's encoding under its other name), built from the shipped ranks.

    tiktoken reads a download from its cache folder, under the SHA-1 of the file's URL, and checks
    the expected sha256; with the shipped copy put there, its own constructor runs with no network.
    """
    ours = minigpt.gpt2_tokenizer()
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    ranks = minigpt.data_path(minigpt.GPT2_BPE_RANKS, verbose=False)
    (cache / hashlib.sha1(minigpt.GPT2_BPE_RANKS.url.encode()).hexdigest()).write_bytes(ranks.read_bytes())
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))

    def no_network(blobpath):  # what tiktoken calls when its cache lacks a file
        raise AssertionError(f"tiktoken tried to download {blobpath}")

    monkeypatch.setattr(tiktoken_load, "read_file", no_network)
    reference = tiktoken.Encoding(**openai_public.ENCODING_CONSTRUCTORS["r50k_base"]())
    assert (ours.n_vocab, ours.eot_token) == (reference.n_vocab, reference.eot_token)
    text = "All:\nSpeak, speak.\n\n  tabs\tand  spaces, numbers 12345 and 'quotes' it's Ünïcödé ✓"
    for sample in (text, shakespeare[:20_000]):
        assert ours.encode(sample) == reference.encode(sample)
