"""minigpt.progress: live, throttled bars for a reader; no widgets when chapters are executed or tested."""

from queue import Empty

import pytest
import torch

import minigpt
from minigpt import GPT, GPTConfig
from minigpt.notebook import PROGRESS_ENV
from minigpt.train import TrainConfig, Trainer


def small_trainer(max_steps=6, eval_interval=3):
    torch.manual_seed(0)
    data = torch.arange(3000) % 20
    model = GPT(GPTConfig(block_size=8, vocab_size=20, n_layer=1, n_head=2, n_embd=16))
    config = TrainConfig(max_steps=max_steps, batch_size=4, eval_interval=eval_interval, eval_windows=4)
    return Trainer(model, data, data[:500], config)


def test_plain_mode_passes_items_through_and_draws_nothing(monkeypatch, capsys):
    monkeypatch.setenv(PROGRESS_ENV, "plain")
    assert list(minigpt.progress(range(5), desc="loop")) == [0, 1, 2, 3, 4]
    with minigpt.progress(total=3) as bar:
        bar.update(3)
        bar.set_postfix(loss="1.0")
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_trainer_prints_one_line_per_evaluation_in_plain_mode(monkeypatch, capsys):
    monkeypatch.setenv(PROGRESS_ENV, "plain")
    history = small_trainer().train()
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["step 0", "step 3", "step 6"]
    assert lines[-1] == f"step 6: train {history[-1]['train_loss']:.3f}, val {history[-1]['val_loss']:.3f}"


def test_trainer_without_progress_is_silent(capsys):
    small_trainer().train(progress=False)
    assert capsys.readouterr() == ("", "")


def test_live_text_bar_in_a_terminal_ends_full_when_the_loop_breaks_on_its_last_item(monkeypatch, capsys):
    monkeypatch.setenv(PROGRESS_ENV, "")
    bar = minigpt.progress(range(11), desc="training")
    for step in bar:
        if step == 10:  # the last item: the loop is done, as in Chapter 1's training loop
            break
    assert bar.n == bar.total == 11
    err = capsys.readouterr().err
    assert "training: 100%" in err and "11/11" in err


def test_jupyter_bar_is_green_not_red_when_the_loop_breaks_on_its_last_item(monkeypatch):
    """tqdm's Jupyter bar turns red ("danger") when closed short of its total."""
    pytest.importorskip("ipywidgets", reason="ipywidgets, the package's dependency for notebook bars, is not installed")
    import tqdm.auto
    from tqdm.notebook import tqdm as notebook_tqdm

    monkeypatch.setenv(PROGRESS_ENV, "")
    monkeypatch.setattr(tqdm.auto, "tqdm", notebook_tqdm)
    styles = {}
    for name, stop in (("at its total", 10), ("short of it", 5)):
        bar = minigpt.progress(range(11))
        widget = bar._bar.container.children[1]  # the container holds (description, bar, numbers)
        for step in bar:
            if step == stop:
                break
        styles[name] = widget.bar_style
    assert styles == {"at its total": "success", "short of it": "danger"}


SETUP, FAST_LOOP, TRAINING = (
    """
import os, time
import minigpt, torch
from minigpt.train import TrainConfig, Trainer
os.environ["{env}"] = "{mode}"
""",
    """
start = time.perf_counter()
for i in minigpt.progress(range(400), desc="fast loop"):
    time.sleep(0.005)  # 400 steps in about 2 s: tqdm's default would redraw every 0.1 s
print(f"{time.perf_counter() - start:.3f}")
""",
    """
data = torch.arange(3000) % 20
model = minigpt.GPT(minigpt.GPTConfig(block_size=8, vocab_size=20, n_layer=1, n_head=2, n_embd=16))
config = TrainConfig(max_steps=6, batch_size=4, eval_interval=3, eval_windows=4)
history = Trainer(model, data, data[:500], config).train()
""",
)


def run_cell(kc, code: str) -> tuple[dict[str, int], str]:
    """Run `code` in the kernel; the number of messages of each type it published, and its text."""
    msg_id = kc.execute(code)
    counts, text = {}, ""
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=120)
        except Empty:
            pytest.fail("the kernel stopped publishing before the cell finished")
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        counts[kind] = counts.get(kind, 0) + 1
        if kind == "error":
            pytest.fail("\n".join(msg["content"]["traceback"]))
        if kind == "stream":
            text += msg["content"]["text"]
        if kind == "status" and msg["content"]["execution_state"] == "idle":
            return counts, text


@pytest.mark.parametrize("mode", ["plain", "live"])
def test_widget_messages_a_kernel_sends(mode):
    """What a Jupyter kernel publishes: plain mode sends no widget message at all (nbval and
    execute_chapters.py read these); a live bar is throttled to a few messages a second."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        run_cell(kc, SETUP.format(env=PROGRESS_ENV, mode="plain" if mode == "plain" else ""))
        loop, loop_text = run_cell(kc, FAST_LOOP)
        training, training_text = run_cell(kc, TRAINING)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert [line.split(":")[0] for line in training_text.splitlines()] == ["step 0", "step 3", "step 6"]
    widget_messages = sum(c.get(k, 0) for c in (loop, training) for k in ("comm_open", "comm_msg"))
    if mode == "plain":
        assert widget_messages == 0 and "display_data" not in loop | training
    else:  # a bar (about ten widgets), then three or four updates per redraw, redraws 0.5 s apart or more
        seconds = float(loop_text)
        assert loop["display_data"] == training["display_data"] == 1
        assert 0 < loop["comm_msg"] <= 4 * (seconds / 0.5 + 3), (loop, seconds)  # 0.1 s: 71 in 2.2 s
