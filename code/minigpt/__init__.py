"""minigpt: the package built, chapter by chapter, in *Build a GPT from scratch*."""

import warnings

from .bigram import BigramLanguageModel, counted_losses, counted_ngram_loss
from .data import (
    GPT2_BPE_RANKS,
    TINY_SHAKESPEARE,
    DataFile,
    data_path,
    get_batch,
    load_text,
    train_val_split,
)
from .generate import Generation, generate, stream
from .instruct import InstructionDataset, format_prompt, load_instruction_data, make_tasks
from .model import GPT, CausalSelfAttention, GPTConfig, KVCache
from .notebook import progress, setup_figures
from .pretrained import BaseModel, check_quality, from_pretrained, load_base_model, save_pretrained
from .sampling import SamplingRule, apply_temperature, greedy, top_k_filter, top_p_filter
from .tokenizer import CharTokenizer, gpt2_tokenizer
from .utils import choose_device, set_seed

__version__ = "0.1.0"

# `python -m minigpt.train` (an old entry point, which names the new command) runs a module that this
# package has already imported; Python warns about that, harmlessly.
warnings.filterwarnings(
    "ignore", message=r"'minigpt\.(train|generate|chat)' found in sys.modules", category=RuntimeWarning
)

__all__ = [
    "GPT2_BPE_RANKS",
    "TINY_SHAKESPEARE",
    "BaseModel",
    "BigramLanguageModel",
    "CausalSelfAttention",
    "CharTokenizer",
    "DataFile",
    "GPT",
    "GPTConfig",
    "Generation",
    "InstructionDataset",
    "KVCache",
    "SamplingRule",
    "apply_temperature",
    "check_quality",
    "choose_device",
    "counted_losses",
    "counted_ngram_loss",
    "data_path",
    "format_prompt",
    "from_pretrained",
    "generate",
    "get_batch",
    "gpt2_tokenizer",
    "greedy",
    "load_base_model",
    "load_instruction_data",
    "load_text",
    "make_tasks",
    "progress",
    "save_pretrained",
    "set_seed",
    "setup_figures",
    "stream",
    "top_k_filter",
    "top_p_filter",
    "train_val_split",
]
