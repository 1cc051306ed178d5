"""Every script in scripts/ answers --help with its description; every option of the package's
command lines has help text that states its default."""

import argparse
import ast
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


def subcommand_parsers() -> dict[str, argparse.ArgumentParser]:
    from minigpt.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(commands.choices)


@pytest.mark.parametrize("command", ["train", "generate", "chat", "export"])
def test_every_command_line_option_states_its_default(command):
    parser = subcommand_parsers()[command]
    options = [action for action in parser._actions if not isinstance(action, argparse._HelpAction)]
    assert options
    for action in options:
        name = action.option_strings[0] if action.option_strings else action.dest
        assert action.help, f"minigpt {command} {name} has no help text"
        assert "(default: " in action.help or (action.required and action.help.endswith("; required")), (
            f"minigpt {command} {name}: its help does not state its default: {action.help!r}"
        )
    answer = run([sys.executable, "-m", "minigpt", command, "--help"])
    assert answer.returncode == 0 and "(default: " in answer.stdout, answer.stderr


@pytest.mark.parametrize("module", ["minigpt.train", "minigpt.generate", "minigpt.chat"])
def test_the_old_entry_points_name_the_new_command(module):
    """`python -m minigpt.train` (as the course once said) points to `minigpt train`."""
    answer = run([sys.executable, "-m", module, "--help"])
    command = module.split(".")[1]
    assert answer.returncode == 1 and "RuntimeWarning" not in answer.stderr
    assert f"python -m {module} is now `minigpt {command}` (or `python -m minigpt {command}`)" in answer.stderr


def test_library_modules_hold_no_argument_parsing():
    package = Path(__file__).resolve().parents[1] / "minigpt"
    parsing = [path.name for path in package.glob("*.py") if "argparse" in path.read_text() and path.name != "cli.py"]
    assert parsing == []
