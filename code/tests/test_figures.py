"""minigpt.setup_figures: figures as PNG at twice the pixel density, shown at their 1x size."""

import base64
import struct

import matplotlib.pyplot as plt
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.pylabtools import print_figure

import minigpt


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])  # width, height from the IHDR chunk


class Shell(InteractiveShell):
    """A kernel's shell, without the GUI event loop the inline backend does not need anyway."""

    def enable_gui(self, gui=None):
        pass


@pytest.fixture
def shell():
    shell = Shell.instance()
    yield shell
    InteractiveShell.clear_instance()
    plt.close("all")


def test_figures_are_png_at_twice_the_pixels_of_their_displayed_size(shell):
    minigpt.setup_figures()
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [1, 0])
    data, metadata = shell.display_formatter.format(fig)

    assert data["text/plain"] == ""  # no "<Figure size ...>" stand-in for nbval to compare
    assert "image/svg+xml" not in data
    pixels = png_size(base64.b64decode(data["image/png"]))
    shown = metadata["image/png"]["width"], metadata["image/png"]["height"]
    # IPython halves the PNG's size for the metadata, rounding down: an odd pixel count is one over.
    assert all(2 * s <= p <= 2 * s + 1 for p, s in zip(pixels, shown)), (pixels, shown)
    # Displayed at the size a plain PNG of the same figure has (the same "tight" box, at 1x).
    plain = png_size(print_figure(fig, "png", bbox_inches="tight"))
    assert all(abs(s - p) <= 1 for s, p in zip(shown, plain)), (shown, plain)
