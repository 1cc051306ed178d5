"""Test configuration for the whole repository (unit tests and the chapters under nbval).

Chapters run here without live progress bars: MINIGPT_PROGRESS=plain (inherited by the kernels
nbval starts) makes `minigpt.progress` draw nothing and the Trainer print plain lines. A live bar is
a Jupyter widget that sends three or four messages per redraw. nbval reads none of a cell's
messages until the cell has finished, and the kernel's message socket holds only so many for a
reader that is not reading (a high-water mark of 1000 messages at each end, plus the socket
buffers): past that it drops them, the cell's last outputs and its "idle" status included, and
nbval fails with "Timeout of 5 seconds exceeded waiting for output". A long training cell on a busy
machine runs longer, redraws more, and crossed that line.

nbval_output_timeout (pytest.ini) replaces nbval's fixed 5 s wait for each message of a finished
cell, so that a slow kernel on a loaded machine is not mistaken for a lost message.

Two more settings, inherited by those kernels too:

- HF_HUB_OFFLINE=1: Chapters 6-8 take the offline path (the shipped stand-in) on every machine, so
  their outputs can be compared with the committed ones, which were executed the same way
  (scripts/execute_chapters.py sets it too). A reader running a chapter online still gets GPT-2.
- OMP_WAIT_POLICY=PASSIVE: PyTorch's CPU threads sleep instead of spinning while they wait for each
  other. Same thread count, same numbers; on an idle 2-core machine training is about a third slower,
  but with another process keeping one core busy it is about 1.6x faster, because a spinning thread
  no longer steals the time slice of the thread it is waiting for.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported
os.environ["HF_HUB_OFFLINE"] = "1"

from minigpt.notebook import PROGRESS_ENV  # noqa: E402 (after the environment above)

os.environ[PROGRESS_ENV] = "plain"


def pytest_addoption(parser):
    parser.addoption(
        "--device",
        default="cpu",
        choices=("cpu", "cuda", "mps"),
        help="the device of the unit tests marked cuda (the `device` fixture); default: cpu",
    )
    parser.addini(
        "nbval_output_timeout",
        "seconds nbval waits for each output message of a finished cell (nbval's own value is 5)",
        default="300",
    )


def pytest_collection_modifyitems(config, items):
    timeout = float(config.getini("nbval_output_timeout"))
    for item in items:
        if hasattr(item, "output_timeout"):  # a notebook cell collected by nbval
            item.output_timeout = timeout
