"""Notebook display settings shared by every chapter."""

from __future__ import annotations


def setup_figures() -> None:
    """Show matplotlib figures as PNG images, with nothing but the image in the cell's output.

    By default a figure comes with a plain-text stand-in, "<Figure size 640x480 with 1 Axes>", which
    the built book never shows but the saved notebook keeps; an empty stand-in keeps the executed
    chapters free of it. Outside IPython this does nothing.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    from matplotlib.figure import Figure

    # Activate the inline backend first: activating it resets every figure formatter, ours included.
    shell.run_line_magic("matplotlib", "inline")
    shell.run_line_magic("config", "InlineBackend.figure_formats = ['png']")
    shell.display_formatter.formatters["text/plain"].for_type(
        Figure, lambda figure, printer, cycle: printer.text("")
    )
