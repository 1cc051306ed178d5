"""The reader's workflow from a fresh shell: train on a text file of one's own, generate, chat, export,
fine-tune on instructions. Real processes running the installed `minigpt` command, outside the
repository, with a bare environment."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

MINIGPT = Path(sys.executable).parent / "minigpt"  # the console script installed beside this Python

VERSES = [
    "Twinkle, twinkle, little star, how I wonder what you are.",
    "Up above the world so high, like a diamond in the sky.",
    "When the blazing sun is gone, when he nothing shines upon,",
    "then you show your little light, twinkle, twinkle, all the night.",
]
SMALL_MODEL = [
    *("--n-layer", "2", "--n-head", "2", "--n-embd", "32", "--block-size", "32", "--batch-size", "16"),
    *("--device", "cpu"),
]


def minigpt(*args, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`minigpt ARGS` as a reader would type it in a new shell: no PYTHONPATH, the venv's bin on PATH."""
    env = {
        "PATH": f"{MINIGPT.parent}{os.pathsep}/usr/bin:/bin",
        "HOME": os.environ.get("HOME", str(cwd)),
        "OMP_NUM_THREADS": "1",
        "PYTHONIOENCODING": "utf-8",
        **{k: v for k, v in os.environ.items() if k.startswith(("HF_", "MINIGPT_", "XDG_"))},
    }
    return subprocess.run(
        ["minigpt", *map(str, args)],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A working folder outside the repository, holding a text of one's own."""
    home = tmp_path_factory.mktemp("reader")
    lines = [VERSES[i % 4] for i in range(400)]  # about 24,000 characters
    (home / "rhymes.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return home


@pytest.fixture(scope="module")
def trained(home):
    """minigpt train on the text file, characters, with live curves."""
    out = ok(minigpt("train", "--data", "rhymes.txt", "--tokenizer", "char", "--out", "run", "--max-steps", "150",
                     "--eval-interval", "50", "--lr", "3e-3", "--tensorboard", "curves", "--history-json",
                     "history.json", *SMALL_MODEL, cwd=home))  # fmt: skip
    return home / "run", out


def test_the_console_script_is_installed():
    assert MINIGPT.is_file(), f"no `minigpt` command beside {sys.executable}: is the package installed?"


def test_train_writes_a_model_folder_that_learned(trained, home):
    run, out = trained
    assert "model folder: run" in out
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoints",
        "config.json",
        "minigpt.json",
        "model.safetensors",
    ]
    info = json.loads((run / "minigpt.json").read_text())
    assert info["prompt_format"] == "plain" and info["tokenizer"]["type"] == "char"
    assert "".join(info["tokenizer"]["chars"]) == "".join(sorted(set((home / "rhymes.txt").read_text())))
    history = json.loads((home / "history.json").read_text())
    assert [row["step"] for row in history] == [0, 50, 100, 150]
    assert history[-1]["val_loss"] < history[0]["val_loss"] - 1.5  # from about ln(31) = 3.4 nats


def test_generate_continues_the_prompt_in_the_text_s_characters(trained, home):
    run, _ = trained
    text = ok(minigpt("generate", "--model", "run", "--prompt", "Twinkle, ", "--max-new-tokens", "40",
                      "--temperature", "0", cwd=home))  # fmt: skip
    assert text.startswith("Twinkle, ") and len(text) == len("Twinkle, ") + 40 + 1  # 40 characters and "\n"
    assert set(text) <= set((home / "rhymes.txt").read_text())
    refused = minigpt("generate", "--model", "run", "--prompt", "Twinkle ★", cwd=home)
    assert (
        refused.returncode == 2
        and "character '★' (position 8) is not in this tokenizer's vocabulary" in refused.stderr
    )


def test_chat_with_the_trained_model_goes_on_after_bad_input(trained, home):
    lines = "/temperature inf\nhow I wonder ★\nhow I wonder\n/top_p 0\n/quit\n"
    out = ok(minigpt("chat", "--model", "run", "--seed", "0", "--device", "cpu", cwd=home, stdin=lines))
    assert "this is a base model: each message is continued as plain text" in out
    assert "temperature must be a finite number, 0 (greedy) or more" in out
    assert "character '★'" in out
    assert out.count("model> ") == 1  # the one message it could read got its reply
    assert "top_p must be a number in (0, 1]" in out


def test_live_curves_read_back_from_tensorboard_s_event_file(trained, home):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    curves = EventAccumulator(str(home / "curves"))
    curves.Reload()
    scalars = {tag: curves.Scalars(tag) for tag in curves.Tags()["scalars"]}
    assert set(scalars) == {"loss/batch", "lr", "grad_norm", "tokens_per_second", "loss/train", "loss/val"}
    for tag in ("loss/batch", "lr", "grad_norm", "tokens_per_second"):
        assert [event.step for event in scalars[tag]] == list(range(1, 151))
    assert all(event.value > 0 for event in scalars["tokens_per_second"])
    history = json.loads((home / "history.json").read_text())
    assert [event.step for event in scalars["loss/val"]] == [row["step"] for row in history]
    assert [event.value for event in scalars["loss/val"]] == pytest.approx(
        [row["val_loss"] for row in history]
    )
    assert max(event.value for event in scalars["lr"]) == pytest.approx(3e-3)


def test_export_writes_the_checkpoint_as_the_same_model_folder(trained, home):
    run, _ = trained
    ok(minigpt("export", "run/checkpoints", "--out", "exported", cwd=home))
    assert json.loads((home / "exported" / "minigpt.json").read_text()) == json.loads(
        (run / "minigpt.json").read_text()
    )
    exported, saved = (load_file(folder / "model.safetensors") for folder in (home / "exported", run))
    assert exported.keys() == saved.keys() and all(torch.equal(exported[k], saved[k]) for k in saved)
    again = minigpt("export", "run/checkpoints", "--out", "exported", cwd=home)
    assert again.returncode == 1 and "already holds a model; replace it with --overwrite" in again.stderr


def test_bad_data_files_are_refused_with_what_is_wrong(home):
    (home / "empty.txt").write_text("")
    (home / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1") * 100)
    (home / "short.txt").write_text("Twinkle, twinkle.")
    for data, message in (
        ("missing.txt", "the text file missing.txt does not exist"),
        ("empty.txt", "is empty: there is nothing to train on"),
        ("latin1.txt", "latin1.txt is not UTF-8 text (byte 3 is b'\\xe9')"),
        ("short.txt", "is too short for a context of 32 tokens"),
    ):
        refused = minigpt("train", "--data", data, *SMALL_MODEL, cwd=home)
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr


def test_gpt2_tokens_then_instruction_tuning_from_that_folder(home):
    """--tokenizer gpt2 on the text file; then --init from its folder on instruction records, which
    records Alpaca's prompt format, so that the chat writes messages in the template."""
    ok(
        minigpt(
            "train",
            "--data",
            "rhymes.txt",
            "--tokenizer",
            "gpt2",
            "--out",
            "bpe",
            "--max-steps",
            "3",
            *SMALL_MODEL,
            "--block-size",
            "96",
            cwd=home,
        )
    )  # fmt: skip (the last --block-size counts)
    assert json.loads((home / "bpe" / "minigpt.json").read_text())["tokenizer"]["encoding"] == "gpt2"
    records = [{"instruction": f"Say the verse after: {a}", "input": "", "output": b}
               for a, b in zip(VERSES, VERSES[1:] + VERSES[:1])]  # fmt: skip
    (home / "verses.json").write_text(json.dumps(records))
    too_short = minigpt("train", "--init", "bpe", "--data", "verses.json", "--block-size", "32", cwd=home)
    assert too_short.returncode == 1 and "record 0's prompt takes" in too_short.stderr
    assert "the context holds 32: no room is left for its response" in too_short.stderr
    ok(minigpt("train", "--init", "bpe", "--data", "verses.json", "--out", "tuned", "--max-steps", "3",
               "--batch-size", "2", "--eval-windows", "2", "--device", "cpu", cwd=home))  # fmt: skip
    assert json.loads((home / "tuned" / "minigpt.json").read_text())["prompt_format"] == "alpaca"
    out = ok(
        minigpt("chat", "--model", "tuned", "--max-new-tokens", "3", "--seed", "0", cwd=home, stdin="Hi\n")
    )
    assert "instruction-tuned: each message goes alone into Alpaca's template" in out
    char_records = minigpt("train", "--data", "verses.json", "--tokenizer", "char", *SMALL_MODEL, cwd=home)
    assert (
        char_records.returncode == 1 and "need a tokenizer with an end-of-text token" in char_records.stderr
    )
