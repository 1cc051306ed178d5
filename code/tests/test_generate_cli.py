"""The command line `minigpt generate`, end to end, on small models saved to a temporary folder."""

import os
import re
import subprocess
import sys

import pytest
import torch

from minigpt import GPT, CharTokenizer, GPTConfig, generate, gpt2_tokenizer
from minigpt.cli import main as cli_main
from minigpt.pretrained import save_pretrained

SMALL = GPTConfig(block_size=32, vocab_size=50257, n_layer=1, n_head=2, n_embd=16)
PROMPT = "To be, or not to be"


def small_model(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(SMALL).eval()


def main(args: list[str]) -> int:
    return cli_main(["generate", *args])


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, "-m", "minigpt", "generate", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def expected_text(model: GPT, max_new_tokens: int, **options) -> str:
    tokenizer = gpt2_tokenizer()
    prompt = torch.tensor([tokenizer.encode(PROMPT)])
    out = generate(model, prompt, max_new_tokens, stop_tokens=tokenizer.eot_token, **options)
    row = out.rows()[0][prompt.shape[1] :]
    return PROMPT + tokenizer.decode(row[:-1] if row and row[-1] == tokenizer.eot_token else row)


def test_cli_streams_the_greedy_continuation_from_a_fresh_process(tmp_path):
    model = small_model()
    save_pretrained(model, tmp_path / "ckpt")
    result = run_cli("--model", str(tmp_path / "ckpt"), "--prompt", PROMPT, "--max-new-tokens", "12",
                     "--temperature", "0", "--device", "cpu")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected_text(model, 12, temperature=0) + "\n"
    assert "parameters on cpu" in result.stderr


def test_cli_in_hugging_face_layout_samples_with_a_seed(tmp_path):
    model = small_model(1)
    save_pretrained(model, tmp_path / "hf")
    (tmp_path / "hf" / "minigpt.json").unlink()  # as GPT-2's own folders: GPT-2's tokenizer is assumed
    args = ["--model", str(tmp_path / "hf"), "--prompt", PROMPT, "--max-new-tokens", "10", "--top-k", "50",
            "--top-p", "0.95", "--temperature", "0.9", "--seed", "7", "--device", "cpu"]  # fmt: skip
    first, second = run_cli(*args), run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    g = torch.Generator().manual_seed(7)
    assert first.stdout == expected_text(model, 10, top_k=50, top_p=0.95, temperature=0.9, generator=g) + "\n"


def test_cli_stops_at_end_of_text_unless_told_not_to(tmp_path, capsys):
    model = small_model()
    # Every position's final state points along end-of-text's embedding, made the longest: greedy picks it.
    direction = torch.nn.functional.normalize(torch.randn(SMALL.n_embd), dim=0)
    with torch.no_grad():
        model.transformer.wte.weight[50256] = 10 * direction
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(direction)
    save_pretrained(model, tmp_path / "eot")
    main(["--model", str(tmp_path / "eot"), "--prompt", PROMPT, "--temperature", "0", "--device", "cpu"])
    assert capsys.readouterr().out == PROMPT + "\n"
    main(["--model", str(tmp_path / "eot"), "--prompt", PROMPT, "--temperature", "0", "--max-new-tokens", "2",
          "--no-stop", "--device", "cpu"])  # fmt: skip
    assert capsys.readouterr().out == PROMPT + "<|endoftext|>" * 2 + "\n"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--temperature", "-1"], "--temperature must be a finite number >= 0"),
        (["--top-p", "0"], r"--top-p must be a number in \(0, 1\]"),
        (["--top-p", "1.5"], r"--top-p must be a number in \(0, 1\]"),
        (["--top-k", "0"], "--top-k must be a whole number >= 1"),
        (["--max-new-tokens", "-5"], "--max-new-tokens must be a whole number >= 0"),
        (["--prompt", ""], "--prompt is empty"),
    ],
)
def test_cli_rejects_bad_parameters_by_name(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--prompt", PROMPT, *args])
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_cli_names_a_missing_model_folder(tmp_path):
    with pytest.raises(SystemExit, match="neither a GPT-2 model name .* nor a folder"):
        main(["--model", str(tmp_path / "nothing-here"), "--prompt", PROMPT])


def test_cli_writes_with_the_tokenizer_the_model_folder_records(tmp_path, capsys):
    text = "to be or not to be"
    tokenizer = CharTokenizer.from_text(text)
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=8, vocab_size=tokenizer.vocab_size, n_layer=1, n_head=1, n_embd=8)).eval()
    save_pretrained(model, tmp_path / "chars", tokenizer=tokenizer)
    main(["--model", str(tmp_path / "chars"), "--prompt", "to be", "--temperature", "0", "--max-new-tokens", "6",
          "--device", "cpu"])  # fmt: skip
    ids = generate(model, torch.tensor([tokenizer.encode("to be")]), 6, temperature=0).rows()[0]
    assert capsys.readouterr().out == tokenizer.decode(ids) + "\n"
    with pytest.raises(SystemExit) as exit_info:
        main(["--model", str(tmp_path / "chars"), "--prompt", "to bee!", "--device", "cpu"])
    assert exit_info.value.code == 2 and "character '!' (position 6)" in capsys.readouterr().err


def test_cli_points_from_a_run_s_checkpoints_to_export(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "latest").write_text("step_000010")
    with pytest.raises(SystemExit, match="training run's checkpoints, not a model folder: .*minigpt export"):
        main(["--model", str(tmp_path / "checkpoints"), "--prompt", PROMPT])
