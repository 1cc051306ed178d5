"""A T4's limits on a bigger CUDA GPU: does the course fit Colab's free GPU? (used by scripts/gpu_check.py)

`apply()`, in a process before its first CUDA allocation, makes the GPU behave as a T4 would in the
ways the course depends on:

- memory: PyTorch's caching allocator may hold at most CAP_BYTES (`set_per_process_memory_fraction`),
  and `torch.cuda.mem_get_info` reports that cap as the total and what is left under it as free,
  so code that sizes its run from free memory (`minigpt.memory.free_memory`) sees a T4's room;
- bf16 reported as unsupported (`torch.cuda.is_bf16_supported` answers False), so the Trainer's
  "auto" precision takes fp16 with a GradScaler, as on a T4 (compute capability 7.5, no bf16 units);
- TF32 off: float32 matrix products and convolutions in full float32, as on a T4, which has no TF32;
- attention: FlashAttention and cuDNN's attention (compute capability 8.0 and later) off, so
  `F.scaled_dot_product_attention` takes the memory-efficient kernel a T4 runs, with its memory.

Neither speed nor the device's name and compute capability are changed.

Three ways in, so that every process of a check runs under the same limits:

    a Jupyter kernel   an IPython start-up file that calls `start_kernel()` (gpu_check.py writes one
                       into a temporary IPYTHONDIR, which the kernels inherit)
    pytest             `python -m pytest -p t4_limits ...` with scripts/ on PYTHONPATH
    a script           `python scripts/t4_limits.py SCRIPT [ARGS...]`

A kernel started with start_kernel() also writes its peak GPU memory (`torch.cuda.max_memory_allocated`
and `max_memory_reserved`) as JSON to the file named by PEAK_FILE_ENV, after every cell and every
few seconds while a cell runs, so the peak is known even if the chapter fails or is stopped.
On a machine without CUDA nothing is changed and the peaks are recorded as null.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
import threading
import time
from pathlib import Path

import torch

CAP_ENV = "T4_LIMITS_CAP_BYTES"  # a different cap, in bytes (gpu_check.py --cap-gib sets it)
PEAK_FILE_ENV = "T4_LIMITS_PEAK_FILE"  # where a kernel or a pytest run writes its peak memory
# 14.5 GiB: a T4 has 15 GiB (15,360 MiB, as nvidia-smi shows it), less about half a GiB that the CUDA
# context takes before PyTorch allocates anything.
CAP_BYTES = int(14.5 * 2**30)
RECORD_INTERVAL_S = 2.0  # how often a running cell's peak is written


def cap_bytes() -> int:
    return int(os.environ.get(CAP_ENV, CAP_BYTES))


def apply() -> dict:
    """Put the T4's limits in place for this process (see the module's docstring); what was set."""
    if not torch.cuda.is_available():
        return {"cuda": False}
    cap = cap_bytes()
    total = torch.cuda.get_device_properties(0).total_memory
    if cap > total:
        raise ValueError(f"the cap of {cap / 2**30:.2f} GiB is more than this GPU's {total / 2**30:.2f} GiB")
    torch.cuda.set_per_process_memory_fraction(cap / total, 0)

    driver_mem_get_info = torch.cuda.mem_get_info

    def mem_get_info(device=None) -> tuple[int, int]:
        free, _total = driver_mem_get_info(device)
        return max(0, min(free, cap - torch.cuda.memory_reserved(device))), cap

    torch.cuda.mem_get_info = mem_get_info
    torch.cuda.is_bf16_supported = lambda including_emulation=True: False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.enable_flash_sdp(False)
    torch.backends.cuda.enable_cudnn_sdp(False)
    return {
        "cuda": True,
        "device": torch.cuda.get_device_name(0),
        "cap_bytes": cap,
        "device_total_bytes": total,
        "bf16_supported": torch.cuda.is_bf16_supported(),
        "tf32": torch.backends.cuda.matmul.allow_tf32,
        "flash_sdp": torch.backends.cuda.flash_sdp_enabled(),
    }


def peaks() -> dict:
    """Peak bytes allocated and reserved on the GPU by this process so far; null without CUDA."""
    if not torch.cuda.is_available():
        return {"max_memory_allocated": None, "max_memory_reserved": None}
    return {
        "max_memory_allocated": torch.cuda.max_memory_allocated(0),
        "max_memory_reserved": torch.cuda.max_memory_reserved(0),
    }


class PeakRecorder:
    """Writes this process's peak memory, and the peak after each finished cell, to a JSON file.

    The peaks written are the highest seen in any sample (after each cell, every few seconds), so a
    reset of PyTorch's peak statistics in between (`minigpt.memory.peak_allocated` makes one) lowers
    nothing; only a peak reached and reset between two samples would be missed."""

    def __init__(self, path: str | os.PathLike, settings: dict):
        self.path = Path(path)
        self.settings = settings
        self.highest: dict = peaks()
        self.cells: list[list] = []  # per cell run: [its number from 1, its first line, highest after it]
        self.lock = threading.Lock()

    def sample(self) -> dict:
        with self.lock:
            for key, value in peaks().items():
                if value is not None:
                    self.highest[key] = max(value, self.highest[key] or 0)
            return dict(self.highest)

    def write(self, running: bool = False) -> None:
        highest = self.sample()
        with self.lock:  # the timer thread and the kernel's main thread
            record = {"t4_limits": self.settings, **highest, "cells": self.cells, "running": running}
            partial = self.path.with_suffix(".part")
            partial.write_text(json.dumps(record))
            os.replace(partial, self.path)  # a reader never sees half a file

    def after_cell(self, result) -> None:
        first_line = result.info.raw_cell.strip().split("\n", 1)[0][:80] if result.info else ""
        self.cells.append([len(self.cells) + 1, first_line, self.sample()["max_memory_allocated"]])
        self.write()

    def every_few_seconds(self) -> None:
        while True:
            time.sleep(RECORD_INTERVAL_S)
            self.write(running=True)


def start_kernel() -> None:
    """In an IPython kernel's start-up: apply the limits and record the peak (see the docstring)."""
    from IPython import get_ipython

    settings = apply()
    path = os.environ.get(PEAK_FILE_ENV)
    if path:
        recorder = PeakRecorder(path, settings)
        recorder.write()
        get_ipython().events.register("post_run_cell", recorder.after_cell)
        threading.Thread(target=recorder.every_few_seconds, name="t4-peak", daemon=True).start()


# --- pytest: `-p t4_limits` -------------------------------------------------------------------------


def pytest_configure(config) -> None:
    config.t4_limits = apply()


def pytest_unconfigure(config) -> None:
    path = os.environ.get(PEAK_FILE_ENV)
    if path and hasattr(config, "t4_limits"):
        PeakRecorder(path, config.t4_limits).write()


def run_script(argv: list[str]) -> None:
    """python scripts/t4_limits.py SCRIPT [ARGS...]: run SCRIPT with ARGS under a T4's limits."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("script", help="the Python script to run under the limits")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="its arguments, passed on as they are")
    args = parser.parse_args(argv)
    print(f"T4 limits: {apply()}", flush=True)
    sys.argv = [args.script, *args.args]
    sys.path[0] = str(Path(args.script).resolve().parent)  # as if SCRIPT had been run directly
    runpy.run_path(args.script, run_name="__main__")


if __name__ == "__main__":
    run_script(sys.argv[1:])
