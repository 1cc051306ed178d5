"""Notebook display settings shared by every chapter: figures and progress bars."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

# Set to "plain" (scripts/execute_chapters.py and the test configuration do) to draw no live bars:
# executed chapters are saved and tested without widgets, which vanish offline, show a frozen "0%"
# in plain viewers and send the test runner three or four messages per redraw.
PROGRESS_ENV = "MINIGPT_PROGRESS"

# A live bar redraws at most this often (seconds). A Jupyter bar costs three or four widget messages
# per redraw, so this keeps a long loop at a few messages a second, however fast its steps are.
REDRAW_INTERVAL = 0.5


def live_progress() -> bool:
    """Whether progress() draws live bars: yes, unless MINIGPT_PROGRESS is "plain"."""
    return os.environ.get(PROGRESS_ENV, "").strip().lower() != "plain"


class Progress:
    """A progress bar over a loop: live for a reader (a widget in Jupyter, text in a terminal),
    absent when chapters are executed or tested. Make one with `progress(...)`.

    It counts an item when the loop takes it, so a loop that breaks on its last item (as in
    `for step in progress(range(max_steps + 1)): ... if step == max_steps: break`) ends full and
    green, never red at "2000/2001".
    """

    def __init__(self, iterable: Iterable | None, total: int | None, desc: str | None, initial: int):
        if total is None and iterable is not None:
            total = len(iterable) if hasattr(iterable, "__len__") else None
        self.iterable, self.total = iterable, total
        self.n = initial
        self._bar = None
        if live_progress():
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total,
                initial=initial,
                desc=desc,
                mininterval=REDRAW_INTERVAL,
                dynamic_ncols=True,
            )

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("this progress bar has no iterable: call progress(iterable) to loop over one")
        try:
            for item in self.iterable:
                self.update(1)  # counted as it is taken (see the class docstring)
                yield item
        finally:  # the loop ended, broke or raised
            self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)

    def set_postfix(self, **values) -> None:
        """Show `values` (e.g. the latest losses) after the bar; nothing when bars are plain."""
        if self._bar is not None:
            self._bar.set_postfix(values, refresh=False)  # shown at the next (throttled) redraw

    def write(self, line: str) -> None:
        """Print a line of text without breaking the bar (in every mode)."""
        if self._bar is not None:
            self._bar.write(line)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()  # at its total a Jupyter bar turns green; stopped short of it, red
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(
    iterable: Iterable | None = None, total: int | None = None, desc: str | None = None, initial: int = 0
) -> Progress:
    """A progress bar for a long loop, to use instead of `tqdm` in the chapters.

        for step in minigpt.progress(range(max_steps), desc="training"): ...

        with minigpt.progress(total=max_steps, desc="training") as bar:
            ...; bar.update(1)

    A reader running a notebook sees a live bar that redraws at most twice a second. When the
    environment variable MINIGPT_PROGRESS is "plain" (chapters executed by
    scripts/execute_chapters.py or tested by pytest) it draws nothing and sends no widget messages;
    the loop then reports what matters in ordinary printed lines.
    """
    return Progress(iterable, total, desc, initial)


def setup_figures() -> None:
    """Show matplotlib figures as sharp PNG images, with nothing but the image in the cell's output.

    Each figure is drawn at twice its dots per inch ("retina"): a PNG of twice the pixels in each
    direction, with the width to display it at (its 1x width) in the output's metadata, which Jupyter
    and the built book honour, so a figure shows at the size of a plain PNG and stays sharp on a
    high-density screen. The metadata gives no height: the built book writes both into the image's
    style, and a fixed height would squash a figure that the page's column narrows. (Not SVG: nbval
    compares SVG text; it skips PNG data and output metadata.)

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
    shell.run_line_magic("config", "InlineBackend.figure_formats = ['retina']")
    png = shell.display_formatter.formatters["image/png"]
    retina = png.lookup_by_type(Figure)  # returns (PNG, {"width": w, "height": h}), or None

    def retina_width_only(figure):
        result = retina(figure)
        return None if result is None else (result[0], {"width": result[1]["width"]})

    png.for_type(Figure, retina_width_only)
    shell.display_formatter.formatters["text/plain"].for_type(
        Figure, lambda figure, printer, cycle: printer.text("")
    )
