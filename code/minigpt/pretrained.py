"""GPT-2's published weights in our `GPT`, and our models saved in GPT-2's format (Chapter 6).

A Hugging Face GPT-2 checkpoint is a folder with two files:

    config.json         the shape (n_layer, n_head, n_embd, n_positions, vocab_size) and a few options
    model.safetensors   one named tensor per parameter: wte.weight, h.0.attn.c_attn.weight, ...

The course's *model folder* is that, plus one file of ours that transformers ignores:

    minigpt.json        the tokenizer (`minigpt.tokenizer.describe_tokenizer`) and the prompt format:
                        "plain" (a base model: text is continued) or "alpaca" (instruction-tuned)

`save_pretrained` writes all three; `load_model` reads them back as model, tokenizer and prompt format,
and is what `minigpt generate` and `minigpt chat` use. A folder without minigpt.json (GPT-2's own, on
the Hub) is a base model with GPT-2's tokenizer.

Our parameter names are GPT-2's with a `transformer.` prefix, so the mapping is nearly the identity.
The one real difference: GPT-2 was written in TensorFlow, and its four big projections (`c_attn`,
`attn.c_proj`, `c_fc`, `mlp.c_proj`) are stored as `Conv1D` layers whose weight is (in, out), where
`nn.Linear` keeps (out, in). Those four are transposed on the way in and again on the way out.

Loading is strict: every parameter of our model is filled exactly once, and a missing tensor, an
unexpected one or a wrong shape raises an error that names it. Only safetensors files are read (no
pickles), and downloads are pinned to a commit of each Hub repository.
"""

from __future__ import annotations

import json
import os
import re
import socket
import textwrap
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .data import DataFile, DownloadError, data_path, sha256_of
from .model import GPT, GPTConfig
from .tokenizer import describe_tokenizer, gpt2_tokenizer, tokenizer_from_description


@dataclass(frozen=True)
class GPT2Size:
    """One of OpenAI's four GPT-2 models, and the Hub commit the course loads it from."""

    name: str
    n_layer: int
    n_head: int
    n_embd: int
    revision: str  # a commit of the Hub repository: the files can never change under us

    @property
    def repo_id(self) -> str:
        return f"openai-community/{self.name}"

    def config(self) -> GPTConfig:
        return GPTConfig(
            block_size=1024, vocab_size=50257, n_layer=self.n_layer, n_head=self.n_head, n_embd=self.n_embd
        )


# The pinned commits could not be checked against the Hub from the machine that wrote this course (it
# cannot reach the Hub). gpt2's is the commit that many public projects pin for openai-community/gpt2;
# the other three were taken from public code that pins them and are unverified. Should the Hub
# refuse one, `find_base_model` says so ("The Hugging Face Hub has no commit ...") and loads the stand-in.
GPT2_SIZES = {
    size.name: size
    for size in (  # 124M, 355M, 774M and 1558M parameters
        GPT2Size("gpt2", 12, 12, 768, revision="607a30d783dfa663caf39e06633721c8d4cfcd7e"),
        GPT2Size("gpt2-medium", 24, 16, 1024, revision="6dcaa7a952f72f9298047fd5137cd6e4f05f41da"),
        GPT2Size("gpt2-large", 36, 20, 1280, revision="32b71b12589c2f8d625668d2335a01cac3249519"),
        GPT2Size("gpt2-xl", 48, 25, 1600, revision="15ea56dee5df4983c59b2538573817e1667135e2"),
    )
}

WEIGHTS_FILE, CONFIG_FILE = "model.safetensors", "config.json"
FOLDER_INFO_FILE = "minigpt.json"  # a model folder's tokenizer and prompt format
PROMPT_FORMATS = ("plain", "alpaca")  # a base model's text continued; Alpaca's instruction template

