"""Rebuild the course's offline stand-in for GPT-2, data/gpt2-shakespeare-standin/ (not a test).

    python scripts/build_standin.py                     # train, then export and evaluate
    python scripts/build_standin.py --device cuda       # the same training command on a GPU
    python scripts/build_standin.py --from-run RUN_DIR  # export and evaluate a run already trained

Training is the `minigpt train` command of Chapter 5 with the arguments in TRAIN_ARGS (about 50 minutes on a two-core
CPU, under two minutes on a GPU); its run folder is RUN_DIR/run (default RUN_DIR: ~/.cache/minigpt/standin-run).
The latest checkpoint is then saved in GPT-2's format with `save_pretrained`, loaded back with `from_pretrained`
to check that nothing changed, and evaluated on the whole validation split of Tiny Shakespeare, per
token and per character as in Chapters 3 and 4. The script prints the files' sizes and sha256, which
belong in data/README.md and in `minigpt.pretrained.STANDIN_FILES`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import torch
from minigpt import gpt2_tokenizer, load_text, train_val_split
from minigpt.checkpoint import checkpoint_model, latest_checkpoint
from minigpt.data import cache_dir, sha256_of
from minigpt.pretrained import STANDIN_DIR, from_pretrained, save_pretrained
from minigpt.train import evaluate_loss

TRAIN_ARGS = [
    "--data", "shakespeare", "--tokenizer", "gpt2", "--block-size", "256", "--n-layer", "4", "--n-head", "4", "--n-embd", "96",
    "--dropout", "0.1", "--batch-size", "16", "--max-steps", "1200", "--lr", "3e-3", "--min-lr", "3e-4",
    "--warmup-steps", "50", "--eval-interval", "100", "--eval-windows", "100", "--checkpoint-interval", "100",
]  # fmt: skip
REPOSITORY = Path(__file__).resolve().parents[1]


def train(run_dir: Path, device: str | None) -> None:
    command = [
        sys.executable,
        "-m",
        "minigpt",
        "train",
        *TRAIN_ARGS,
        "--out",
        str(run_dir / "run"),
        "--overwrite",  # a build trains afresh: never mix in the checkpoints of an earlier one
    ]
    command += ["--history-json", str(run_dir / "history.json")]
    if device:
        command += [
            "--device",
            device,
            "--precision",
            "fp32",
        ]  # fp32 everywhere: the CPU recipe
    print(" ".join(command[1:]), flush=True)
    subprocess.run(command, check=True)


def export(run_dir: Path, out: Path) -> torch.nn.Module:
    """Save the run's latest checkpoint in GPT-2's format and check that it loads back unchanged.

    The stand-in ships as GPT-2's own folders are on the Hub, without minigpt.json: a folder without one
    is read with GPT-2's tokenizer as a base model, which is what the stand-in is.
    """
    model = checkpoint_model(latest_checkpoint(run_dir / "run" / "checkpoints")).eval()
    save_pretrained(model, out)
    (out / "minigpt.json").unlink()
    loaded = from_pretrained(out)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    return loaded


def validation_loss(model: torch.nn.Module) -> tuple[float, float]:
    """The loss per token and per character on the whole validation split (the last 10% of tokens)."""
    enc = gpt2_tokenizer()
    tokens = torch.tensor(enc.encode_ordinary(load_text(verbose=False)))
    _, val = train_val_split(tokens)
    per_token = evaluate_loss(model, val, model.config.block_size)
    chars_per_token = len(enc.decode(val.tolist())) / len(val)
    return per_token, per_token / chars_per_token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--from-run",
        type=Path,
        help="skip training: export this run directory's checkpoint",
    )
    parser.add_argument("--run-dir", type=Path, default=cache_dir() / "standin-run")
    parser.add_argument(
        "--device", help="train on this device (cuda, mps, cpu) in fp32"
    )
    parser.add_argument("--out", type=Path, default=REPOSITORY / "data" / STANDIN_DIR)
    args = parser.parse_args()
    run_dir = args.from_run or args.run_dir
    if args.from_run is None:
        train(run_dir, args.device)
    model = export(run_dir, args.out)
    per_token, per_char = validation_loss(model)
    print(
        f"{model.num_params():,} parameters; validation loss {per_token:.4f} per token, {per_char:.4f} per character"
    )
    for f in sorted(args.out.iterdir()):
        print(f"{f.name}: {f.stat().st_size:,} bytes, sha256 {sha256_of(f)}")


if __name__ == "__main__":
    main()
