"""Tokenizers: characters (Chapter 1), GPT-2's byte-level BPE (Chapter 4) and cl100k_base (the appendix
on Chinese text), and any of them cut to the tokens that occur in a training text (`SeenVocabulary`).

A model folder records its tokenizer as a small description (`describe_tokenizer`), from which
`tokenizer_from_description` rebuilds it: the characters and their ids, a tiktoken encoding by name
with the sha256 of its ranks file, or a cut vocabulary as its base's description and the ids it keeps.
"""

from __future__ import annotations

from collections.abc import Iterable

import tiktoken
from tiktoken.load import load_tiktoken_bpe

from .data import CL100K_BASE_RANKS, GPT2_BPE_RANKS, DataFile, data_path

ENDOFTEXT = "<|endoftext|>"
# cl100k_base's pre-split pattern and special tokens, as tiktoken publishes them in
# tiktoken_ext.openai_public.cl100k_base (a unit test checks that they are still the same).
CL100K_SPLIT = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|"""
    r"""\s+(?!\S)|\s"""
)
CL100K_SPECIAL_TOKENS = {
    ENDOFTEXT: 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}
# What each tiktoken encoding the course ships is called in a model folder, and its ranks file.
TIKTOKEN_RANKS = {"gpt2": GPT2_BPE_RANKS, "cl100k_base": CL100K_BASE_RANKS}


class CharTokenizer:
    """Maps each distinct character to an integer id, in sorted order of the characters."""

    def __init__(self, chars: Iterable[str]):
        self.chars: list[str] = sorted(set(chars))
        if any(len(c) != 1 for c in self.chars):
            raise ValueError("a CharTokenizer's vocabulary must be single characters")
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        """The vocabulary of every character that occurs in `text`."""
        return cls(text)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.stoi[c] for c in text]
        except KeyError:
            bad = next(i for i, c in enumerate(text) if c not in self.stoi)
            raise ValueError(
                f"character {text[bad]!r} (position {bad}) is not in this tokenizer's vocabulary of "
                f"{self.vocab_size} characters; it knows only {''.join(self.chars)!r}"
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        ids = [int(i) for i in ids]  # accepts a list or a 1-D tensor
        for i in ids:
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i} is outside the vocabulary (ids 0 to {self.vocab_size - 1})")
        return "".join(self.chars[i] for i in ids)

    # The names of tiktoken's Encoding, so that the command line handles both kinds of tokenizer alike.
    eot_token = None  # characters have no end-of-text token

    @property
    def n_vocab(self) -> int:
        return self.vocab_size

    def encode_ordinary(self, text: str) -> list[int]:
        return self.encode(text)

    def decode_single_token_bytes(self, token: int) -> bytes:
        return self.decode([token]).encode("utf-8")

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


def _shipped_ranks(file: DataFile, verbose: bool) -> dict[bytes, int]:
    """A shipped tiktoken ranks file, read after checking its sha256 (tiktoken checks it again)."""
    return load_tiktoken_bpe(str(data_path(file, verbose)), expected_hash=file.sha256)


def gpt2_tokenizer(verbose: bool = False) -> tiktoken.Encoding:
    """GPT-2's tokenizer, built offline from the shipped BPE ranks.

    The ranks file is the one tiktoken downloads for `r50k_base` (its sha256 is tiktoken's own expected
    hash), and the split pattern is tiktoken's for GPT-2, so the result encodes exactly like
    `tiktoken.get_encoding("gpt2")` without needing the network.
    """
    from tiktoken_ext.openai_public import r50k_pat_str

    return tiktoken.Encoding(
        name="gpt2",
        pat_str=r50k_pat_str,
        mergeable_ranks=_shipped_ranks(GPT2_BPE_RANKS, verbose),
        special_tokens={ENDOFTEXT: 50256},
        explicit_n_vocab=50257,
    )


def cl100k_tokenizer(verbose: bool = False) -> tiktoken.Encoding:
    """cl100k_base (the tokenizer of GPT-3.5 and GPT-4), built offline from the shipped BPE ranks.

    The ranks file is the one tiktoken downloads for `cl100k_base` (its sha256 is tiktoken's expected
    hash); with tiktoken's cl100k split pattern and special tokens the result encodes exactly like
    `tiktoken.get_encoding("cl100k_base")`: "Hello, world!" -> [9906, 11, 1917, 0].
    """
    return tiktoken.Encoding(
        name="cl100k_base",
        pat_str=CL100K_SPLIT,
        mergeable_ranks=_shipped_ranks(CL100K_BASE_RANKS, verbose),
        special_tokens=CL100K_SPECIAL_TOKENS,
    )


class CodePoints:
    """Every Unicode character as one token, whose id is its code point (0 to 0x10FFFF).

    Nobody trains on this vocabulary of 1,114,112: it is the base that a character vocabulary is cut
    from (`SeenVocabulary`), as GPT-2's 50,257 tokens are the base of a cut byte-level one. Like a
    byte-level BPE, it encodes any text.
    """

    name = "unicode"
    n_vocab = 0x110000
    eot_token = None

    def encode_ordinary(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode_single_token_bytes(self, token: int) -> bytes:
        if not 0 <= token < self.n_vocab:
            raise ValueError(f"token id {token} is not a Unicode code point (0 to {self.n_vocab - 1})")
        return chr(token).encode("utf-8", errors="replace")  # a lone surrogate has no UTF-8: "?"

    def __repr__(self) -> str:
        return "CodePoints()"


UNKNOWN_TEXT = "\ufffd"  # what SeenVocabulary's unknown id decodes to: U+FFFD, Unicode's replacement character


class SeenVocabulary:
    """A tokenizer's vocabulary cut to the ids that occur in a training text, plus one unknown id.

    A model pays for every row of its vocabulary (an embedding and an output score each); rows that
    never occur in its training text are never trained as targets. This keeps only the base ids in
    `kept_ids`, renumbered 0 to K - 1 in increasing order, and gives id K (`unknown_id`) to every
    other base token, so any text still encodes: a character never seen in training (base `CodePoints`),
    or a byte-level BPE token never seen in training. Decoding never raises: the unknown id decodes
    to U+FFFD, and byte tokens that cut a character in two decode with errors="replace" (a streaming
    decoder should hold the bytes back instead: see `minigpt.cli`'s generate).

    `unknown_pieces(text)` gives the bytes behind each unknown id of `encode(text)`, so that a
    score can charge for spelling them out.
    """

    eot_token = None  # kept ids come from ordinary text, which holds no special tokens

    def __init__(self, base, kept_ids: Iterable[int]):
        self.base = base
        kept = sorted({int(i) for i in kept_ids})
        if not kept:
            raise ValueError("a SeenVocabulary keeps at least one id; none were given (was the text empty?)")
        for i in (kept[0], kept[-1]):
            if not 0 <= i < base.n_vocab:
                raise ValueError(f"id {i} is outside the base vocabulary of {base!r} (ids 0 to {base.n_vocab - 1})")
        for i in kept:
            try:
                base.decode_single_token_bytes(i)
            except KeyError:  # tiktoken: an id between its ordinary and its special tokens
                raise ValueError(f"id {i} is not a token of {base!r}") from None
        self.kept_ids: list[int] = kept
        self.index = {base_id: i for i, base_id in enumerate(kept)}  # base id -> our id
        self.unknown_id = len(kept)

    @classmethod
    def from_text(cls, base, text: str) -> "SeenVocabulary":
        """The ids of `base` that occur in `text`, plus the unknown id."""
        if not text:
            raise ValueError("a SeenVocabulary is made from a text, and the text given is empty")
        return cls(base, base.encode_ordinary(text))

    @property
    def n_vocab(self) -> int:
        return len(self.kept_ids) + 1

    vocab_size = n_vocab

    def from_base_ids(self, base_ids: Iterable[int]) -> list[int]:
        """Base ids as ours: each kept id renumbered, every other id the unknown id."""
        unknown = self.unknown_id
        return [self.index.get(int(i), unknown) for i in base_ids]

    def encode_ordinary(self, text: str) -> list[int]:
        return self.from_base_ids(self.base.encode_ordinary(text))

    def encode(self, text: str) -> list[int]:
        return self.encode_ordinary(text)

    def unknown_pieces(self, text: str) -> list[bytes]:
        """The bytes of the base token behind each unknown id of `encode(text)`, in order."""
        return [
            self.base.decode_single_token_bytes(i) for i in self.base.encode_ordinary(text) if i not in self.index
        ]

    def decode_single_token_bytes(self, token: int) -> bytes:
        token = int(token)
        if token == self.unknown_id:
            return UNKNOWN_TEXT.encode("utf-8")
        if not 0 <= token < self.unknown_id:
            raise ValueError(f"token id {token} is outside the vocabulary (ids 0 to {self.unknown_id})")
        return self.base.decode_single_token_bytes(self.kept_ids[token])

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids`; bytes that are not UTF-8 (a character cut in two) decode as U+FFFD."""
        return b"".join(self.decode_single_token_bytes(i) for i in ids).decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return f"SeenVocabulary({self.base!r}, {len(self.kept_ids)} ids kept + 1 unknown)"


TOKENIZER_KINDS = ("char", "gpt2", "cl100k")  # what `make_tokenizer` builds, and the command line's --tokenizer


def make_tokenizer(kind: str, text: str = "", seen_only: bool = False):
    """A tokenizer by kind: "char" (every character of `text`), "gpt2" (GPT-2's BPE) or "cl100k"
    (cl100k_base's BPE).

    With `seen_only`, the vocabulary is cut to the tokens that occur in `text`, plus one unknown id
    (`SeenVocabulary`); for "char" a character outside `text` then encodes as the unknown id instead
    of raising ValueError.
    """
    if kind not in TOKENIZER_KINDS:
        raise ValueError(f"unknown tokenizer {kind!r}: choose one of {', '.join(TOKENIZER_KINDS)}")
    if not text and (kind == "char" or seen_only):
        what = "a character tokenizer" if kind == "char" else f"a {kind} tokenizer cut to the tokens of a text"
        raise ValueError(f"{what} is made from a text, and the text given is empty")
    if kind == "char":
        return SeenVocabulary.from_text(CodePoints(), text) if seen_only else CharTokenizer.from_text(text)
    base = gpt2_tokenizer() if kind == "gpt2" else cl100k_tokenizer()
    return SeenVocabulary.from_text(base, text) if seen_only else base


def tokenizer_kind(tokenizer) -> str:
    """Which of TOKENIZER_KINDS a tokenizer is (a SeenVocabulary: its base's)."""
    if isinstance(tokenizer, SeenVocabulary):
        return tokenizer_kind(tokenizer.base)
    if isinstance(tokenizer, (CharTokenizer, CodePoints)):
        return "char"
    if isinstance(tokenizer, tiktoken.Encoding) and tokenizer.name in ("gpt2", "cl100k_base"):
        return "gpt2" if tokenizer.name == "gpt2" else "cl100k"
    raise ValueError(f"{tokenizer!r} is none of the course's tokenizers ({', '.join(TOKENIZER_KINDS)})")


def describe_tokenizer(tokenizer) -> dict:
    """What a model folder records of its tokenizer (JSON): enough to rebuild exactly the same one."""
    if isinstance(tokenizer, CharTokenizer):
        return {"type": "char", "chars": tokenizer.chars}
    if isinstance(tokenizer, CodePoints):
        return {"type": "unicode"}
    if isinstance(tokenizer, tiktoken.Encoding) and tokenizer.name in TIKTOKEN_RANKS:
        return {"type": "tiktoken", "encoding": tokenizer.name, "ranks_sha256": TIKTOKEN_RANKS[tokenizer.name].sha256}
    if isinstance(tokenizer, SeenVocabulary):
        return {"type": "seen", "base": describe_tokenizer(tokenizer.base), "kept_ids": tokenizer.kept_ids}
    raise ValueError(
        f"cannot describe the tokenizer {tokenizer!r}: a CharTokenizer, GPT-2's or cl100k_base's encoding, "
        "or a SeenVocabulary of one of them is needed"
    )


def tokenizer_from_description(description: dict):
    """The tokenizer that `describe_tokenizer` described."""
    if not isinstance(description, dict):
        raise ValueError(f"a tokenizer's description is a JSON object (dict), got {description!r}")
    kind = description.get("type")
    if kind == "char":
        chars = description.get("chars")
        if not isinstance(chars, list) or not chars:
            raise ValueError("a char tokenizer's description needs 'chars', the list of its characters")
        tokenizer = CharTokenizer(chars)
        if tokenizer.chars != chars:
            raise ValueError("a char tokenizer's 'chars' must be distinct and sorted, as describe_tokenizer writes them")
        return tokenizer
    if kind == "tiktoken" and description.get("encoding") in TIKTOKEN_RANKS:
        name = description["encoding"]
        if description.get("ranks_sha256") != TIKTOKEN_RANKS[name].sha256:
            raise ValueError(
                f"the tokenizer's ranks_sha256 {description.get('ranks_sha256')!r} is not "
                f"{'GPT-2' if name == 'gpt2' else name}'s "
                f"({TIKTOKEN_RANKS[name].sha256})"
            )
        return gpt2_tokenizer() if name == "gpt2" else cl100k_tokenizer()
    if kind == "unicode":
        return CodePoints()
    if kind == "seen":
        base, kept = description.get("base"), description.get("kept_ids")
        if not isinstance(kept, list) or not kept or not all(isinstance(i, int) for i in kept):
            raise ValueError("a seen tokenizer's description needs 'kept_ids', the list of the base ids it keeps")
        if not isinstance(base, dict) or base.get("type") == "seen":
            raise ValueError("a seen tokenizer's description needs 'base', the description of its (uncut) base")
        tokenizer = SeenVocabulary(tokenizer_from_description(base), kept)
        if tokenizer.kept_ids != kept:
            raise ValueError("a seen tokenizer's 'kept_ids' must be distinct and sorted, as describe_tokenizer writes them")
        return tokenizer
    raise ValueError(
        f"unknown tokenizer description {description!r}: expected type 'char' with 'chars', type "
        "'tiktoken' with encoding 'gpt2' or 'cl100k_base', or type 'seen' with 'base' and 'kept_ids'"
    )
