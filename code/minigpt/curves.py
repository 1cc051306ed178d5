"""Live training curves: a `Trainer` writes its losses, learning rate, gradient norm and speed to
TensorBoard as it trains, to watch in a browser while a long run goes on:

    minigpt train --data my.txt --out runs/mine --tensorboard runs/mine/tensorboard
    tensorboard --logdir runs              # then open http://localhost:6006

TensorBoard is an optional dependency (`pip install tensorboard`); only this module needs it.
"""

from __future__ import annotations

from pathlib import Path


class TensorBoardCurves:
    """Scalars for TensorBoard, one event file per run in `log_dir`.

    Per optimizer step: loss/batch (the step's training loss), lr, grad_norm (before clipping) and
    tokens_per_second (input tokens of every process, over the step's wall time). Per evaluation:
    loss/train and loss/val, on the Trainer's fixed evaluation windows.
    """

    def __init__(self, log_dir: str | Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:  # PyTorch's writer needs the tensorboard package
            raise ImportError(
                "logging training curves needs the tensorboard package, which is not installed: "
                "pip install tensorboard (or train without --tensorboard)"
            ) from error
        self.log_dir = Path(log_dir)
        self.writer = SummaryWriter(str(self.log_dir))

    def step(self, step: int, loss: float, grad_norm: float, lr: float, tokens_per_second: float) -> None:
        for name, value in (
            ("loss/batch", loss),
            ("lr", lr),
            ("grad_norm", grad_norm),
            ("tokens_per_second", tokens_per_second),
        ):
            self.writer.add_scalar(name, value, step)

    def evaluation(self, step: int, losses: dict[str, float]) -> None:
        for split, loss in losses.items():
            self.writer.add_scalar(f"loss/{split}", loss, step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
