"""minigpt: the package built, chapter by chapter, in *Build a GPT from scratch*."""

import warnings

from .bigram import BigramLanguageModel, counted_losses, counted_ngram_loss, interpolated_losses
from .data import (
    GPT2_BPE_RANKS,
    PREFERENCE_DATA,
    TINY_SHAKESPEARE,
    DataFile,
    data_path,
    get_batch,
    load_text,
    train_val_split,
)
from .dpo import DPOStats, dpo_loss, dpo_loss_fn, evaluate_dpo
from .generate import Generation, generate, stream
from .instruct import InstructionDataset, format_prompt, load_instruction_data, make_tasks
from .intervals import paired_interval, wilson_interval
from .model import GPT, CausalSelfAttention, GPTConfig, KVCache
from .notebook import progress, setup_figures
from .preference import (
    PairBatch,
    PreferenceDataset,
    best_of_n,
    checker_scores,
    collate_pairs,
    encode_pair,
    load_preference_data,
    onpolicy_pairs,
    pair_accuracy,
    sample_responses,
)
from .pretrained import BaseModel, check_quality, from_pretrained, load_base_model, save_pretrained
from .reward import (
    RewardModel,
    bradley_terry_loss,
    load_reward_model,
    reward_model_loss,
    rewards_of_pairs,
    save_reward_model,
    score_responses,
)
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
    "PREFERENCE_DATA",
    "TINY_SHAKESPEARE",
    "BaseModel",
    "BigramLanguageModel",
    "CausalSelfAttention",
    "CharTokenizer",
    "DPOStats",
    "DataFile",
    "GPT",
    "GPTConfig",
    "Generation",
    "InstructionDataset",
    "KVCache",
    "PairBatch",
    "PreferenceDataset",
    "RewardModel",
    "SamplingRule",
    "apply_temperature",
    "best_of_n",
    "bradley_terry_loss",
    "check_quality",
    "checker_scores",
    "choose_device",
    "collate_pairs",
    "counted_losses",
    "counted_ngram_loss",
    "data_path",
    "dpo_loss",
    "dpo_loss_fn",
    "encode_pair",
    "evaluate_dpo",
    "format_prompt",
    "from_pretrained",
    "generate",
    "get_batch",
    "gpt2_tokenizer",
    "greedy",
    "interpolated_losses",
    "load_base_model",
    "load_instruction_data",
    "load_preference_data",
    "load_reward_model",
    "load_text",
    "make_tasks",
    "onpolicy_pairs",
    "pair_accuracy",
    "paired_interval",
    "progress",
    "reward_model_loss",
    "rewards_of_pairs",
    "sample_responses",
    "save_pretrained",
    "save_reward_model",
    "score_responses",
    "set_seed",
    "setup_figures",
    "stream",
    "top_k_filter",
    "top_p_filter",
    "train_val_split",
    "wilson_interval",
]
