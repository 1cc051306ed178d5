"""Tokenizers: characters (Chapter 1) and GPT-2's byte-level BPE (Chapter 4).

A model folder records its tokenizer as a small description (`describe_tokenizer`), from which
`tokenizer_from_description` rebuilds it: the characters and their ids, or a tiktoken encoding by name
with the sha256 of its ranks file.
"""

from __future__ import annotations

from collections.abc import Iterable

import tiktoken
from tiktoken.load import load_tiktoken_bpe

from .data import GPT2_BPE_RANKS, data_path

ENDOFTEXT = "<|endoftext|>"


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


def gpt2_tokenizer(verbose: bool = False) -> tiktoken.Encoding:
    """GPT-2's tokenizer, built offline from the shipped BPE ranks.

    The ranks file is the one tiktoken downloads for `r50k_base` (its sha256 is tiktoken's own expected
    hash), and the split pattern is tiktoken's for GPT-2, so the result encodes exactly like
    `tiktoken.get_encoding("gpt2")` without needing the network.
    """
    from tiktoken_ext.openai_public import r50k_pat_str

    ranks = load_tiktoken_bpe(str(data_path(GPT2_BPE_RANKS, verbose)), expected_hash=GPT2_BPE_RANKS.sha256)
    return tiktoken.Encoding(
        name="gpt2",
        pat_str=r50k_pat_str,
        mergeable_ranks=ranks,
        special_tokens={ENDOFTEXT: 50256},
        explicit_n_vocab=50257,
    )


TOKENIZER_KINDS = ("char", "gpt2")  # what `make_tokenizer` builds, and the command line's --tokenizer


def make_tokenizer(kind: str, text: str = "") -> CharTokenizer | tiktoken.Encoding:
    """A tokenizer by kind: "char" (every character of `text`) or "gpt2" (GPT-2's BPE)."""
    if kind == "char":
        if not text:
            raise ValueError("a character tokenizer is made from a text, and the text given is empty")
        return CharTokenizer.from_text(text)
    if kind == "gpt2":
        return gpt2_tokenizer()
    raise ValueError(f"unknown tokenizer {kind!r}: choose one of {', '.join(TOKENIZER_KINDS)}")


def describe_tokenizer(tokenizer: CharTokenizer | tiktoken.Encoding) -> dict:
    """What a model folder records of its tokenizer (JSON): enough to rebuild exactly the same one."""
    if isinstance(tokenizer, CharTokenizer):
        return {"type": "char", "chars": tokenizer.chars}
    if isinstance(tokenizer, tiktoken.Encoding) and tokenizer.name == "gpt2":
        return {"type": "tiktoken", "encoding": "gpt2", "ranks_sha256": GPT2_BPE_RANKS.sha256}
    raise ValueError(f"cannot describe the tokenizer {tokenizer!r}: a CharTokenizer or GPT-2's encoding is needed")


def tokenizer_from_description(description: dict) -> CharTokenizer | tiktoken.Encoding:
    """The tokenizer that `describe_tokenizer` described."""
    kind = description.get("type")
    if kind == "char":
        chars = description.get("chars")
        if not isinstance(chars, list) or not chars:
            raise ValueError("a char tokenizer's description needs 'chars', the list of its characters")
        tokenizer = CharTokenizer(chars)
        if tokenizer.chars != chars:
            raise ValueError("a char tokenizer's 'chars' must be distinct and sorted, as describe_tokenizer writes them")
        return tokenizer
    if kind == "tiktoken" and description.get("encoding") == "gpt2":
        if description.get("ranks_sha256") != GPT2_BPE_RANKS.sha256:
            raise ValueError(
                f"the tokenizer's ranks_sha256 {description.get('ranks_sha256')!r} is not GPT-2's "
                f"({GPT2_BPE_RANKS.sha256})"
            )
        return gpt2_tokenizer()
    raise ValueError(
        f"unknown tokenizer description {description!r}: expected type 'char' with 'chars', or type "
        "'tiktoken' with encoding 'gpt2'"
    )
