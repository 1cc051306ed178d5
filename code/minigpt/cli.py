"""The command line: one program, `minigpt`, with a subcommand for each thing a reader does.

    minigpt train --data my.txt --tokenizer char --out runs/mine    train a GPT on a text file
    minigpt generate --model runs/mine --prompt "To be"             continue a prompt
    minigpt chat --model runs/mine                                  talk with it in the terminal
    minigpt export runs/mine/checkpoints --out folder               a checkpoint as a model folder

`python -m minigpt ...` is the same program; `minigpt COMMAND --help` lists every option with its
default. What `train --out DIR` leaves in DIR is a model folder (config.json, model.safetensors and
minigpt.json, see minigpt.pretrained), which `generate` and `chat` load, beside the resumable
checkpoints in DIR/checkpoints. Under `torchrun` the training runs in several processes:

    torchrun --nproc_per_node=2 -m minigpt train --data my.txt --max-steps 200 --device cpu
"""

from __future__ import annotations

import argparse
import codecs
import json
import os
import signal
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import tiktoken
import torch
import torch.distributed as dist

from . import __version__
from .chat import HELP as CHAT_HELP
from .chat import chat, chat_format, check_setting
from .checkpoint import clear_run, export_checkpoint, latest_checkpoint, resume
from .curves import TensorBoardCurves
from .data import load_text, read_text_file, train_val_split
from .generate import _check_count, stream
from .instruct import InstructionDataset, check_prompts_fit, load_records, split_records
from .model import GPT, GPTConfig
from .pretrained import CONFIG_FILE, FOLDER_INFO_FILE, WEIGHTS_FILE, LoadedModel, load_model, save_pretrained
from .sampling import SamplingRule
from .tokenizer import (
    TOKENIZER_KINDS,
    CodePoints,
    SeenVocabulary,
    describe_tokenizer,
    make_tokenizer,
    tokenizer_from_description,
    tokenizer_kind,
)
from .train import TrainConfig, Trainer
from .utils import choose_device

OFFLINE_HINT = (
    "offline, give a model folder instead, such as the course's stand-in: data/gpt2-shakespeare-standin"
)


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.run(args, args.command_parser) or 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minigpt",
        description="Train a GPT on your own text, generate with it and chat with it (the course's package).",
    )
    parser.add_argument("--version", action="version", version=f"minigpt {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    for name, add, run, description in (
        ("train", add_train_options, run_train, "Train a GPT on a text file (or fine-tune one) and save it."),
        ("generate", add_generate_options, run_generate, "Continue a prompt, streaming the new text."),
        ("chat", add_chat_options, run_chat, "Chat with a model in the terminal."),
        ("export", add_export_options, run_export, "Write a training checkpoint as a model folder."),
    ):
        command = commands.add_parser(name, help=description, description=description)
        add(command)
        command.set_defaults(run=run, command_parser=command)  # its errors show its own usage
    return parser


def _device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")


def _load(name_or_dir: str, device: torch.device, dropout: float = 0.0) -> LoadedModel:
    """A model folder or GPT-2 size, or exit with a message that says why it could not be loaded."""
    try:
        return load_model(name_or_dir, device=device, dropout=dropout)
    except (OSError, ValueError) as error:
        hint = "" if Path(name_or_dir).exists() else f" ({OFFLINE_HINT})"
        sys.exit(f"error: could not load the model {name_or_dir!r}{hint}: {error}")


def _encode(tokenizer, text: str) -> list[int]:
    """Text as token ids; GPT-2's tokenizer also reads a written <|endoftext|> as that token."""
    if isinstance(tokenizer, tiktoken.Encoding):
        return tokenizer.encode(text, allowed_special="all")
    return tokenizer.encode(text)


# ----------------------------------------------------------------------------------------------
# minigpt train

BUILT_IN_TEXT = "shakespeare"
OLD_DATA_NAMES = {"shakespeare-char": "char", "shakespeare-bpe": "gpt2"}  # before `--tokenizer`

