import minigpt
import pytest
import torch


@pytest.fixture(scope="session")
def shakespeare() -> str:
    return minigpt.load_text(verbose=False)


@pytest.fixture(scope="session")
def char_data(shakespeare) -> tuple[minigpt.CharTokenizer, torch.Tensor]:
    tokenizer = minigpt.CharTokenizer.from_text(shakespeare)
    return tokenizer, torch.tensor(tokenizer.encode(shakespeare), dtype=torch.long)