# The stand-in for GPT-2 when the Hub cannot be reached: a small model in GPT-2's exact format,
# trained on Tiny Shakespeare with GPT-2's tokenizer (data/README.md says how it was made).
_STANDIN_URL = "https://raw.githubusercontent.com/build-a-gpt/build-a-gpt-from-scratch/main/data/"
STANDIN_DIR = "gpt2-shakespeare-standin"
STANDIN_FILES = (
    DataFile(
        f"{STANDIN_DIR}/{CONFIG_FILE}",
        "90474c2f31df8b1032b115295e2b869e69eb0cb671b5b9b7c82ef9848495451b",
        _STANDIN_URL + f"{STANDIN_DIR}/{CONFIG_FILE}",
    ),
    DataFile(
        f"{STANDIN_DIR}/{WEIGHTS_FILE}",
        "29e32ee635c3be5a421a81fec1ee8193b87875f1615a4ffe2bd5317aa3497ef4",
        _STANDIN_URL + f"{STANDIN_DIR}/{WEIGHTS_FILE}",
    ),
)

# ----------------------------------------------------------------------------------------------
# The mapping between GPT-2's tensor names and ours

CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
SKIPPED_BUFFERS = ("attn.bias", "attn.masked_bias")  # the causal mask, stored by old transformers


def _ends_with(name: str, suffixes: tuple[str, ...]) -> bool:
    """Whether `name` ends with one of `suffixes` as whole components (c_attn.bias is not attn.bias)."""
    return any(name == s or name.endswith("." + s) for s in suffixes)


def our_name(gpt2_name: str) -> str | None:
    """Our parameter name for a tensor of a GPT-2 checkpoint; None for a buffer that is not a parameter.

    `h.0.attn.c_attn.weight` and `transformer.h.0.attn.c_attn.weight` both become the latter.
    """
    name = gpt2_name.removeprefix("transformer.")
    if name == "lm_head.weight":
        return name
    if _ends_with(name, SKIPPED_BUFFERS):
        return None
    return "transformer." + name


def is_conv1d(name: str) -> bool:
    """Whether GPT-2 stores this weight as a Conv1D, (in, out): transposed relative to nn.Linear."""
    return _ends_with(name, CONV1D_WEIGHTS)


