# The two commands of the README, and the tools behind them. Each creates .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
MATHJAX := _build/offline/_static/mathjax

.PHONY: setup book test execute clean

setup: $(VENV)/.installed

# CPU PyTorch 2.13.0 goes in first, so the range in requirements.txt installs nothing bigger.
$(VENV)/.installed: requirements.txt code/pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# The HTML book, from the committed (executed) chapters, with warnings as errors. It reads offline:
# _config.yml takes MathJax from _build/offline/_static/mathjax, not from a CDN.
book: setup $(MATHJAX)
	$(VENV)/bin/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo "Open _build/html/index.html"

# MathJax 3.2.2 from the npm registry, checked against the hash in offline/package-lock.json by `npm ci`.
$(MATHJAX): offline/package.json offline/package-lock.json
	rm -rf _build/npm $@ && mkdir -p _build/npm $(@D)
	cp offline/package.json offline/package-lock.json _build/npm/
	npm ci --prefix _build/npm --no-audit --no-fund --ignore-scripts --loglevel=error
	cp -r _build/npm/node_modules/mathjax/es5 $@

# Unit tests and every chapter re-executed by nbval (options in pytest.ini).
test: setup
	$(PY) -m pytest

# Re-execute chapters in place, each in a fresh kernel (all of them, or CHAPTERS="chapters/01_bigram.ipynb").
execute: setup
	$(PY) scripts/execute_chapters.py $(CHAPTERS)

clean:
	rm -rf _build
