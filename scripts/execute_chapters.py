"""Re-execute chapters in place, each in a fresh kernel, top to bottom (the committed outputs).

    python scripts/execute_chapters.py              # every chapter in _toc.yml
    python scripts/execute_chapters.py chapters/01_bigram.ipynb

The kernel runs with the chapters/ folder as its working directory, as in Jupyter and in nbval, and
records each cell's timing in the notebook's metadata (the convention check reads the total).
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def toc_chapters() -> list[Path]:
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    return [ROOT / f"{name}.ipynb" for name in re.findall(r"file:\s*(chapters/\S+)", toc)]


def execute(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=900,
        kernel_name="python3",
        record_timing=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    nbformat.write(nb, path)
    return elapsed


def main(argv: list[str]) -> None:
    paths = [Path(a).resolve() for a in argv] or toc_chapters()
    for path in paths:
        print(f"{path.relative_to(ROOT)}: executing...", flush=True)
        print(f"{path.relative_to(ROOT)}: done in {execute(path):.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