def _read_safetensors(path: Path) -> Iterator[tuple[str, torch.Tensor]]:
    """The (name, tensor) pairs of a safetensors file, one tensor in memory at a time."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for name in f.keys():
                yield name, f.get_tensor(name)
    except SafetensorError as error:
        raise ValueError(f"{path} is not a readable safetensors file ({error})") from None


def convert_gpt2_state(
    tensors: Iterator[tuple[str, torch.Tensor]],
    expected: dict[str, torch.Size],
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
) -> dict[str, torch.Tensor]:
    """Our state dict from a GPT-2 checkpoint's (name, tensor) pairs, checked against `expected` shapes.

    Conv1D weights are transposed; a stored `lm_head.weight` must equal the token embedding (our head is
    tied to it). Raises ValueError naming every tensor that is missing, unexpected, given twice or of
    the wrong shape.
    """
    state, head, problems = {}, None, []
    for gpt2_name, tensor in tensors:
        name = our_name(gpt2_name)
        if name is None:
            continue
        if name == "lm_head.weight":
            head = tensor
            continue
        if name not in expected:
            problems.append(f"unexpected tensor {gpt2_name!r} {tuple(tensor.shape)}")
            continue
        if name in state:
            problems.append(f"{gpt2_name!r} fills {name} a second time")
            continue
        if is_conv1d(name):
            tensor = tensor.t()  # Conv1D (in, out) -> nn.Linear (out, in)
        if tensor.shape != expected[name]:
            problems.append(
                f"{gpt2_name!r} has shape {tuple(tensor.shape)}, expected {tuple(expected[name])}"
            )
            continue
        state[name] = tensor.to(device=device, dtype=dtype or tensor.dtype).contiguous()
    problems += [
        f"missing tensor for {name} {tuple(shape)}" for name, shape in expected.items() if name not in state
    ]
    wte = state.get("transformer.wte.weight")
    if head is not None and wte is not None and not torch.equal(head.to(wte), wte):
        problems.append("lm_head.weight differs from wte.weight: an untied head, which our GPT cannot hold")
    if problems:
        shown = problems[:8] + [f"... and {len(problems) - 8} more"] * (len(problems) > 8)
        raise ValueError(
            "the checkpoint does not fit a GPT-2 of this configuration:\n  " + "\n  ".join(shown)
        )
    return state


# ----------------------------------------------------------------------------------------------
# config.json: GPT-2's fields <-> GPTConfig


# Options of GPT-2's config.json that our GPT implements one way only: (default, accepted values)
FIXED_OPTIONS = {
    "model_type": ("gpt2", ("gpt2",)),
    "activation_function": ("gelu_new", ("gelu_new", "gelu_pytorch_tanh")),  # both the tanh GELU
    "layer_norm_epsilon": (1e-5, (1e-5,)),
    "tie_word_embeddings": (True, (True,)),
    "scale_attn_weights": (True, (True,)),  # divide by sqrt(head_size)
    "scale_attn_by_inverse_layer_idx": (False, (False,)),
}


def config_from_gpt2(fields: dict) -> GPTConfig:
    """A GPTConfig from a GPT-2 config.json, refusing options our model does not implement."""
    for key, (default, accepted) in FIXED_OPTIONS.items():
        if fields.get(key, default) not in accepted:
            raise ValueError(f"config.json has {key}={fields[key]!r}; this GPT implements only {accepted}")
    if fields.get("n_inner") not in (None, 4 * fields.get("n_embd", 0)):
        raise ValueError(f"config.json has n_inner={fields['n_inner']}; this GPT's MLP is 4 x n_embd wide")
    try:
        return GPTConfig(
            block_size=fields["n_positions"],
            vocab_size=fields["vocab_size"],
            n_layer=fields["n_layer"],
            n_head=fields["n_head"],
            n_embd=fields["n_embd"],
        )
    except KeyError as missing:
        raise ValueError(f"config.json lacks the GPT-2 field {missing}") from None


def gpt2_config(config: GPTConfig, dtype: torch.dtype = torch.float32) -> dict:
    """GPT-2's config.json fields for a model of this shape (what transformers' GPT2Config reads)."""
    if not config.bias:
        raise ValueError("GPT-2's format has biases in every Linear and LayerNorm; this model has bias=False")
    endoftext = (
        50256 if config.vocab_size == 50257 else None
    )  # GPT-2's <|endoftext|>, if the vocab is GPT-2's
    return {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": config.vocab_size,
        "n_positions": config.block_size,
        "n_embd": config.n_embd,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": None,  # 4 * n_embd
        "activation_function": "gelu_new",  # the tanh approximation of GELU
        "layer_norm_epsilon": 1e-5,
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "tie_word_embeddings": True,
        "bos_token_id": endoftext,
        "eos_token_id": endoftext,
        "torch_dtype": str(dtype).removeprefix("torch."),
    }


# ----------------------------------------------------------------------------------------------
# Loading and saving


def download_gpt2(name: str, *, local_files_only: bool = False) -> Path:
    """The folder holding config.json and model.safetensors of a GPT-2 size, downloaded if needed.

    Goes through huggingface_hub: files land in its cache (HF_HUB_CACHE, by default
    ~/.cache/huggingface/hub), an interrupted download resumes, and the pinned revision means the
    same bytes every time. With HF_HUB_OFFLINE=1 or `local_files_only`, only the cache is used.
    The weights file's sha256 is checked against the one the Hub declared for it (`_verify_hub_sha256`).
    """
    size = _size(name)
    paths = [_hub_file(size, f, local_files_only) for f in (CONFIG_FILE, WEIGHTS_FILE)]
    _verify_hub_sha256(paths[-1])
    return paths[-1].parent


def _hub_file(size: GPT2Size, filename: str, local_files_only: bool) -> Path:
    """One file of a GPT-2 size, from the Hugging Face cache or the Hub; a DownloadError names it.

    huggingface_hub bounds each wait: HF_HUB_ETAG_TIMEOUT seconds for the Hub's answer about the
    file, HF_HUB_DOWNLOAD_TIMEOUT for each next piece of the file (10 s each unless those are set).
    A pinned revision the Hub lacks, and a file missing from the cache when only the cache may be
    read, keep huggingface_hub's own errors: `find_base_model` tells them apart.
    """
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import RevisionNotFoundError

    try:
        return Path(
            hf_hub_download(
                size.repo_id,
                filename,
                revision=size.revision,
                local_files_only=local_files_only,
                etag_timeout=constants.HF_HUB_ETAG_TIMEOUT,
            )
        )
    except RevisionNotFoundError:
        raise
    # Not only OSError: huggingface_hub's transport errors depend on its HTTP library (requests'
    # are OSErrors, httpx's are not), and each becomes the one error that says what was fetched.
    except Exception as error:
        if local_files_only:
            raise
        reason = " ".join(str(error).split()) or type(error).__name__
        source = f"{constants.ENDPOINT} (revision {size.revision})"
        raise DownloadError(f"{filename} of {size.repo_id}", source, reason) from error


def _verify_hub_sha256(path: Path) -> None:
    """Raise ValueError unless the file's sha256 is the one the Hub declared for it.

    The Hub keeps weights in git-lfs and names each such file by its sha256 (the ETag of its answer);
    huggingface_hub stores the file as blobs/<that sha256> in its cache and links the snapshot's
    file to it, but checks only the size of what it received. So the link says what the content must
    hash to. (Where the filesystem has no links, the cache holds a plain copy and no name to check.)
    """
    blob = path.resolve()
    if blob.parent.name != "blobs" or not re.fullmatch(r"[0-9a-f]{64}", blob.name):
        return
    actual = sha256_of(blob)
    if actual != blob.name:
        raise ValueError(
            f"{path.name} in the Hugging Face cache has sha256 {actual}, but the Hub declared {blob.name}: "
            f"a corrupt download. Delete {blob} and run again to download it afresh."
        )


def _size(name: str) -> GPT2Size:
    if name not in GPT2_SIZES:
        raise ValueError(f"unknown GPT-2 model {name!r}: choose one of {', '.join(GPT2_SIZES)}")
    return GPT2_SIZES[name]


def from_pretrained(
    name_or_dir: str | os.PathLike,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    dropout: float = 0.0,
) -> GPT:
    """Our GPT holding the weights of a GPT-2 size ("gpt2", ..., "gpt2-xl") or of a folder in its format.

    The folder must hold config.json and model.safetensors as Hugging Face writes them (or as
    `save_pretrained` does). `dtype` (torch.bfloat16 or torch.float16) converts each tensor as it is
    read, so memory peaks at the converted model plus one tensor: gpt2-xl's 1,557,611,200
    parameters need 6.2 GB in float32 and 3.1 GB in bfloat16 (gpt2: 0.50 GB and 0.25 GB). The model
    is returned in eval mode, with `dropout` (default 0) set for any fine-tuning that follows.
    """
    if str(name_or_dir) in GPT2_SIZES:
        folder = download_gpt2(str(name_or_dir))
    elif Path(name_or_dir).is_dir():
        folder = Path(name_or_dir)
    else:
        raise ValueError(
            f"{str(name_or_dir)!r} is neither a GPT-2 model name ({', '.join(GPT2_SIZES)}) nor a folder "
            f"holding {CONFIG_FILE} and {WEIGHTS_FILE}"
        )
    return _load_folder(folder, device=device, dtype=dtype, dropout=dropout)


def _load_folder(folder: Path, *, device, dtype, dropout: float) -> GPT:
    for f in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / f).is_file():
            pickled = " (only safetensors are read; pytorch_model.bin is a pickle)" * (f == WEIGHTS_FILE)
            raise FileNotFoundError(f"{folder} has no {f}{pickled}")
    config = replace(config_from_gpt2(json.loads((folder / CONFIG_FILE).read_text())), dropout=dropout)
    with torch.device("meta"):  # the shapes only: no memory, no random initialisation
        model = GPT(config)
    expected = {name: p.shape for name, p in model.named_parameters()}  # the tied head appears once
    state = convert_gpt2_state(_read_safetensors(folder / WEIGHTS_FILE), expected, dtype=dtype, device=device)
    state["lm_head.weight"] = state["transformer.wte.weight"]
    model.load_state_dict(state, strict=True, assign=True)
    model.lm_head.weight = model.transformer.wte.weight  # assign made two Parameters: tie them again
    return model.eval()


def save_pretrained(
    model: GPT, directory: str | os.PathLike, *, tokenizer=None, prompt_format: str = "plain"
) -> Path:
    """Write `model` as a model folder: a Hugging Face GPT-2 checkpoint (config.json and
    model.safetensors) and minigpt.json, which records `tokenizer` and `prompt_format`.

    `tokenizer` may be left out for a model with GPT-2's vocabulary of 50,257 (GPT-2's tokenizer is
    recorded); a model of another vocabulary must say which tokenizer it reads. `prompt_format` is
    "plain" for a base model, "alpaca" for one tuned on instructions in Alpaca's template.
    `transformers.GPT2LMHeadModel.from_pretrained(directory)` loads the result, and so does
    `from_pretrained`. Each file is written under a temporary name and renamed into place.
    """
    dtype = model.transformer.wte.weight.dtype
    config = json.dumps(gpt2_config(model.config, dtype), indent=2)  # refuses what GPT-2's format cannot hold
    folder_info = _folder_info(model.config, tokenizer, prompt_format)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, param in model.named_parameters():  # the tied head is stored once, as wte
        tensor = param.detach().cpu()
        tensors[name] = (tensor.t() if is_conv1d(name) else tensor).contiguous()  # Linear -> Conv1D
    _write_atomically(directory / CONFIG_FILE, lambda p: p.write_text(config + "\n"))
    _write_atomically(
        directory / WEIGHTS_FILE, lambda p: save_file(tensors, str(p), metadata={"format": "pt"})
    )
    info = json.dumps(folder_info, indent=1, ensure_ascii=False)
    _write_atomically(directory / FOLDER_INFO_FILE, lambda p: p.write_text(info + "\n", encoding="utf-8"))
    return directory


def _folder_info(config: GPTConfig, tokenizer, prompt_format: str) -> dict:
    """minigpt.json's content, checked against the model it goes with."""
    if prompt_format not in PROMPT_FORMATS:
        raise ValueError(f"unknown prompt format {prompt_format!r}: choose one of {', '.join(PROMPT_FORMATS)}")
    if tokenizer is None:
        if config.vocab_size != 50257:
            raise ValueError(
                f"say which tokenizer this model reads (tokenizer=...): its vocabulary of {config.vocab_size} "
                "is not GPT-2's 50,257"
            )
        tokenizer = gpt2_tokenizer()
    if tokenizer.n_vocab > config.vocab_size:
        raise ValueError(
            f"the tokenizer has {tokenizer.n_vocab} tokens but the model's vocabulary only {config.vocab_size}"
        )
    return {"tokenizer": describe_tokenizer(tokenizer), "prompt_format": prompt_format}


