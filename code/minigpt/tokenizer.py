"""Tokenizers: characters (Chapter 1) and GPT-2's byte-level BPE (Chapter 4)."""

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
