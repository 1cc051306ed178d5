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
    width, height = png_size(base64.b64decode(data["image/png"]))
    # A width only: the built book would fix a height in the image's style, and squash the figure
    # wherever the page's column is narrower than the figure.
    assert metadata["image/png"] == {"width": metadata["image/png"]["width"]}
    shown = metadata["image/png"]["width"]
    # IPython halves the PNG's width for the metadata, rounding down: an odd pixel count is one over.
    assert 2 * shown <= width <= 2 * shown + 1, (width, shown)
    # Displayed at the size a plain PNG of the same figure has (the same "tight" box, at 1x).
    plain_width, plain_height = png_size(print_figure(fig, "png", bbox_inches="tight"))
    assert abs(shown - plain_width) <= 1 and abs(height / 2 - plain_height) <= 1, (width, height, plain_width)