class LoadedModel(NamedTuple):
    """A model folder, read: the model, the tokenizer it reads and writes, and its prompt format."""

    model: GPT
    tokenizer: object  # a CharTokenizer or a tiktoken Encoding (minigpt.tokenizer)
    prompt_format: str  # "plain" or "alpaca"


def load_model(
    name_or_dir: str | os.PathLike,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    dropout: float = 0.0,
) -> LoadedModel:
    """A model folder (or GPT-2 by name) with its tokenizer and prompt format: the one loader of models.

    The model is `from_pretrained`'s (in eval mode, with `dropout` set for any fine-tuning).

    A training run's checkpoints are not a model folder: `minigpt export` (or `export_checkpoint`)
    makes one from them; `minigpt train --out DIR` writes one into DIR when it stops.
    """
    path = Path(name_or_dir)
    if path.is_dir() and not (path / CONFIG_FILE).is_file() and (path / "latest").is_file():
        raise FileNotFoundError(
            f"{path} holds a training run's checkpoints, not a model folder: make one with "
            f"`minigpt export {path} --out FOLDER`"
        )
    model = from_pretrained(name_or_dir, device=device, dtype=dtype, dropout=dropout)
    info_file = path / FOLDER_INFO_FILE
    if str(name_or_dir) in GPT2_SIZES or not info_file.is_file():
        if model.config.vocab_size != 50257:
            raise FileNotFoundError(
                f"{path} has no {FOLDER_INFO_FILE} to say which tokenizer its vocabulary of "
                f"{model.config.vocab_size} belongs to (only GPT-2's 50,257 is assumed)"
            )
        return LoadedModel(model, gpt2_tokenizer(), "plain")
    info = json.loads(info_file.read_text(encoding="utf-8"))
    for key in ("tokenizer", "prompt_format"):
        if key not in info:
            raise ValueError(f"{info_file} has no {key!r}: it must hold 'tokenizer' and 'prompt_format'")
    tokenizer = tokenizer_from_description(info["tokenizer"])
    _folder_info(model.config, tokenizer, info["prompt_format"])  # the same checks as when saving
    return LoadedModel(model, tokenizer, info["prompt_format"])


