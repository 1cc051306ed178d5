#!/usr/bin/env bash
# Checks that the lower bounds in requirements.txt and code/pyproject.toml are versions the course
# works with: a fresh virtual environment with every dependency at its floor
# (requirements-floor.txt), then, in it, the unit tests, Chapters 1 and 6 under nbval, and the book
# built with warnings as errors.
# Not part of CI: it downloads the floor versions (torch 2.13.0 comes from PyPI or the local wheel
# make setup uses; TORCH=2.4.1 brings PyPI's CUDA build, 0.8 GB, and 2.5 GB of nvidia-* wheels,
# which also run on a machine without a GPU) and took 9 to 14 minutes on 2 busy cores.
#
#   scripts/check_floors.sh                    # the versions of requirements-floor.txt
#   TORCH=2.4.1 scripts/check_floors.sh        # the same with another PyTorch
#   FLOORS_VENV=/some/dir scripts/check_floors.sh   # where the environment goes (made anew)
set -euo pipefail
if [[ ${1:-} == -h || ${1:-} == --help ]]; then  # the comment above, without its '#'
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 0
fi
cd "$(dirname "$0")/.."

VENV=${FLOORS_VENV:-${TMPDIR:-/tmp}/minigpt-floors-venv}
TORCH=${TORCH:-$(sed -n 's/^torch==//p' requirements-floor.txt)}
PY=$VENV/bin/python

python3 -m venv --clear "$VENV"
# PyTorch first and on its own, so that a TORCH given above replaces the floor's pin.
"$PY" -m pip install --quiet "torch==$TORCH"
grep -v '^torch==' requirements-floor.txt > "$VENV/floors-without-torch.txt"
"$PY" -m pip install --quiet -r "$VENV/floors-without-torch.txt"
"$PY" -m pip install --quiet --no-deps -e ./code
"$PY" -m pip check
"$PY" -m pip list --format=freeze > "$VENV/installed.txt"
echo "Installed (all of it in $VENV/installed.txt):"
# pip writes a name with - or _, whichever its metadata has
names=$(sed -n 's/==.*//p' requirements-floor.txt | sed 's/[-_]/[-_]/g' | paste -sd'|')
grep -iE "^($names)==" "$VENV/installed.txt"

# The unit tests and two chapters, with the options of pytest.ini: Chapter 1 (torch, numpy,
# matplotlib, the notebook machinery) and Chapter 6 (tiktoken, safetensors, huggingface_hub and
# transformers as well); in two processes, as `make test CPU=perturbed` runs them (pytest-xdist).
"$PY" -m pytest -p no:cacheprovider -n 2 --dist loadfile \
    code/tests chapters/01_bigram.ipynb chapters/06_gpt2.ipynb

# The book, as `make book` builds it (the same flags), into a folder of its own.
make _build/offline/_static/mathjax
BOOK=$(mktemp -d)
"$VENV/bin/jupyter-book" build . --path-output "$BOOK" --warningiserror --nitpick --keep-going
rm -rf "$BOOK"
echo "Every floor in requirements-floor.txt passed (torch $TORCH)."
