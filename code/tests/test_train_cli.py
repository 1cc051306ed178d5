"""`minigpt train --out DIR` survives Ctrl-C and a hard kill: real processes, real signals.

Each interrupted run is resumed from the command line with --resume and must end exactly where an
uninterrupted run ends: the same evaluation history and bit-for-bit the same weights.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from minigpt.checkpoint import checkpoint_model, latest_checkpoint

MAX_STEPS = 400
ARGS = [
    *("--data", "shakespeare", "--tokenizer", "char", "--n-layer", "1", "--n-head", "2", "--n-embd", "16"),
    *("--block-size", "16", "--batch-size", "4", "--dropout", "0.1", "--eval-windows", "8"),
    *("--eval-interval", "25", "--checkpoint-interval", "10", "--max-steps", str(MAX_STEPS)),
]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same arithmetic in every run


def command(out, *extra):
    history = out.parent / f"{out.name}.json"
    return [
        sys.executable,
        "-m",
        "minigpt",
        "train",
        *ARGS,
        "--out",
        str(out),
        "--history-json",
        str(history),
        *extra,
    ]


def latest_step(out) -> int:
    pointer = out / "checkpoints" / "latest"
    return int(pointer.read_text().removeprefix("step_")) if pointer.is_file() else -1


def start_and_wait_for_checkpoint(out, at_least: int) -> subprocess.Popen:
    """Start a run and return once it has saved a checkpoint at step `at_least` or later."""
    process = subprocess.Popen(
        command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    deadline = time.monotonic() + 300
    while latest_step(out) < at_least:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(
                f"the run ended or stalled before its checkpoint at step {at_least}: {process.stderr.read()}"
            )
        time.sleep(0.005)
    return process


def resume_to_the_end(out, from_step: int) -> None:
    resumed = subprocess.run(command(out, "--resume"), capture_output=True, text=True, env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert f"from step {from_step}" in resumed.stdout


def assert_same_run(out, reference):
    """Same history (the training seconds aside) and bit-for-bit the same final weights."""
    without_time = [
        [{k: v for k, v in row.items() if k != "seconds"} for row in json.loads(p.read_text())]
        for p in (out.parent / f"{out.name}.json", reference.parent / f"{reference.name}.json")
    ]
    assert [row["step"] for row in without_time[0]] == list(range(0, MAX_STEPS + 1, 25))
    assert without_time[0] == without_time[1]
    assert latest_step(out) == latest_step(reference) == MAX_STEPS
    weights, expected = (checkpoint_model(latest_checkpoint(d / "checkpoints")).state_dict() for d in (out, reference))
    for name in expected:
        torch.testing.assert_close(weights[name], expected[name], rtol=0, atol=0)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same run, never interrupted."""
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    subprocess.run(command(out), check=True, capture_output=True, env=ENV)
    return out


def test_ctrl_c_saves_the_run_and_resume_continues_it_exactly(tmp_path, reference):
    out = tmp_path / "run"
    process = start_and_wait_for_checkpoint(out, at_least=10)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 128 + signal.SIGINT, stderr
    stopped = re.search(r"stopped by SIGINT at step (\d+): saved in (\S+); continue with --resume", stdout)
    assert stopped, stdout
    step = int(stopped[1])
    assert 10 <= step < MAX_STEPS  # stopped in the middle of the run...
    assert latest_step(out) == step  # ...and saved where it stopped, not at the last interval
    resume_to_the_end(out, from_step=step)
    assert_same_run(out, reference)


def test_a_killed_run_resumes_from_its_last_periodic_checkpoint_exactly(tmp_path, reference):
    out = tmp_path / "run"
    process = start_and_wait_for_checkpoint(out, at_least=20)
    process.kill()  # SIGKILL: no handler runs, whatever the run was doing (a checkpoint write, perhaps)
    process.wait()
    step = latest_step(out)
    assert 20 <= step < MAX_STEPS and step % 10 == 0
    resume_to_the_end(out, from_step=step)
    assert_same_run(out, reference)


def test_resume_before_any_checkpoint_starts_the_run(tmp_path):
    fresh = subprocess.run(
        [*command(tmp_path / "run"), "--max-steps", "3", "--resume"],  # the last --max-steps counts
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert fresh.returncode == 0, fresh.stderr
    assert "no checkpoint in" in fresh.stdout and "from step 0" in fresh.stdout
    assert latest_step(tmp_path / "run") == 3


def test_out_alone_saves_at_every_evaluation(tmp_path):
    """Without --checkpoint-interval, a run with --out saves every --eval-interval steps."""
    args = [*command(tmp_path / "run"), "--max-steps", "60"]
    del args[args.index("--checkpoint-interval") : args.index("--checkpoint-interval") + 2]
    subprocess.run(args, check=True, capture_output=True, env=ENV)
    kept = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step_*"))
    assert kept == ["step_000050", "step_000060"]  # 25 and 50 at the interval, 60 at the end; last two kept


def test_a_new_run_into_a_non_empty_out_needs_resume_or_overwrite(tmp_path):
    out = tmp_path / "run"
    short = [*command(out), "--max-steps", "3"]
    subprocess.run(short, check=True, capture_output=True, env=ENV)
    (out / "notes.txt").write_text("mine")  # a file of the user's, which no option deletes

    refused = subprocess.run(short, capture_output=True, text=True, env=ENV)
    assert refused.returncode != 0
    assert f"--out {out} is not empty (it holds checkpoints, config.json, minigpt.json, model.safetensors and 1 more)" in refused.stderr
    assert "--resume" in refused.stderr and "--overwrite" in refused.stderr
    assert latest_step(out) == 3  # nothing was touched

    both = subprocess.run([*short, "--resume", "--overwrite"], capture_output=True, text=True, env=ENV)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr

    afresh = subprocess.run(
        [*command(out), "--max-steps", "2", "--overwrite"], capture_output=True, text=True, env=ENV
    )
    assert afresh.returncode == 0, afresh.stderr
    assert "--overwrite: deleted 5 file(s) of a previous run" in afresh.stdout  # latest, step, the model's 3
    assert "from step 0" in afresh.stdout
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "config.json", "minigpt.json", "model.safetensors", "notes.txt"]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["latest", "step_000002"]