def _write_atomically(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # same folder: the rename cannot cross disks
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # readable by all, as a plain file would be (safetensors writes 0600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------------------------
# The base model of Chapters 6 to 8: GPT-2 when the Hub is reachable, else the stand-in


class BaseModel(NamedTuple):
    model: GPT
    source: str  # where the weights came from, in words
    is_standin: bool


class BaseCheckpoint(NamedTuple):
    folder: Path  # config.json and model.safetensors
    source: str
    is_standin: bool


def standin_dir() -> Path:
    """The folder of the shipped stand-in, both files' sha256 verified."""
    paths = [data_path(f, verbose=False) for f in STANDIN_FILES]
    return paths[0].parent


def hub_reachable(timeout: float = 3.0) -> tuple[bool, str]:
    """Whether the Hugging Face Hub answers within `timeout` seconds, and if not, why not.

    The check runs in a background thread so that a name lookup that hangs cannot hold us longer.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False, "HF_HUB_OFFLINE is set"
    outcome = ["no answer within %g s" % timeout]

    def ask() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(constants.ENDPOINT, method="HEAD"), timeout=timeout)
            outcome[0] = ""
        except urllib.error.HTTPError:
            outcome[0] = ""  # an HTTP error is still an answer
        except OSError as error:
            reason = getattr(error, "reason", error)
            # A failed name lookup is how "no network" usually shows: say that, not "[Errno -2] ..."
            lookup_failed = isinstance(reason, socket.gaierror)
            outcome[0] = "no network: its address could not be looked up" if lookup_failed else str(reason)

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return outcome[0] == "", outcome[0]


# A test that serves GPT-2's files with random weights at the real shape (scripts/local_hub.py) sets
# MINIGPT_RANDOM_WEIGHTS=1: the download path is exercised for real, and the claims about a trained
# model's quality, which random weights cannot meet, are skipped visibly (`check_quality`).
RANDOM_WEIGHTS_ENV = "MINIGPT_RANDOM_WEIGHTS"


def weights_declared_random() -> bool:
    """Whether MINIGPT_RANDOM_WEIGHTS=1 declares the GPT-2 weights served by the Hub endpoint random."""
    value = os.environ.get(RANDOM_WEIGHTS_ENV, "0")
    if value not in ("0", "1"):
        raise ValueError(f"{RANDOM_WEIGHTS_ENV} must be 1 (the Hub serves random weights) or 0, got {value!r}")
    return value == "1"


def check_quality(base: BaseModel | BaseCheckpoint, claim: str, holds: bool) -> None:
    """Assert `claim`, a statement about how good the loaded base model is; `holds` says whether it does.

    A claim about quality holds only for trained weights, so a chapter states it for the model it is
    about (the stand-in's measured numbers for the stand-in, for GPT-2 only what GPT-2 must give).
    When GPT-2's weights are declared random (MINIGPT_RANDOM_WEIGHTS=1, a test against a local Hub),
    a claim about GPT-2 is skipped with a printed line, never silently. The stand-in is the shipped
    file, sha256-verified, so its claims are always checked. Checks that hold for any weights (cached
    decoding equals uncached, logits equal transformers') are plain asserts, not quality claims.
    """
    if not base.is_standin and weights_declared_random():
        print(f"quality check skipped (weights declared random): {claim}")
        return
    if not bool(holds):
        raise AssertionError(f"quality check failed for {base.source}: {claim}")


def _print_lines(text: str, width: int = 80) -> None:
    """Print `text` line by line, each line wrapped at spaces to `width` columns (the book's page)."""
    for line in text.split("\n"):
        print(textwrap.fill(line, width, break_on_hyphens=False))


def find_base_model(name: str = "gpt2") -> BaseCheckpoint:
    """The folder of GPT-2 `name` (the local cache, else the Hub), or offline the stand-in's; says which.

    Takes a few seconds when the Hub cannot be reached: the cache is checked first, then one short
    request (`hub_reachable`) decides before any download is tried.
    """
    from huggingface_hub.errors import LocalEntryNotFoundError, RevisionNotFoundError

    size = _size(name)
    source = f"{size.repo_id} at revision {size.revision[:7]}"
    try:
        folder, where = download_gpt2(name, local_files_only=True), "the local Hugging Face cache"
    except LocalEntryNotFoundError:
        folder, where = None, "the Hugging Face Hub"
        reachable, reason = hub_reachable()
        problem = f"The Hugging Face Hub is not reachable ({reason})."
        if reachable:
            try:
                folder = download_gpt2(name)
            except RevisionNotFoundError:
                problem = (
                    f"The Hugging Face Hub has no commit {size.revision}\n"
                    f"of {size.repo_id}, which this course pins."
                )
            except OSError as error:  # huggingface_hub's HTTP and connection errors are OSErrors
                problem = f"GPT-2 could not be downloaded from the Hugging Face Hub\n({' '.join(str(error).split())})."
    if folder is not None:
        _print_lines(f"Using OpenAI's GPT-2 {name} from {where}\n({source}).")
        if weights_declared_random():
            _print_lines(f"Its weights are declared random ({RANDOM_WEIGHTS_ENV}=1):\nquality checks will be skipped.")
        return BaseCheckpoint(folder, source, False)
    _print_lines(
        f"{problem}\nUsing the course's stand-in instead, a small GPT-2-format model trained on\n"
        f"Tiny Shakespeare (data/{STANDIN_DIR}, sha256 verified)."
    )
    return BaseCheckpoint(standin_dir(), f"the course's stand-in (data/{STANDIN_DIR})", True)


def load_base_model(
    name: str = "gpt2", device: torch.device | str = "cpu", *, dtype: torch.dtype | None = None
) -> BaseModel:
    """GPT-2 (`name`, from the local cache or the Hub), or offline the course's stand-in; says which.

    The stand-in is a 4-layer, 96-wide GPT in GPT-2's format, trained on Tiny Shakespeare with
    GPT-2's tokenizer and shipped in data/; it is loaded by the same `from_pretrained`.
    """
    folder, source, is_standin = find_base_model(name)
    return BaseModel(from_pretrained(folder, device=device, dtype=dtype), source, is_standin)