# Help for the options made from GPTConfig and TrainConfig fields; each states its default.
MODEL_OPTION_HELP = {
    "block_size": "context length in tokens; with --init, the length of the training windows",
    "n_layer": "transformer blocks",
    "n_head": "attention heads per block",
    "n_embd": "width of the residual stream",
}
NEW_MODEL_DEFAULTS = {"block_size": 64, "n_layer": 4, "n_head": 4, "n_embd": 128}  # a small CPU model
TRAIN_OPTION_HELP = {
    "max_steps": "optimizer steps to train for",
    "batch_size": "windows per micro-batch (per process under torchrun)",
    "grad_accum_steps": "micro-batches whose gradients are summed before each optimizer step",
    "lr": "peak learning rate, reached at the end of warmup",
    "min_lr": "the floor the cosine decays to",
    "warmup_steps": "steps of linear warmup",
    "weight_decay": "AdamW's weight decay, applied to matrices and embeddings only",
    "beta1": "AdamW's beta1",
    "beta2": "AdamW's beta2",
    "grad_clip": "clip the gradient's global norm to this",
    "label_smoothing": "label smoothing of the training loss (evaluations use the plain loss)",
    "precision": "fp32, bf16, fp16, or auto: bf16 on GPUs with bf16 units, fp16 on older ones, else fp32",
    "eval_interval": "evaluate every this many steps, and at the first and the last",
    "eval_windows": "windows (or instruction records) in each split's fixed evaluation set",
    "checkpoint_interval": "with --out, save a checkpoint every this many steps",
    "seed": "seed of the initial weights and of the batches",
}
NONE_DEFAULTS = {"min_lr": "lr / 10", "checkpoint_interval": "--eval-interval"}  # what None stands for


def add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        default=BUILT_IN_TEXT,
        help="what to train on: a UTF-8 text file; a .json file of instruction records in Alpaca's format "
        "(instruction, input, output), to fine-tune a model to follow instructions; or 'shakespeare', "
        f"Tiny Shakespeare, shipped with the course (default: {BUILT_IN_TEXT})",
    )
    p.add_argument(
        "--tokenizer",
        choices=TOKENIZER_KINDS,
        default=None,
        help="char: one token per character of the text; gpt2: GPT-2's byte-level BPE; cl100k: cl100k_base's "
        "byte-level BPE (GPT-4's) (default: char for a new model; with --init, the model's own)",
    )
    p.add_argument(
        "--seen-vocabulary",
        action="store_true",
        help="cut the vocabulary to the tokens that occur in the training split, plus one unknown id for "
        "any other, as the appendix on Chinese text does: a smaller embedding and output layer (default: "
        "off: char keeps every character of the whole text, gpt2 and cl100k their whole vocabulary)",
    )
    p.add_argument(
        "--init",
        default=None,
        help="fine-tune this model folder or GPT-2 size (gpt2, gpt2-medium, ...) instead of training a new "
        "model (default: a new model with random weights)",
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="the share of the text (its end), or of the records, held out for validation (default: 0.1)",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="the run's folder: the model folder is written there at the end (and on Ctrl-C), checkpoints "
        "in its checkpoints/ every --checkpoint-interval steps; it must be new or empty unless --resume "
        "or --overwrite (default: none, nothing saved)",
    )
    previous_run = p.add_mutually_exclusive_group()
    previous_run.add_argument(
        "--resume", action="store_true", help="continue the run saved in --out, if any (default: off)"
    )
    previous_run.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the model and checkpoints of a previous run in --out and start afresh (default: off)",
    )
    p.add_argument(
        "--tensorboard",
        type=Path,
        default=None,
        help="write live training curves (losses, learning rate, gradient norm, tokens per second) to this "
        "folder for TensorBoard; needs `pip install tensorboard` (default: none)",
    )
    p.add_argument(
        "--history-json", type=Path, help="write the evaluation history here as JSON (default: none)"
    )
    p.add_argument(
        "--device", default=None, help="cuda, mps or cpu (default: the best available; torchrun: cuda or cpu)"
    )
    for name, help_text in MODEL_OPTION_HELP.items():
        default = NEW_MODEL_DEFAULTS[name]
        shown = (
            f"{default} for a new model; with --init, the model's"
            if name != "block_size"
            else (f"{default} for a new model; with --init, the model's context")
        )
        p.add_argument(_option(name), type=int, default=None, help=f"{help_text} (default: {shown})")
    p.add_argument(
        "--dropout", type=float, default=0.0, help="dropout probability while training (default: 0.0)"
    )
    train_defaults = TrainConfig()
    for f in fields(TrainConfig):
        if f.name == "block_size":  # the model's --block-size
            continue
        default = getattr(train_defaults, f.name)
        kind = float if f.name in ("min_lr", "grad_clip") else type(default) if default is not None else int
        shown = NONE_DEFAULTS[f.name] if default is None else default
        help_text = f"{TRAIN_OPTION_HELP[f.name]} (default: {shown})"
        p.add_argument(_option(f.name), type=kind, default=default, help=help_text)


