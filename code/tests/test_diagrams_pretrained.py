"""Chapter 6's diagrams stay legible and true: labels inside the picture, none too small, none on another,
and the safetensors picture states the sizes of the file it draws."""

import json
import struct

import matplotlib
import pytest
import torch
from safetensors.torch import save_file

matplotlib.use("Agg")

from diagram_checks import assert_labels_legible  # noqa: E402

from book_diagrams import pretrained  # noqa: E402
from minigpt.data import data_path  # noqa: E402
from minigpt.pretrained import STANDIN_FILES  # noqa: E402


def standin_weights():
    return data_path(STANDIN_FILES[1], verbose=False)


def _texts(fig):
    ax = fig.axes[0]  # a diagram's canvas: its axes are hidden, so its texts are the labels and the title
    return [t for t in [*ax.texts, ax.title] if t.get_text().strip()]


@pytest.mark.parametrize(
    "draw",
    [
        pretrained.conv1d_vs_linear,
        pretrained.checkpoint_mapping,
        pretrained.base_model_decision,
        lambda: pretrained.safetensors_layout(standin_weights()),
    ],
    ids=["conv1d_vs_linear", "checkpoint_mapping", "base_model_decision", "safetensors_layout"],
)
def test_labels_fit_and_do_not_collide(draw):
    fig = draw()
    assert_labels_legible(fig)
    matplotlib.pyplot.close(fig)


def test_safetensors_layout_states_the_files_own_sizes(tmp_path):
    path = tmp_path / "model.safetensors"
    tensors = {"h.0.attn.c_attn.weight": torch.zeros(3, 9), "h.0.attn.c_attn.bias": torch.zeros(9)}
    save_file(tensors, str(path))
    with open(path, "rb") as f:  # read independently of the diagram's own reader
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    start, end = header["h.0.attn.c_attn.weight"]["data_offsets"]
    assert pretrained.read_safetensors_header(path) == (length, header)
    fig = pretrained.safetensors_layout(path)
    text = "\n".join(t.get_text() for t in _texts(fig))
    assert f"N = {length:,} bytes" in text
    assert f"{path.stat().st_size - 8 - length:,} bytes" in text  # the data part
    assert f"{8 + length:,}" in text and f"{path.stat().st_size:,}" in text  # the boundaries
    assert "2 tensors" in text and f"{start:,} to {end:,}" in text and "[3, 9]" in text
    matplotlib.pyplot.close(fig)


def test_mapping_marks_every_conv1d_weight_as_transposed():
    from minigpt.pretrained import is_conv1d, our_name

    for theirs, _, _, action in pretrained.MAPPING:
        name = our_name(theirs.split(",")[0])
        if name is None:
            assert action == "skip"
        elif name == "lm_head.weight":
            assert action == "check"
        else:
            assert action == ("transpose" if is_conv1d(name) else "copy"), theirs
