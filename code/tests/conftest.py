import pytest
import torch

import minigpt


def pytest_configure(config):
    device = config.getoption("device")
    if device == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError("--device cuda, but PyTorch sees no CUDA GPU on this machine")


def pytest_collection_modifyitems(config, items):
    for item in items:  # so that `-m cuda --device cuda` runs every test that takes the device
        if "device" in getattr(item, "fixturenames", ()) and item.get_closest_marker("cuda") is None:
            raise pytest.UsageError(f"{item.nodeid} takes the `device` fixture: mark it @pytest.mark.cuda")


@pytest.fixture(scope="session")
def device(request) -> torch.device:
    """Where the tests marked cuda run: the CPU, unless pytest runs with --device cuda (or mps)."""
    return torch.device(request.config.getoption("device"))


@pytest.fixture(scope="session")
def shakespeare() -> str:
    return minigpt.load_text(verbose=False)


@pytest.fixture(scope="session")
def char_data(shakespeare) -> tuple[minigpt.CharTokenizer, torch.Tensor]:
    tokenizer = minigpt.CharTokenizer.from_text(shakespeare)
    return tokenizer, torch.tensor(tokenizer.encode(shakespeare), dtype=torch.long)


@pytest.fixture(scope="session")
def transformers():
    """transformers, the reference implementation the GPT-2 tests compare with (a test requirement).

    A fixture, not a module-level import, so that only the tests that compare with it skip, and
    say why, where it is missing; the rest of their module still runs.
    """
    return pytest.importorskip(
        "transformers", reason="transformers, the reference, is not installed: pip install -r requirements.txt"
    )
