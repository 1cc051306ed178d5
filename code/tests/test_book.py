"""Checks that keep the book's chapters consistent with each other and with _config.yml."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = [
    ROOT / f"{name}.ipynb" for name in re.findall(r"file:\s*(chapters/\S+)", (ROOT / "_toc.yml").read_text())
]


def test_toc_lists_every_chapter():
    assert CHAPTERS and sorted(CHAPTERS) == sorted((ROOT / "chapters").glob("*.ipynb"))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_colab_cell_points_at_the_configured_repository(chapter):
    config_url = re.search(r"^\s*url:\s*(\S+)", (ROOT / "_config.yml").read_text(), re.M).group(1)
    first_code = next(c for c in json.loads(chapter.read_text())["cells"] if c["cell_type"] == "code")
    source = "".join(first_code["source"])
    assert "google.colab" in source, "the first code cell should be the Colab set-up cell"
    assert f'REPOSITORY = "{config_url}"' in source
