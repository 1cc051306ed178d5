"""Checkpoints that survive a crash (Chapter 5; Appendix B says how).

A checkpoint is a folder `step_000500/` inside the run's checkpoint directory holding

    model.safetensors   the weights (safetensors: no pickle, loads safely from anywhere)
    config.json         the model's GPTConfig, the run's TrainConfig and, when the trainer knows
                        them, the tokenizer and prompt format of the model folder it exports to
    state.pt            optimizer, loss scaler, data-order and RNG states, history (plain tensors
                        and numbers, read back with torch.load(weights_only=True))

`save_checkpoint` and `resume` take the run's `Trainer` (minigpt.train, which imports this module):
they only read and set its attributes, so this module imports nothing from that one.

Writing is atomic: the folder is written under a temporary name, flushed to disk, renamed into
place, and only then does the file `latest` (itself replaced atomically) point at it. A crash at any
moment leaves `latest` naming a complete checkpoint, so nothing already saved is ever lost.

A checkpoint is for resuming training. To generate or chat with what it holds, `export_checkpoint`
writes it as a model folder (minigpt.pretrained), the one format that models are loaded from.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .model import GPT, GPTConfig

KEEP_LAST = 2  # older checkpoints are removed once a newer one is safely in place


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_weights(model: nn.Module, path: Path) -> None:
    """The model's weights as safetensors; tied tensors (the LM head) are stored once."""
    state, seen = {}, set()
    for name, tensor in model.state_dict().items():
        if tensor.data_ptr() in seen:  # lm_head.weight is transformer.wte.weight
            continue
        seen.add(tensor.data_ptr())
        state[name] = tensor.detach().cpu().contiguous()
    save_file(state, str(path))


def load_weights(model: nn.Module, path: Path) -> None:
    """Load safetensors weights into `model`, naming any tensor that is missing or the wrong shape."""
    state = load_file(str(path))
    expected = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight" or k in state}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k}: checkpoint {tuple(state[k].shape)}, model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong:
        problems = [f"missing {missing}"] * bool(missing) + [f"unexpected {unexpected}"] * bool(unexpected)
        raise ValueError(
            f"the checkpoint {path} does not fit this model (was it saved from another configuration?): "
            + "; ".join(problems + wrong)
        )
    model.load_state_dict(state, strict=False)


def save_checkpoint(directory: Path, trainer) -> Path:
    """Atomically write the trainer's run to directory/step_NNNNNN and point `latest` at it."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"step_{trainer.step:06d}"
    if not final.exists():  # else this step is saved already (at an interval and again at the end)
        _write_folder(final, trainer)
    pointer = directory / ".latest.tmp"
    pointer.write_text(final.name)
    _fsync(pointer)
    os.replace(pointer, directory / "latest")
    for old in sorted(directory.glob("step_*"))[:-KEEP_LAST]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _write_folder(final: Path, trainer) -> None:
    """Write the checkpoint under a temporary name, then rename it to `final` in one step."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        state = trainer_state(trainer)
        save_weights(trainer.model, tmp / "model.safetensors")
        config = {"model": trainer.model.config.to_dict(), "train": state["train_config"]}
        if trainer.folder_info is not None:
            config["folder_info"] = trainer.folder_info
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        torch.save(state, tmp / "state.pt")
        for f in tmp.iterdir():
            _fsync(f)
        os.replace(tmp, final)  # atomic: the folder appears complete or not at all
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def run_files(directory: Path) -> list[Path]:
    """What runs wrote in a checkpoint directory: step folders (finished or half-written), `latest`."""
    patterns = ("step_*", ".step_*", "latest", ".latest.tmp")
    return sorted(path for pattern in patterns for path in directory.glob(pattern))


def clear_run(directory: Path) -> list[str]:
    """Delete what runs wrote in `directory`, leaving any other file; returns the names deleted."""
    deleted = run_files(directory)
    for path in deleted:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return [path.name for path in deleted]


