"""One model folder: what save_pretrained and export write, and what load_model reads back."""

import json
import sys

import pytest
import torch

from minigpt import GPT, CharTokenizer, GPTConfig, gpt2_tokenizer
from minigpt.checkpoint import export_checkpoint
from minigpt.curves import TensorBoardCurves
from minigpt.pretrained import load_model, save_pretrained
from minigpt.tokenizer import describe_tokenizer, make_tokenizer, tokenizer_from_description
from minigpt.train import TrainConfig, Trainer

TEXT = "to be, or not to be: that is the question"


def char_model(tokenizer):
    torch.manual_seed(0)
    return GPT(GPTConfig(block_size=8, vocab_size=tokenizer.vocab_size, n_layer=1, n_head=1, n_embd=8)).eval()


def test_a_character_model_round_trips_with_its_tokenizer_and_prompt_format(tmp_path):
    tokenizer = CharTokenizer.from_text(TEXT)
    model = char_model(tokenizer)
    save_pretrained(model, tmp_path, tokenizer=tokenizer, prompt_format="alpaca")
    loaded = load_model(tmp_path)
    assert loaded.tokenizer.chars == tokenizer.chars and loaded.prompt_format == "alpaca"
    x = torch.tensor([tokenizer.encode("to be")])
    torch.testing.assert_close(loaded.model(x)[0], model(x)[0], rtol=0, atol=0)


def test_gpt2_s_own_folder_loads_as_a_base_model_with_gpt2_s_tokenizer(tmp_path):
    torch.manual_seed(0)
    save_pretrained(GPT(GPTConfig(block_size=8, vocab_size=50257, n_layer=1, n_head=1, n_embd=8)), tmp_path)
    assert json.loads((tmp_path / "minigpt.json").read_text())["tokenizer"]["encoding"] == "gpt2"
    (tmp_path / "minigpt.json").unlink()  # as on the Hub
    loaded = load_model(tmp_path)
    assert loaded.tokenizer.name == "gpt2" and loaded.prompt_format == "plain"


def test_a_folder_that_cannot_say_its_tokenizer_is_refused(tmp_path):
    tokenizer = CharTokenizer.from_text(TEXT)
    with pytest.raises(ValueError, match="say which tokenizer this model reads .* its vocabulary of 15"):
        save_pretrained(char_model(tokenizer), tmp_path)
    save_pretrained(char_model(tokenizer), tmp_path, tokenizer=tokenizer)
    (tmp_path / "minigpt.json").unlink()
    with pytest.raises(
        FileNotFoundError, match="no minigpt.json to say which tokenizer its vocabulary of 15"
    ):
        load_model(tmp_path)


def test_mismatched_or_unknown_descriptions_are_clear_errors(tmp_path):
    tokenizer = CharTokenizer.from_text(TEXT)
    with pytest.raises(ValueError, match="unknown prompt format 'chatml'"):
        save_pretrained(char_model(tokenizer), tmp_path, tokenizer=tokenizer, prompt_format="chatml")
    with pytest.raises(ValueError, match="the tokenizer has 50257 tokens but the model's vocabulary only 15"):
        save_pretrained(char_model(tokenizer), tmp_path, tokenizer=gpt2_tokenizer())
    with pytest.raises(ValueError, match="unknown tokenizer description"):
        tokenizer_from_description({"type": "sentencepiece"})
    with pytest.raises(ValueError, match="is not GPT-2's"):
        tokenizer_from_description({"type": "tiktoken", "encoding": "gpt2", "ranks_sha256": "0" * 64})
    with pytest.raises(ValueError, match="distinct and sorted"):
        tokenizer_from_description({"type": "char", "chars": ["b", "a"]})
    with pytest.raises(ValueError, match="unknown tokenizer 'bpe'"):
        make_tokenizer("bpe", TEXT)


def test_descriptions_rebuild_the_same_tokenizers():
    for tokenizer in (CharTokenizer.from_text(TEXT), gpt2_tokenizer()):
        again = tokenizer_from_description(json.loads(json.dumps(describe_tokenizer(tokenizer))))
        assert again.encode_ordinary(TEXT) == tokenizer.encode_ordinary(TEXT)
        assert again.decode_single_token_bytes(3) == tokenizer.decode_single_token_bytes(3)


def test_a_checkpoint_of_a_trainer_exports_to_a_model_folder(tmp_path):
    tokenizer = CharTokenizer.from_text(TEXT)
    data = torch.tensor(tokenizer.encode(TEXT * 20))
    config = TrainConfig(max_steps=2, batch_size=2, eval_interval=2, eval_windows=2, warmup_steps=1)
    trainer = Trainer(char_model(tokenizer), data, data, config, checkpoint_dir=tmp_path / "checkpoints")
    trainer.train(progress=False)
    trainer.save_checkpoint()  # a Trainer that did not record its tokenizer (no folder_info)
    with pytest.raises(ValueError, match="say which tokenizer"):
        export_checkpoint(tmp_path / "checkpoints", tmp_path / "model")
    export_checkpoint(tmp_path / "checkpoints", tmp_path / "model", tokenizer=tokenizer)
    loaded = load_model(tmp_path / "model")
    assert loaded.prompt_format == "plain"
    for ours, theirs in zip(loaded.model.parameters(), trainer.model.parameters()):
        assert torch.equal(ours, theirs.detach())
    with pytest.raises(FileNotFoundError, match="is not a training checkpoint"):
        export_checkpoint(tmp_path / "model", tmp_path / "again")


def test_missing_tensorboard_is_named_with_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if not installed
    with pytest.raises(
        ImportError, match="needs the tensorboard package, which is not installed: pip install tensorboard"
    ):
        TensorBoardCurves(tmp_path)
