"""minigpt: the package built, chapter by chapter, in *Build a GPT from scratch*."""

from .bigram import BigramLanguageModel
from .model import GPT, GPTConfig
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
from .tokenizer import CharTokenizer, gpt2_tokenizer
from .notebook import setup_figures
from .utils import choose_device, set_seed

__version__ = "0.1.0"