def _option(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def run_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.data in OLD_DATA_NAMES:
        parser.error(
            f"--data {args.data} is now --data {BUILT_IN_TEXT} --tokenizer {OLD_DATA_NAMES[args.data]}"
        )
    if args.init is not None:
        given = [_option(name) for name in ("n_layer", "n_head", "n_embd") if getattr(args, name) is not None]
        if given:
            parser.error(f"{', '.join(given)} cannot change the shape of the --init model; leave them out")
    if not 0 < args.val_fraction < 1:
        parser.error(f"--val-fraction must be between 0 and 1, got {args.val_fraction}")
    distributed = "RANK" in os.environ  # started by torchrun
    device = _process_device(args.device)
    rank = dist.get_rank() if distributed else 0
    try:
        _check_out(args, rank)
        trainer = _build_trainer(args, device, rank)
        if rank == 0:
            print(
                f"{trainer.model.num_params():,} parameters on {device}, {trainer.world_size} process(es), "
                f"{trainer.tokens_per_step:,} tokens per step, precision {trainer.precision}, "
                f"from step {trainer.step}",
                flush=True,
            )
        received = _stop_on_signals(trainer)
        try:
            trainer.train(progress=rank == 0)
        finally:
            if trainer.curves is not None:
                trainer.curves.close()
        if args.out:
            saved = trainer.save_checkpoint()
            if rank == 0:
                folder = save_pretrained(trainer.model, args.out, **_folder_arguments(trainer.folder_info))
                print(
                    f"model folder: {folder} (try: minigpt generate --model {folder} --prompt ...)",
                    flush=True,
                )
        if received["signal"]:
            if rank == 0:
                where = (
                    f"saved in {saved}; continue with --resume" if args.out else "nothing saved (no --out)"
                )
                print(f"stopped by {received['signal']} at step {trainer.step}: {where}", flush=True)
            return 128 + signal.Signals[received["signal"]].value
        if rank == 0:
            last = trainer.history[-1]
            print(
                f"step {last['step']}: train loss {last['train_loss']:.4f}, val loss {last['val_loss']:.4f}"
            )
            if args.history_json:
                args.history_json.write_text(json.dumps(trainer.history, indent=1))
        return 0
    finally:
        if distributed:
            dist.destroy_process_group()


def _folder_arguments(folder_info: dict) -> dict:
    """save_pretrained's tokenizer and prompt_format from a run's folder_info."""
    return {
        "tokenizer": tokenizer_from_description(folder_info["tokenizer"]),
        "prompt_format": folder_info["prompt_format"],
    }


def _process_device(requested: str | None) -> torch.device:
    """This process's device; under torchrun, one GPU per process (or the CPU), in a process group."""
    if "RANK" not in os.environ:  # not started by torchrun
        return choose_device(requested)
    if requested not in (None, "cuda", "cpu"):
        raise SystemExit(f"under torchrun --device must be cuda or cpu, got {requested!r}")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    use_cuda = requested == "cuda" or (requested is None and gpus > 0)
    local_rank = int(os.environ["LOCAL_RANK"])
    if use_cuda and local_rank >= gpus:
        raise SystemExit(
            f"torchrun process {local_rank} needs a GPU of its own and this machine has {gpus}: start at "
            f"most {gpus} processes per node (--nproc_per_node), or train on the CPU with --device cpu"
        )
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if not use_cuda:
        return torch.device("cpu")
    torch.cuda.set_device(local_rank)
    return torch.device(f"cuda:{local_rank}")


MODEL_FILES = (CONFIG_FILE, WEIGHTS_FILE, FOLDER_INFO_FILE)  # what a run writes into --out itself


def _check_out(args: argparse.Namespace, rank: int) -> None:
    """Keep two runs apart: a non-empty --out needs --resume (continue it) or --overwrite (start afresh).

    Without that, a new run would keep the old run's checkpoints beside its own, and `latest` would
    name whichever run saved last.
    """
    if args.out is None:
        for flag in ("resume", "overwrite"):
            if getattr(args, flag):
                raise SystemExit(f"--{flag} needs --out, the directory of the run to {flag}")
        return
    if args.out.exists() and not args.out.is_dir():
        raise SystemExit(f"--out {args.out} is a file: give a directory for the run")
    contents = sorted(p.name for p in args.out.iterdir()) if args.out.is_dir() else []
    if not contents or args.resume:
        return
    if args.overwrite:
        if rank == 0:  # one process deletes; the others only ever write through it
            deleted = clear_run(args.out / "checkpoints") if (args.out / "checkpoints").is_dir() else []
            for name in MODEL_FILES:
                if (args.out / name).is_file():
                    (args.out / name).unlink()
                    deleted.append(name)
            print(f"--overwrite: deleted {len(deleted)} file(s) of a previous run in {args.out}", flush=True)
        return
    shown = ", ".join(contents[:4]) + (f" and {len(contents) - 4} more" if len(contents) > 4 else "")
    raise SystemExit(
        f"--out {args.out} is not empty (it holds {shown}): continue the run saved there with --resume, "
        "delete its model and checkpoints and start afresh with --overwrite, or give a new directory"
    )


def _build_trainer(args: argparse.Namespace, device: torch.device, rank: int) -> Trainer:
    init = _load(args.init, device, args.dropout) if args.init is not None else None
    block_size = args.block_size or (
        init.model.config.block_size if init else NEW_MODEL_DEFAULTS["block_size"]
    )
    if init and block_size > init.model.config.block_size:
        raise SystemExit(
            f"--block-size {block_size} is longer than the context of the --init model "
            f"({init.model.config.block_size} tokens)"
        )
    tokenizer, train_data, val_data, prompt_format = _training_data(args, init, block_size, rank)
    torch.manual_seed(args.seed)  # the same initial weights (and dropout masks) in every process
    if init is not None:
        model = init.model
    else:
        model = GPT(
            GPTConfig(
                block_size=block_size,
                vocab_size=tokenizer.n_vocab,
                **{
                    name: getattr(args, name) or NEW_MODEL_DEFAULTS[name]
                    for name in ("n_layer", "n_head", "n_embd")
                },
                dropout=args.dropout,
            )
        )
    train_config = TrainConfig(
        block_size=block_size,
        **{f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.name != "block_size"},
    )
    if args.out and train_config.checkpoint_interval is None:  # a run with --out survives a crash
        train_config.checkpoint_interval = train_config.eval_interval
    curves = TensorBoardCurves(args.tensorboard) if args.tensorboard and rank == 0 else None
    try:
        trainer = Trainer(
            model,
            train_data,
            val_data,
            train_config,
            device,
            checkpoint_dir=args.out / "checkpoints" if args.out else None,
            curves=curves,
        )
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    trainer.folder_info = {"tokenizer": describe_tokenizer(tokenizer), "prompt_format": prompt_format}
    if args.resume:
        if (args.out / "checkpoints" / "latest").is_file():
            _check_same_tokenizer(args.out / "checkpoints", trainer.folder_info)
            try:
                resume(trainer)
            except ValueError as error:  # another model shape than the saved run's
                raise SystemExit(f"--resume: {error}; resume with the options of the saved run") from None
        elif rank == 0:
            print(f"--resume: no checkpoint in {args.out} yet, so the run starts from step 0")
    return trainer


def _training_data(args: argparse.Namespace, init: LoadedModel | None, block_size: int, rank: int):
    """(tokenizer, training data, validation data, prompt format) from --data, --tokenizer and --init."""
    path = Path(args.data)
    records = path.suffix == ".json" and args.data != BUILT_IN_TEXT
    try:
        if args.data == BUILT_IN_TEXT:
            text = load_text(verbose=rank == 0)
        elif records:
            records = load_records(path)
        else:
            text = read_text_file(path)
    except (OSError, ValueError) as error:
        raise SystemExit(f"error: --data {args.data}: {error}") from None

    if init is not None:
        tokenizer = init.tokenizer
        kind = tokenizer_kind(tokenizer)
        if args.tokenizer not in (None, kind):
            raise SystemExit(f"--tokenizer {args.tokenizer}: the --init model reads the {kind} tokenizer")
        if args.seen_vocabulary:
            raise SystemExit("--seen-vocabulary: the --init model's vocabulary is fixed; leave it out")
    else:
        kind = args.tokenizer or "char"
        if records and (kind == "char" or args.seen_vocabulary):
            raise SystemExit(
                "instruction records need a tokenizer with an end-of-text token, to learn where a reply "
                "ends: use --tokenizer gpt2 or cl100k without --seen-vocabulary (or --init gpt2)"
            )
        if args.seen_vocabulary:  # the uncut base for now: what it keeps depends on the training split
            tokenizer = CodePoints() if kind == "char" else make_tokenizer(kind)
        else:
            tokenizer = make_tokenizer(kind, "" if records else text)

    if records:
        held_out = max(1, round(len(records) * args.val_fraction))
        if len(records) < 2:
            raise SystemExit(f"error: --data {args.data} holds {len(records)} record(s); it needs at least 2")
        try:
            check_prompts_fit(records, tokenizer, block_size, source=f"--data {args.data}")
        except ValueError as error:
            raise SystemExit(f"error: {error}") from None
        train, val = split_records(records, held_out, seed=args.seed)
        datasets = [InstructionDataset(part, tokenizer, block_size) for part in (train, val)]
        return tokenizer, *datasets, "alpaca"

    try:
        ids = tokenizer.encode_ordinary(text)
    except ValueError as error:  # a character the --init model's vocabulary lacks
        raise SystemExit(f"error: --data {args.data}: {error}") from None
    if args.seen_vocabulary and init is None:  # keep what the training split holds; the rest is unknown
        n_train = len(train_val_split(np.arange(len(ids)), args.val_fraction)[0])
        tokenizer = SeenVocabulary(tokenizer, ids[:n_train])
        ids = tokenizer.from_base_ids(ids)
    tokens = np.array(ids, dtype=np.uint16 if tokenizer.n_vocab <= 2**16 else np.int64)
    train, val = train_val_split(tokens, args.val_fraction)
    if len(val) <= block_size:
        raise SystemExit(
            f"error: --data {args.data} is too short for a context of {block_size} tokens: its "
            f"{len(tokens):,} tokens leave {len(val):,} for validation (the last {args.val_fraction:.0%}), "
            "and a window needs "
            f"{block_size + 1}; use a longer text, a smaller --block-size or a larger --val-fraction"
        )
    prompt_format = init.prompt_format if init is not None else "plain"
    return tokenizer, train, val, prompt_format


def _check_same_tokenizer(checkpoints: Path, folder_info: dict) -> None:
    """Refuse to resume a run on data that its tokenizer does not describe alike (another text file)."""
    saved = json.loads((latest_checkpoint(checkpoints) / "config.json").read_text()).get("folder_info")
    if saved is not None and saved != folder_info:
        raise SystemExit(
            "--resume: the run saved in --out was trained with another tokenizer or prompt format than "
            "--data and --tokenizer give now: resume with the same data, or start afresh with --overwrite"
        )


def _stop_on_signals(trainer: Trainer) -> dict:
    """Make Ctrl-C (SIGINT) and SIGTERM end training after the current step, not in the middle of it.

    Returns a dict whose "signal" entry names the signal once one has come. A second Ctrl-C stops
    at once, as usual.
    """
    received = {"signal": None}

    def stop(signum, frame):
        received["signal"] = signal.Signals(signum).name
        trainer.stop_requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    return received


# ----------------------------------------------------------------------------------------------
# minigpt generate


def add_generate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default="gpt2",
        help="a model folder (what `minigpt train --out` writes) or gpt2, gpt2-medium, ... (default: gpt2)",
    )
    p.add_argument("--prompt", required=True, help="the text to continue, as it is (no template); required")
    p.add_argument(
        "--max-new-tokens", type=int, default=100, help="at most this many new tokens (default: 100)"
    )
    p.add_argument(
        "--temperature", type=float, default=1.0, help="0 is greedy; below 1 sharper (default: 1.0)"
    )
    p.add_argument(
        "--top-k", type=int, default=None, help="sample from the k most likely tokens only (default: no cut)"
    )
    p.add_argument(
        "--top-p", type=float, default=None, help="sample from the smallest set reaching p (default: no cut)"
    )
    p.add_argument(
        "--seed", type=int, default=None, help="seed for the same text on every run (default: none, random)"
    )
    _device_option(p)
    p.add_argument(
        "--no-stop", action="store_true", help="keep going after <|endoftext|> (default: stop there)"
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="rerun the whole context at every step (default: use the KV cache)",
    )


