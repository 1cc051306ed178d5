"""cl100k_base built offline, vocabularies cut to the tokens of a training text (SeenVocabulary), and the
command line on Chinese text with each tokenizer (the appendix on Chinese text)."""

import hashlib
import json

import minigpt
import pytest
import tiktoken
import tiktoken_ext.openai_public as openai_public
import torch
from minigpt import GPT, GPTConfig
from minigpt.cli import main
from minigpt.pretrained import load_model, save_pretrained
from minigpt.tokenizer import (
    CL100K_SPECIAL_TOKENS,
    CL100K_SPLIT,
    TOKENIZER_KINDS,
    CharTokenizer,
    CodePoints,
    SeenVocabulary,
    cl100k_tokenizer,
    describe_tokenizer,
    gpt2_tokenizer,
    make_tokenizer,
    tokenizer_from_description,
    tokenizer_kind,
)
from tiktoken import load as tiktoken_load

POEM = "秦川雄帝宅，函谷壯皇居。\n綺殿千尋起，離宮百雉餘。\n"


@pytest.fixture(scope="module")
def poems() -> str:
    return minigpt.load_text(minigpt.data.TANG_POEMS, verbose=False)


def test_cl100k_encodes_as_published_offline():
    enc = cl100k_tokenizer()
    assert enc.encode("Hello, world!") == [9906, 11, 1917, 0]
    assert (enc.n_vocab, enc.eot_token) == (100277, 100257)
    assert enc.encode("<|endoftext|>", allowed_special="all") == [100257]
    assert enc.decode(enc.encode(POEM)) == POEM


def test_cl100k_split_pattern_and_special_tokens_are_tiktoken_s(monkeypatch):
    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda *args, **kwargs: {})  # no download
    published = openai_public.cl100k_base()
    assert published["pat_str"] == CL100K_SPLIT
    assert published["special_tokens"] == CL100K_SPECIAL_TOKENS


def test_cl100k_matches_tiktoken_s_own_constructor_offline(monkeypatch, tmp_path, poems):
    """tiktoken's own cl100k_base, its download served from its cache by the shipped copy."""
    ours = cl100k_tokenizer()
    ranks = minigpt.data_path(minigpt.data.CL100K_BASE_RANKS, verbose=False)
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    url = minigpt.data.CL100K_BASE_RANKS.url
    (cache / hashlib.sha1(url.encode()).hexdigest()).write_bytes(ranks.read_bytes())
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))

    def no_network(blobpath):
        raise AssertionError(f"tiktoken tried to download {blobpath}")

    monkeypatch.setattr(tiktoken_load, "read_file", no_network)
    reference = tiktoken.Encoding(**openai_public.ENCODING_CONSTRUCTORS["cl100k_base"]())
    sample = poems[:20_000] + "Mixed text: 12345 numbers, 'quotes' it's Ünïcödé ✓\r\n"
    assert ours.encode(sample) == reference.encode(sample)
    assert ours.n_vocab == reference.n_vocab


def test_characters_cut_to_a_text_keep_char_tokenizer_ids_and_map_the_rest_to_unknown():
    seen = SeenVocabulary.from_text(CodePoints(), POEM)
    chars = CharTokenizer.from_text(POEM)
    assert seen.encode(POEM) == chars.encode(POEM)  # the same ids, in sorted order of the characters
    assert seen.n_vocab == seen.vocab_size == chars.vocab_size + 1 and seen.unknown_id == chars.vocab_size
    assert seen.encode("秦漢") == [chars.encode("秦")[0], seen.unknown_id]
    assert seen.decode(seen.encode("秦漢")) == "秦\ufffd"
    assert seen.unknown_pieces("秦漢川x") == ["漢".encode(), b"x"]
    with pytest.raises(ValueError, match="'漢'"):  # the plain CharTokenizer still refuses, as before
        chars.encode("漢")


def test_bpe_cut_to_a_text_renumbers_its_ids_in_order():
    enc = gpt2_tokenizer()
    seen = SeenVocabulary.from_text(enc, POEM)
    base_ids = enc.encode_ordinary(POEM)
    assert seen.kept_ids == sorted(set(base_ids))
    assert [seen.kept_ids[i] for i in seen.encode(POEM)] == base_ids
    assert seen.decode(seen.encode(POEM)) == POEM
    assert all(i == seen.unknown_id for i in seen.encode("Hello"))  # no Latin letters in the poem
    assert b"".join(seen.unknown_pieces("Hello")) == b"Hello"


def test_bytes_that_cut_a_character_decode_without_an_exception():
    seen = SeenVocabulary.from_text(gpt2_tokenizer(), POEM)
    ids = seen.encode("秦")
    pieces = [seen.decode_single_token_bytes(i) for i in ids]
    assert len(ids) > 1 and b"".join(pieces) == "秦".encode()  # one character, several byte tokens
    with pytest.raises(UnicodeDecodeError):
        pieces[0].decode("utf-8")  # its first token alone is not UTF-8...
    assert seen.decode(ids[:1]) == "\ufffd"  # ...and decodes to the replacement character
    broken = seen.decode(ids[1:] + ids)  # bytes with their character's first byte missing, then the whole
    assert broken.startswith("\ufffd") and broken.endswith("秦")


def test_bad_kept_ids_and_bad_token_ids_are_clear_errors():
    with pytest.raises(ValueError, match="keeps at least one id"):
        SeenVocabulary(CodePoints(), [])
    with pytest.raises(ValueError, match="text given is empty"):
        SeenVocabulary.from_text(CodePoints(), "")
    with pytest.raises(ValueError, match="id 50257 is outside the base vocabulary"):
        SeenVocabulary(gpt2_tokenizer(), [3, 50257])
    with pytest.raises(ValueError, match="id 100256 is not a token of"):  # a hole in cl100k_base's ids
        SeenVocabulary(cl100k_tokenizer(), [3, 100256])
    seen = SeenVocabulary.from_text(CodePoints(), "ab")
    with pytest.raises(ValueError, match=r"token id 3 is outside the vocabulary \(ids 0 to 2\)"):
        seen.decode([0, 3])
    with pytest.raises(ValueError, match="not a Unicode code point"):
        CodePoints().decode_single_token_bytes(0x110000)


