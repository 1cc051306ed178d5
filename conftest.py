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
"""

import os

from minigpt.notebook import PROGRESS_ENV

os.environ[PROGRESS_ENV] = "plain"


def pytest_addoption(parser):
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
