"""Data files the course ships, and turning a token sequence into training batches (Chapter 1).

Every file is identified by its sha256. `data_path` looks for the copy shipped in the repository's
`data/` folder first; only when there is none (a bare `pip install` of the package) does it download
the file from its original source into a cache. Either way the hash is checked before the file is used,
and one line says which path was taken.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass(frozen=True)
class DataFile:
    """A file the course uses: its name in `data/`, its sha256 and where it comes from."""

    name: str
    sha256: str
    url: str


TINY_SHAKESPEARE = DataFile(
    name="tinyshakespeare.txt",
    sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
)
GPT2_BPE_RANKS = DataFile(
    name="gpt2.tiktoken",
    sha256="306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
    url="https://openaipublic.blob.core.windows.net/encodings/r50k_base.tiktoken",
)
CL100K_BASE_RANKS = DataFile(
    name="cl100k_base.tiktoken",
    sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    url="https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
)
TANG_POEMS = DataFile(  # assembled by the course from the chinese-poetry dataset (data/README.md)
    name="tang-poems.txt",
    sha256="0184cd16c081084a4611ad0857009d46821d485d57af2b2c03ff1bbc88ecd2bb",
    url="https://raw.githubusercontent.com/build-a-gpt/build-a-gpt-from-scratch/main/data/tang-poems.txt",
)
PREFERENCE_DATA = DataFile(
    name="instruction-data-with-preference.json",
    sha256="305315abf14f65fa42c01a0877572f832606571c2a7d49f152ac1d758b16756e",
    url="https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/28c65cdf/"
    "ch07/04_preference-tuning-with-dpo/instruction-data-with-preference.json",
)
DOWNLOAD_TIMEOUT_S = 60  # the longest wait for the server to connect or to send the next bytes


class DownloadError(OSError):
    """A download that failed; its message says what was being fetched, from where, and why."""

    def __init__(self, what: str, source: str, reason: object):
        super().__init__(f"downloading {what} from {source} failed: {reason}")


def fetch(url: str, what: str, timeout: float = DOWNLOAD_TIMEOUT_S) -> bytes:
    """The bytes at `url`, or a DownloadError naming `what` and the URL.

    `timeout` bounds each wait (for the connection, then for each next piece of the answer), so a
    server that stops answering ends the download instead of hanging it.
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except OSError as error:  # no network, a timeout, an HTTP error (urllib's are OSErrors)
        raise DownloadError(what, url, _reason(error)) from error


def _reason(error: OSError) -> object:
    """Why a urllib request failed, without the "<urlopen error ...>" wrapping around the cause."""
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        return error.reason
    return error


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    """Raise ValueError unless the file's sha256 is `expected`."""
    actual = sha256_of(path)
    if actual != expected:
        raise ValueError(
            f"{path.name}: sha256 is {actual}, expected {expected}. The file is corrupt or a different "
            "version; delete it and let the course fetch it again."
        )


def _shipped_dirs() -> list[Path]:
    """Where a shipped `data/` folder may be: $MINIGPT_DATA, beside the package, or above the cwd."""
    dirs = []
    if os.environ.get("MINIGPT_DATA"):
        dirs.append(Path(os.environ["MINIGPT_DATA"]))
    dirs.append(Path(__file__).resolve().parents[2] / "data")  # repository checkout: code/minigpt/ -> data/
    here = Path.cwd().resolve()
    dirs += [d / "data" for d in (here, *here.parents)]
    return dirs


def cache_dir() -> Path:
    """Where downloads and encoded token files are kept: $MINIGPT_CACHE, or ~/.cache/minigpt."""
    return Path(os.environ.get("MINIGPT_CACHE", Path.home() / ".cache" / "minigpt"))


