"""Chapter 5's diagrams draw what the package does: its schedule, and what its checkpoints hold."""

import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")

from book_diagrams import training  # noqa: E402
from minigpt import GPT, GPTConfig  # noqa: E402
from minigpt.train import TrainConfig, Trainer, lr_at  # noqa: E402


def test_training_step_draws_seven_parts_in_order_beside_the_package_schedule():
    fig = training.training_step(max_steps=50, warmup=5, peak=2e-3, floor=2e-4)
    ax = fig.axes[0]
    numbered = [t.get_text().split(".")[0] for t in ax.texts if t.get_text()[:1].isdigit()]
    assert numbered == [str(i) for i in range(1, 8)]
    steps, lrs = ax.child_axes[0].lines[0].get_data()  # the inset's curve
    config = TrainConfig(max_steps=50, lr=2e-3, min_lr=2e-4, warmup_steps=5)
    np.testing.assert_allclose(lrs, [lr_at(int(step), config) for step in steps])
    matplotlib.pyplot.close(fig)


def test_checkpoint_diagram_names_every_file_of_a_real_checkpoint(tmp_path):
    torch.manual_seed(0)
    tokens = torch.randint(0, 20, (200,))
    model = GPT(GPTConfig(block_size=8, vocab_size=20, n_layer=1, n_head=1, n_embd=8))
    config = TrainConfig(max_steps=1, batch_size=2, warmup_steps=1, eval_interval=1, eval_windows=2)
    trainer = Trainer(model, tokens[:150], tokens[150:], config, checkpoint_dir=tmp_path)
    trainer.train(progress=False)
    folder = trainer.save_checkpoint()
    fig = training.checkpoint_contents()
    drawn = " ".join(t.get_text() for t in fig.axes[0].texts)
    for name in ["latest", *(f.name for f in folder.iterdir())]:
        assert name in drawn, f"the diagram does not show {name}"
    matplotlib.pyplot.close(fig)
