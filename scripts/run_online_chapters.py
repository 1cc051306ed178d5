"""Run chapters top to bottom on the online path, against a local Hub serving random GPT-2 weights.

    python scripts/run_online_chapters.py chapters/06_gpt2.ipynb chapters/07_sampling.ipynb
    python scripts/run_online_chapters.py chapters/08_instruction_tuning.ipynb \
        --file /some/path/alpaca.json=data/my_alpaca.json --out /tmp/online-run

starts `scripts/local_hub.py` on 127.0.0.1 with GPT-2 checkpoints of random weights at the real shape
(`--sizes`, written once into `--hub-root` and reused), and executes each chapter in a fresh kernel
with nbclient, the way a networked reader runs it: HF_ENDPOINT pointing at that server,
HF_HUB_OFFLINE unset, an empty Hugging Face cache for each chapter (so every download happens), MINIGPT_PROGRESS=plain
and MINIGPT_RANDOM_WEIGHTS=1 (the chapters skip their quality claims, each with a printed line). The
executed copies go to `--out` (by default a temporary folder); the committed chapters, which hold the
offline path's outputs, are never touched. For each chapter it prints the runtime, the slowest
cells, the lines saying which model was used and which quality checks were skipped, and whether it
passed: it fails if a cell raises or if the chapter did not load GPT-2 from the local Hub.
The exit status is 1 if any chapter failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_hub import serve, write_random_gpt2

ROOT = Path(__file__).resolve().parents[1]
ONLINE_SIGN = "Using OpenAI's GPT-2"  # what find_base_model prints when it loaded GPT-2
REPORTED = (ONLINE_SIGN, "quality check skipped", "The Hugging Face Hub is not reachable")


def stream_lines(nb) -> list[str]:
    return [
        line
        for cell in nb.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
        for line in output.get("text", "").splitlines()
    ]


def cell_seconds(cell) -> float:
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    return (datetime.fromisoformat(end.rstrip("Z")) - datetime.fromisoformat(start.rstrip("Z"))).total_seconds()


def run_chapter(path: Path, out_dir: Path) -> bool:
    """Execute one chapter into out_dir; print its runtime and what it reported; whether it passed."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=1800,
        iopub_timeout=300,
        kernel_name="python3",
        record_timing=True,
        resources={"metadata": {"path": str(path.parent)}},  # the chapters' folder, as in Jupyter
    )
    start = time.perf_counter()
    error = ""
    try:
        client.execute()
    except CellExecutionError as failure:
        error = str(failure).strip().splitlines()[-1]
    elapsed = time.perf_counter() - start
    nbformat.write(nb, out_dir / path.name)
    lines = stream_lines(nb)
    online = any(ONLINE_SIGN in line for line in lines)
    passed = not error and online
    print(f"{path.name}: {'passed' if passed else 'FAILED'} in {elapsed:.0f} s (executed copy: {out_dir / path.name})")
    for line, next_line in zip(lines, lines[1:] + [""]):
        if line.startswith(REPORTED):  # with its next line: find_base_model's messages take two
            print(f"    {line} {next_line}")
    slowest = sorted(((cell_seconds(c), i) for i, c in enumerate(nb.cells) if c.cell_type == "code"), reverse=True)
    print("    slowest cells (index: seconds): " + ", ".join(f"{i}: {s:.0f}" for s, i in slowest[:5]))
    if error:
        print(f"    error: {error}")
    if not online:
        print(f"    the chapter never printed {ONLINE_SIGN!r}: it did not take the online path")
    return passed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="+", type=Path, help="notebooks to run, e.g. chapters/06_gpt2.ipynb")
    parser.add_argument("--sizes", nargs="+", default=["gpt2"], help="GPT-2 sizes the local Hub serves")
    parser.add_argument(
        "--hub-root",
        type=Path,
        default=Path(tempfile.gettempdir()) / "minigpt-local-hub",
        help="where the random checkpoints are written once and kept (default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, help="folder for the executed copies (default: a new temporary one)")
    parser.add_argument(
        "--file", action="append", default=[], metavar="URLPATH=FILE", help="also serve FILE at URLPATH"
    )
    args = parser.parse_args(argv)
    chapters = [c.resolve() for c in args.chapters]
    for chapter in chapters:
        if chapter.suffix != ".ipynb" or not chapter.is_file():
            parser.error(f"{chapter} is not a notebook")
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="online-chapters-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    extra = dict(spec.split("=", 1) for spec in args.file)

    write_random_gpt2(args.hub_root, args.sizes)
    results = []
    with serve(args.hub_root, extra_files=extra) as endpoint:
        print(f"local Hub at {endpoint} serving random {', '.join(args.sizes)}; each chapter in a fresh kernel")
        os.environ.pop("HF_HUB_OFFLINE", None)  # the kernels inherit this environment
        os.environ |= {"HF_ENDPOINT": endpoint, "MINIGPT_PROGRESS": "plain", "MINIGPT_RANDOM_WEIGHTS": "1"}
        for chapter in chapters:
            with tempfile.TemporaryDirectory() as hf_home:  # an empty cache: each chapter downloads, as in Colab
                os.environ |= {"HF_HOME": hf_home, "HF_HUB_CACHE": str(Path(hf_home) / "hub")}
                results.append(run_chapter(chapter, out_dir))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
