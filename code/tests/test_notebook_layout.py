"""Every chapter's code and text outputs fit the book's page; the Colab set-up cell is hidden there.

The built book (Jupyter Book 1.x, its default theme) shows a code cell or an output block in a 14 px
monospace font, 8.4 px a character, in a column that holds about 87 characters on a wide screen
(1440 px and up), 82 on a 1366 px laptop and 79 on a tablet (below 1200 px, when the side bars fold
away). A longer line does not wrap: its block scrolls sideways and the end of the line is out of
sight. So no code line and no text output line (printed streams, text/plain results) may be wider
than LIMIT columns. A wide character (CJK) takes two columns, as in a monospace font.

Markdown is not checked: prose wraps.
"""

import json
import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = [
    ROOT / f"{name}.ipynb" for name in re.findall(r"file:\s*(chapters/\S+)", (ROOT / "_toc.yml").read_text())
]
LIMIT = 80  # columns: fits the book's code column from a 1366 px screen up, and nearly so on a tablet

# Chapters still to be fixed, each with the reason: strict, so that a mark must go once its chapter passes.
PENDING_OUTPUTS: dict[str, str] = {}


def columns(line: str) -> int:
    """How many monospace columns `line` takes: two for a wide (CJK) character, one for others."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)


def text_outputs(cell: dict):
    """(kind, text) of each text output of a code cell: printed streams and text/plain results."""
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            yield output["name"], "".join(output["text"])
        elif "text/plain" in output.get("data", {}):
            yield "text/plain", "".join(output["data"]["text/plain"])


def too_wide(path: Path, kinds: str = "all") -> list[str]:
    """One line of report for each line of `path` wider than LIMIT: of its code cells'
    source (kinds="source"), of their text outputs (kinds="outputs") or both (kinds="all")."""
    found = []
    for index, cell in enumerate(json.loads(path.read_text())["cells"]):
        if cell["cell_type"] != "code":
            continue
        texts = [("source", "".join(cell["source"]))] if kinds in ("all", "source") else []
        texts += list(text_outputs(cell)) if kinds in ("all", "outputs") else []
        for kind, text in texts:
            for number, line in enumerate(text.splitlines(), start=1):
                if columns(line) > LIMIT:
                    found.append(
                        f"cell {index} {kind} line {number}: {columns(line)} columns: {line[:50]}..."
                    )
    return found


def chapters(pending: dict[str, str]):
    return [
        pytest.param(path, id=path.stem, marks=[pytest.mark.xfail(strict=True, reason=pending[path.stem])])
        if path.stem in pending
        else pytest.param(path, id=path.stem)
        for path in CHAPTERS
    ]


@pytest.mark.parametrize("chapter", chapters({}))
def test_code_lines_fit_the_page(chapter):
    found = too_wide(chapter, "source")
    assert not found, f"{chapter.name}: {len(found)} code lines wider than {LIMIT} columns:\n" + "\n".join(
        found
    )


@pytest.mark.parametrize("chapter", chapters(PENDING_OUTPUTS))
def test_output_lines_fit_the_page(chapter):
    found = too_wide(chapter, "outputs")
    assert not found, f"{chapter.name}: {len(found)} output lines wider than {LIMIT} columns:\n" + "\n".join(
        found
    )


def test_the_width_check_sees_a_long_line(tmp_path):
    cell = {
        "cell_type": "code",
        "source": ["x = 1\n", "y = " + "1 + " * 30 + "1"],
        "outputs": [
            {"output_type": "stream", "name": "stdout", "text": ["诗" * 41 + "\n"]},
            {"output_type": "execute_result", "data": {"text/plain": ["'" + "a" * 79 + "'"]}},
        ],
    }
    notebook = tmp_path / "chapter.ipynb"
    notebook.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": ["m" * 200]}, cell]}))
    found = too_wide(notebook)
    assert [line.split(":")[0] for line in found] == [
        "cell 1 source line 2",
        "cell 1 stdout line 1",
        "cell 1 text/plain line 1",
    ]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_colab_cell_input_is_hidden_in_the_book(chapter):
    first_code = next(c for c in json.loads(chapter.read_text())["cells"] if c["cell_type"] == "code")
    tags = first_code["metadata"].get("tags", [])
    assert {"hide-input", "remove-input"} & set(tags), "the Colab set-up cell should be tagged hide-input"
