"""Re-execute chapters in place, each in a fresh kernel, top to bottom (the committed outputs).

    python scripts/execute_chapters.py              # every chapter in _toc.yml
    python scripts/execute_chapters.py chapters/01_bigram.ipynb

The kernel runs with the chapters/ folder as its working directory, as in Jupyter and in nbval, and
records each cell's timing in the notebook's metadata (the convention check reads the total).
It runs with live progress bars off (MINIGPT_PROGRESS=plain), so the saved chapters hold plain
printed lines instead of widgets, which vanish offline, show "0%" in plain viewers and flood the test
runner with messages; a chapter that still displays a widget (a tqdm bar of its own) is an error.
It also sets HF_HUB_OFFLINE=1, as the tests do (conftest.py), so Chapters 6-8 are saved with the
offline path's outputs (the shipped stand-in), which the tests can reproduce on any machine.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

import nbformat
from minigpt.notebook import PROGRESS_ENV
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
WIDGET = "application/vnd.jupyter.widget-view+json"


def toc_chapters() -> list[Path]:
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    return [ROOT / f"{name}.ipynb" for name in re.findall(r"file:\s*(chapters/\S+)", toc)]


def execute(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("widgets", None)  # widget state left by an earlier run with live bars
    client = NotebookClient(
        nb,
        timeout=900,
        iopub_timeout=300,  # wait for a finished cell's last outputs even on a busy machine...
        raise_on_iopub_timeout=True,  # ...and never save a chapter with outputs missing
        kernel_name="python3",
        record_timing=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    nbformat.write(nb, path)
    widgets = [
        i
        for i, cell in enumerate(nb.cells)
        if any(WIDGET in output.get("data", {}) for output in cell.get("outputs", []))
    ]
    if widgets:
        raise SystemExit(
            f"{path.name}: cells {widgets} (0-based) display Jupyter widgets, most likely a tqdm bar: "
            "use minigpt.progress(...), which draws none when chapters are executed"
        )
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "chapters", nargs="*", type=Path, help="notebooks to execute (default: every chapter in _toc.yml)"
    )
    chapters = parser.parse_args(argv).chapters
    os.environ[PROGRESS_ENV] = "plain"  # the kernels inherit it
    os.environ["HF_HUB_OFFLINE"] = "1"  # the offline path, as under the tests (see the docstring)
    paths = [path.resolve() for path in chapters] or toc_chapters()
    for path in paths:
        print(f"{path.relative_to(ROOT)}: executing...", flush=True)
        print(f"{path.relative_to(ROOT)}: done in {execute(path):.1f} s", flush=True)


if __name__ == "__main__":
    main()
