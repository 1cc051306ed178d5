"""minigpt: the package built, chapter by chapter, in *Build a GPT from scratch*."""

from .bigram import BigramLanguageModel, counted_losses
from .data import (
    GPT2_BPE_RANKS,
    TINY_SHAKESPEARE,
    DataFile,
    data_path,
    get_batch,
    load_text,
    train_val_split,
)
from .generate import generate
from .model import GPT, CausalSelfAttention, GPTConfig
from .notebook import setup_figures
from .tokenizer import CharTokenizer, gpt2_tokenizer
from .utils import choose_device, set_seed

__version__ = "0.1.0"

__all__ = [
    "GPT2_BPE_RANKS",
    "TINY_SHAKESPEARE",
    "BigramLanguageModel",
    "CausalSelfAttention",
    "CharTokenizer",
    "DataFile",
    "GPT",
    "GPTConfig",
    "choose_device",
    "counted_losses",
    "data_path",
    "generate",
    "get_batch",
    "gpt2_tokenizer",
    "load_text",
    "set_seed",
    "setup_figures",
    "train_val_split",
]
