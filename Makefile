# The two commands of the README, and the tools behind them. Each creates .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup book test execute clean

setup: $(VENV)/.installed

# CPU PyTorch 2.13.0 goes in first, so the range in requirements.txt installs nothing bigger.
$(VENV)/.installed: requirements.txt code/pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# The HTML book, from the committed (executed) chapters, with warnings as errors.
book: setup
	$(VENV)/bin/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo "Open _build/html/index.html"

# Unit tests and every chapter re-executed by nbval (options in pytest.ini).
test: setup
	$(PY) -m pytest

# Re-execute chapters in place, each in a fresh kernel (all of them, or CHAPTERS="chapters/01_bigram.ipynb").
execute: setup
	$(PY) scripts/execute_chapters.py $(CHAPTERS)

clean:
	rm -rf _build
