"""Every script in scripts/ answers --help with its description; every option of the package's
command lines has help text that states its default."""

import argparse
import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = sorted([*(Path(__file__).resolve().parents[2] / "scripts").glob("*.[ps][yh]")])  # .py, .sh


def description(script: Path) -> str:
    """The first sentence a script describes itself with: its docstring, or its header comment."""
    if script.suffix == ".py":
        text = ast.get_docstring(ast.parse(script.read_text()))
    else:
        header = [line for line in script.read_text().splitlines()[1:] if line.startswith("#")]
        text = "\n".join(line.lstrip("# ") for line in header)
    return " ".join(text.split()).split(": ")[0].split(". ")[0]


def run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def without_spaces(text: str) -> str:
    return "".join(text.split())  # argparse rewraps a description, even inside a hyphenated word


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_answers_help(script):
    interpreter = [sys.executable] if script.suffix == ".py" else ["bash"]
    answer = run([*interpreter, str(script), "--help"])
    assert answer.returncode == 0, answer.stderr
    assert without_spaces(description(script)) in without_spaces(answer.stdout)


@pytest.mark.parametrize("module", ["minigpt.train", "minigpt.generate", "minigpt.chat"])
def test_every_command_line_option_states_its_default(module):
    parser = importlib.import_module(module).build_parser()
    options = [action for action in parser._actions if not isinstance(action, argparse._HelpAction)]
    assert options
    for action in options:
        name = action.option_strings[0]
        assert action.help, f"{module} {name} has no help text"
        assert "(default: " in action.help or (action.required and action.help.endswith("; required")), (
            f"{module} {name}: its help does not state its default: {action.help!r}"
        )
    answer = run([sys.executable, "-m", module, "--help"])
    assert answer.returncode == 0 and "(default: " in answer.stdout, answer.stderr