def run_generate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        SamplingRule(args.temperature, args.top_k, args.top_p)
        _check_count(args.max_new_tokens)
    except ValueError as e:
        name, rest = str(e).split(" ", 1)  # the message names the parameter first: name it as an option
        parser.error(f"--{name.replace('_', '-')} {rest}")
    if not args.prompt:
        parser.error("--prompt is empty: give the model some text to continue")
    device = choose_device(args.device)
    model, tokenizer, _ = _load(args.model, device)
    try:
        prompt_ids = _encode(tokenizer, args.prompt)
    except ValueError as error:  # a character outside a character model's vocabulary
        parser.error(f"--prompt: {error}")
    print(f"[{args.model}: {model.num_params() / 1e6:.1f}M parameters on {device}]", file=sys.stderr)
    stop = None if args.no_stop or tokenizer.eot_token is None else tokenizer.eot_token
    tokens = stream(
        model,
        prompt_ids,
        args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        stop_tokens=stop,
        generator=None if args.seed is None else torch.Generator().manual_seed(args.seed),
        use_cache=not args.no_cache,
    )
    # A token may end in the middle of a character's UTF-8 bytes: print text once its bytes are complete.
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
    print(args.prompt, end="", flush=True)
    for token in tokens:
        print(utf8.decode(tokenizer.decode_single_token_bytes(token)), end="", flush=True)
    print(utf8.decode(b"", final=True))
    return 0