def test_make_tokenizer_builds_every_kind_whole_or_cut():
    assert TOKENIZER_KINDS == ("char", "gpt2", "cl100k")
    for kind in TOKENIZER_KINDS:
        whole, cut = make_tokenizer(kind, POEM), make_tokenizer(kind, POEM, seen_only=True)
        assert tokenizer_kind(whole) == tokenizer_kind(cut) == kind
        assert isinstance(cut, SeenVocabulary) and cut.decode(cut.encode(POEM)) == POEM
    assert make_tokenizer("cl100k").name == "cl100k_base"
    with pytest.raises(ValueError, match="cl100k tokenizer cut to the tokens of a text is made from a text"):
        make_tokenizer("cl100k", "", seen_only=True)
    with pytest.raises(ValueError, match="unknown tokenizer 'bytes'"):
        make_tokenizer("bytes", POEM)
    with pytest.raises(ValueError, match="none of the course's tokenizers"):
        tokenizer_kind(object())


def test_descriptions_rebuild_cut_and_cl100k_tokenizers():
    tokenizers = [cl100k_tokenizer(), *(make_tokenizer(kind, POEM, seen_only=True) for kind in TOKENIZER_KINDS)]
    for tokenizer in tokenizers:
        description = json.loads(json.dumps(describe_tokenizer(tokenizer)))
        again = tokenizer_from_description(description)
        assert type(again) is type(tokenizer) and again.n_vocab == tokenizer.n_vocab
        assert again.encode_ordinary(POEM + "漢 Hello") == tokenizer.encode_ordinary(POEM + "漢 Hello")


@pytest.mark.parametrize(
    "description, message",
    [
        ({"type": "seen", "base": {"type": "unicode"}}, "needs 'kept_ids'"),
        ({"type": "seen", "base": {"type": "unicode"}, "kept_ids": [98, 97]}, "distinct and sorted"),
        ({"type": "seen", "kept_ids": [97]}, "needs 'base'"),
        ({"type": "seen", "base": {"type": "seen", "kept_ids": [1]}, "kept_ids": [0]}, "needs 'base'"),
        ({"type": "tiktoken", "encoding": "cl100k_base", "ranks_sha256": "0" * 64}, "is not cl100k_base's"),
        ({"type": "tiktoken", "encoding": "o200k_base"}, "unknown tokenizer description"),
        (["char"], "is a JSON object"),
    ],
)
def test_bad_descriptions_say_what_is_wrong(description, message):
    with pytest.raises(ValueError, match=message):
        tokenizer_from_description(description)


def test_a_model_with_a_cut_vocabulary_round_trips_through_its_folder(tmp_path):
    tokenizer = make_tokenizer("cl100k", POEM, seen_only=True)
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=8, vocab_size=tokenizer.n_vocab, n_layer=1, n_head=1, n_embd=8)).eval()
    save_pretrained(model, tmp_path, tokenizer=tokenizer)
    loaded = load_model(tmp_path)
    assert isinstance(loaded.tokenizer, SeenVocabulary) and loaded.tokenizer.kept_ids == tokenizer.kept_ids
    x = torch.tensor([tokenizer.encode("秦川雄")])
    torch.testing.assert_close(loaded.model(x)[0], model(x)[0], rtol=0, atol=0)


TINY_RUN = [
    *("--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4"),
    *("--max-steps", "3", "--eval-interval", "3", "--eval-windows", "4", "--warmup-steps", "1", "--device", "cpu"),
]


@pytest.mark.parametrize("kind", TOKENIZER_KINDS)
@pytest.mark.parametrize("seen", [False, True], ids=["whole", "seen"])
def test_train_on_poems_with_each_tokenizer_then_generate_from_the_folder(tmp_path, poems, capsys, kind, seen):
    data = tmp_path / "poems.txt"
    data.write_text(poems[:6000], encoding="utf-8")
    out = tmp_path / "run"
    extra = ["--seen-vocabulary"] if seen else []
    assert main(["train", "--data", str(data), "--tokenizer", kind, *extra, *TINY_RUN, "--out", str(out)]) == 0
    described = json.loads((out / "minigpt.json").read_text())["tokenizer"]
    assert described["type"] == ("seen" if seen else {"char": "char", "gpt2": "tiktoken", "cl100k": "tiktoken"}[kind])
    capsys.readouterr()
    assert main(["generate", "--model", str(out), "--prompt", "秦川", "--max-new-tokens", "12", "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("秦川")


def test_seen_vocabulary_is_refused_where_it_cannot_apply(tmp_path, poems, capsys):
    data = tmp_path / "poems.txt"
    data.write_text(poems[:6000], encoding="utf-8")
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), "--tokenizer", "char", *TINY_RUN, "--out", str(out)]) == 0
    with pytest.raises(SystemExit, match="--init model's vocabulary is fixed"):
        main(["train", "--data", str(data), "--init", str(out), "--seen-vocabulary", *TINY_RUN[10:]])
    records = tmp_path / "records.json"
    records.write_text(json.dumps([{"instruction": "a", "input": "", "output": "b"}] * 4))
    with pytest.raises(SystemExit, match="without --seen-vocabulary"):
        main(["train", "--data", str(records), "--tokenizer", "gpt2", "--seen-vocabulary", *TINY_RUN])
