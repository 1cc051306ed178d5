import minigpt
import pytest
import tiktoken
import torch


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


def test_gpt2_tokenizer_matches_tiktoken_when_online():
    try:
        reference = tiktoken.get_encoding("gpt2")
    except Exception:  # no network and no tiktoken cache: nothing to compare with
        pytest.skip("tiktoken's own gpt2 encoding is not available offline")
    text = "All:\nSpeak, speak.\n\n  tabs\tand  spaces, numbers 12345 and 'quotes' it's"
    assert minigpt.gpt2_tokenizer().encode(text) == reference.encode(text)