# ----------------------------------------------------------------------------------------------
# minigpt chat


def add_chat_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        required=True,
        help="a model folder (what `minigpt train --out` writes) or a GPT-2 size; required",
    )
    p.add_argument(
        "--temperature", type=float, default=0.7, help="0: always the likeliest token (greedy) (default: 0.7)"
    )
    p.add_argument(
        "--top-p",
        type=float,
        default=0.9,
        help="sample from the smallest set of this much mass (default: 0.9)",
    )
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="the longest reply, in tokens (default: 100, or half the model's context if that is shorter)",
    )
    p.add_argument(
        "--seed", type=int, default=None, help="make the replies reproducible (default: none, random)"
    )
    _device_option(p)


def run_chat(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    for problem in (check_setting("temperature", args.temperature), check_setting("top_p", args.top_p)):
        if problem:
            parser.error(problem)
    device = choose_device(args.device)
    model, tokenizer, prompt_format = _load(args.model, device)
    context = model.config.block_size
    max_new_tokens = args.max_new_tokens or min(100, context // 2)
    if not 0 < max_new_tokens < context:
        sys.exit(
            f"error: --max-new-tokens {max_new_tokens} must be at least 1 and leave room for a message in "
            f"the model's context of {context} tokens"
        )
    format, about = chat_format(prompt_format, tokenizer)
    print(f"chatting with {args.model} on {device} (context {context} tokens)", flush=True)
    print(about, flush=True)
    print(CHAT_HELP, flush=True)
    settings = {"temperature": args.temperature, "top_p": args.top_p}
    generator = torch.Generator().manual_seed(args.seed) if args.seed is not None else None
    try:
        chat(model, tokenizer, format, settings, max_new_tokens, generator)
    except KeyboardInterrupt:  # Ctrl-C: leave without a traceback
        print()
    return 0


# ----------------------------------------------------------------------------------------------
# minigpt export


def add_export_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "checkpoint",
        help="a training checkpoint (a step_NNNNNN folder) or a folder of them (a run's checkpoints/, whose "
        "latest is taken); required",
    )
    p.add_argument("--out", type=Path, required=True, help="the model folder to write; required")
    p.add_argument(
        "--prompt-format",
        choices=("plain", "alpaca"),
        default=None,
        help="plain (a base model) or alpaca (instruction-tuned) (default: as the run recorded, else plain)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace a model folder already in --out (default: off)"
    )


def run_export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if (args.out / CONFIG_FILE).exists() and not args.overwrite:
        sys.exit(
            f"error: {args.out} already holds a model; replace it with --overwrite, or give another --out"
        )
    try:
        folder = export_checkpoint(args.checkpoint, args.out, prompt_format=args.prompt_format)
    except (OSError, ValueError) as error:
        sys.exit(f"error: could not export {args.checkpoint}: {error}")
    print(f"model folder: {folder}")
    return 0
