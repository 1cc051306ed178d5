# The two commands of the README, and the tools behind them. Each creates .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
MATHJAX := _build/offline/_static/mathjax

.PHONY: setup book test test-unit execute clean

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

# Unit tests and every chapter re-executed by nbval (options in pytest.ini), on this machine's CPU as it is.
#   make test CPU=perturbed   the same tests with the CPU's arithmetic perturbed as another machine's would
#                             be (what CI runs): outputs that only this CPU reproduces fail here too.
# PyTorch's unvectorised kernels, MKL's generic code path and one thread each change float results in
# their last bits; scripts/perturbed_cpu/sitecustomize.py draws dropout masks as another CPU would.
# With one thread per kernel, two test processes share the cores (pytest-xdist; each notebook stays in
# one process, so its cells run in order in one kernel).
CPU ?= native
PERTURBED_ENV := ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE OMP_NUM_THREADS=1 \
	PYTHONPATH=$(CURDIR)/scripts/perturbed_cpu
ifeq ($(CPU),perturbed)
TEST_ENV := $(PERTURBED_ENV)
TEST_ARGS := -n 2 --dist loadfile
else ifneq ($(CPU),native)
$(error CPU must be native or perturbed, not $(CPU))
endif

test: setup
	$(TEST_ENV) $(PY) -m pytest $(TEST_ARGS)

# The fast tier, for work on the package: its unit tests only (a few minutes), no chapters.
test-unit: setup
	$(PY) -m pytest code/tests

# Re-execute chapters in place, each in a fresh kernel (all of them, or CHAPTERS="chapters/01_bigram.ipynb").
execute: setup
	$(PY) scripts/execute_chapters.py $(CHAPTERS)

clean:
	rm -rf _build