def latest_checkpoint(directory: str | Path) -> Path:
    """The checkpoint that `latest` names in a run's checkpoint directory."""
    directory = Path(directory)
    pointer = directory / "latest"
    if not pointer.is_file():
        raise FileNotFoundError(f"no checkpoint in {directory}: it has no 'latest' file")
    return directory / pointer.read_text().strip()


def checkpoint_model(checkpoint: str | Path, device: torch.device | str = "cpu") -> GPT:
    """The GPT of a training checkpoint, built from its config.json and model.safetensors."""
    checkpoint = Path(checkpoint)
    config = GPTConfig(**json.loads((checkpoint / "config.json").read_text())["model"])
    model = GPT(config)
    load_weights(model, checkpoint / "model.safetensors")
    return model.to(device)


def export_checkpoint(
    source: str | Path, out: str | Path, *, tokenizer=None, prompt_format: str | None = None
) -> Path:
    """Write a training checkpoint as a model folder in `out`, for `minigpt generate` and `chat`.

    `source` is a checkpoint folder (step_000500) or a checkpoint directory (its `latest` is taken).
    The tokenizer and prompt format are those the run recorded (the command line records them); a
    checkpoint of a Trainer that did not know them needs `tokenizer` (unless its vocabulary is GPT-2's)
    and takes prompt format "plain" unless told otherwise.
    """
    from .pretrained import save_pretrained  # the model folder's writer (it does not import this module)
    from .tokenizer import tokenizer_from_description

    source = Path(source)
    if (source / "latest").is_file():
        source = latest_checkpoint(source)
    if not (source / "state.pt").is_file():
        raise FileNotFoundError(
            f"{source} is not a training checkpoint (a step_NNNNNN folder with state.pt) "
            "nor a directory of them"
        )
    recorded = json.loads((source / "config.json").read_text()).get("folder_info", {})
    if tokenizer is None and "tokenizer" in recorded:
        tokenizer = tokenizer_from_description(recorded["tokenizer"])
    prompt_format = prompt_format or recorded.get("prompt_format", "plain")
    return save_pretrained(checkpoint_model(source), out, tokenizer=tokenizer, prompt_format=prompt_format)


def resume(trainer, checkpoint: str | Path | None = None) -> None:
    """Restore a freshly built Trainer to the state saved in `checkpoint` (default: the latest).

    The trainer's model must have the checkpoint's configuration; after this, `trainer.train()`
    continues the saved run as if it had never stopped.
    """
    checkpoint = Path(checkpoint) if checkpoint else latest_checkpoint(trainer.checkpoint_dir)
    saved = json.loads((checkpoint / "config.json").read_text())["model"]
    if saved != trainer.model.config.to_dict():
        diff = {k: (saved.get(k), v) for k, v in trainer.model.config.to_dict().items() if saved.get(k) != v}
        raise ValueError(
            f"the checkpoint {checkpoint.name} was saved from a different model configuration; "
            f"(checkpoint, this model) differ in {diff}"
        )
    load_weights(trainer.model, checkpoint / "model.safetensors")
    restore_trainer_state(trainer, torch.load(checkpoint / "state.pt", weights_only=True, map_location="cpu"))


def trainer_state(trainer) -> dict:
    """Everything besides the weights that a resumed run needs to continue exactly."""
    return {
        "step": trainer.step,
        "train_seconds": trainer.train_seconds,
        "history": trainer.history,
        "step_log": trainer.step_log,
        "optimizer": trainer.optimizer.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "generator": trainer.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "train_config": asdict(trainer.config),
    }


def restore_trainer_state(trainer, state: dict) -> None:
    """Put what `trainer_state` returned back into a freshly built Trainer."""
    trainer.step = state["step"]
    trainer.train_seconds = state["train_seconds"]
    trainer.history = state["history"]
    trainer.step_log = [tuple(row) for row in state["step_log"]]
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scaler.load_state_dict(state["scaler"])
    trainer.generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