def data_path(file: DataFile, verbose: bool = True) -> Path:
    """Path to a verified copy of `file`: the shipped one if present, else a downloaded one."""
    for folder in _shipped_dirs():
        path = folder / file.name
        if path.is_file():
            verify_sha256(path, file.sha256)
            if verbose:
                print(f"{file.name}: shipped copy in data/ (sha256 verified)")
            return path
    path = cache_dir() / file.name
    if not path.is_file():
        if verbose:
            print(f"{file.name}: not shipped here, downloading it from\n  {file.url}")
        content = fetch(file.url, file.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(path.suffix + ".part")
        partial.write_bytes(content)
        verify_sha256(partial, file.sha256)
        os.replace(partial, path)
    else:
        verify_sha256(path, file.sha256)
        if verbose:
            print(f"{file.name}: downloaded earlier to the cache (sha256 verified)")
    return path


def load_text(file: DataFile = TINY_SHAKESPEARE, verbose: bool = True) -> str:
    """The verified text of a shipped text file (by default Tiny Shakespeare)."""
    return data_path(file, verbose).read_text(encoding="utf-8")


def read_text_file(path: str | Path) -> str:
    """The text of a UTF-8 file of one's own, to train on; a clear error if it cannot be used."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"the text file {path} does not exist")
    if not path.is_file():
        raise ValueError(f"{path} is not a file: give a UTF-8 text file to train on")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"the text file {path} cannot be read: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path} is not UTF-8 text (byte {error.start} is {error.object[error.start:error.start + 1]!r}): "
            "save it as UTF-8 and try again"
        ) from None
    if not text.strip():
        raise ValueError(f"the text file {path} is empty: there is nothing to train on")
    return text


def write_tokens(tokens, path: str | Path) -> Path:
    """Write token ids (each below 65,536) to a flat uint16 file, atomically.

    Two bytes a token: GPT-2's 50,257 ids fit, and a corpus of any size can then be memory-mapped
    with `read_tokens` instead of loaded whole.
    """
    array = np.asarray(tokens)
    if array.size and (array.min() < 0 or array.max() >= 2**16):
        raise ValueError(
            f"token ids must be in [0, 65536) to be stored as uint16, got {array.min()}..{array.max()}"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".part")
    array.astype(np.uint16).tofile(partial)
    os.replace(partial, path)
    return path


def read_tokens(path: str | Path) -> np.ndarray:
    """A uint16 token file as a read-only memory map: pages load from disk only as windows need them."""
    return np.memmap(path, dtype=np.uint16, mode="r")


def train_val_split(data: torch.Tensor, val_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a 1-D token sequence into its first (1 - val_fraction) and its last val_fraction.

    The split is by position, not at random: validation text is a contiguous stretch the model never
    trains on, so its loss measures how well the model does on unseen text.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    n_train = int(len(data) * (1 - val_fraction))
    return data[:n_train], data[n_train:]


def get_batch(
    data: torch.Tensor | np.ndarray,
    block_size: int,
    batch_size: int,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows of `block_size` tokens (x) and the same windows shifted by one (y).

    y[b, t] is the token that follows x[b, : t + 1], so one window gives `block_size` training examples.
    `data` is a 1-D tensor or NumPy array of token ids (a memory-mapped uint16 file works too).
    """
    if len(data) <= block_size:
        raise ValueError(
            f"the sequence has {len(data)} tokens, but a batch needs more than block_size={block_size} "
            "(a window plus the one token that follows it)"
        )
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator).tolist()  # (B,)
    return windows_at(data, starts, block_size, device)


def windows_at(
    data: torch.Tensor | np.ndarray, starts: list[int], block_size: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The windows x = data[s : s + block_size] and y = data[s + 1 : s + block_size + 1] for each start s."""
    rows = [torch.as_tensor(np.asarray(data[s : s + block_size + 1]).astype(np.int64)) for s in starts]
    xy = torch.stack(rows)  # (B, T + 1)
    x, y = xy[:, :-1].contiguous(), xy[:, 1:].contiguous()  # (B, T) each
    if torch.device(device).type == "cuda":  # pinned memory lets the copy overlap with compute
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)
