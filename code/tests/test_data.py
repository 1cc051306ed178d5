import hashlib
import urllib.error
import urllib.request

import pytest
import torch

import minigpt
from minigpt.data import DOWNLOAD_TIMEOUT_S, DataFile, DownloadError, data_path, fetch, verify_sha256


def test_shipped_files_match_their_sha256():
    for file in (minigpt.TINY_SHAKESPEARE, minigpt.GPT2_BPE_RANKS):
        path = data_path(file, verbose=False)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == file.sha256


def test_corrupt_file_is_rejected(tmp_path):
    path = tmp_path / "tinyshakespeare.txt"
    path.write_text("To be, or not to be", encoding="utf-8")
    with pytest.raises(ValueError, match="sha256"):
        verify_sha256(path, minigpt.TINY_SHAKESPEARE.sha256)


def test_a_corrupt_shipped_copy_is_never_used(tmp_path, monkeypatch):
    (tmp_path / "tinyshakespeare.txt").write_text("not Shakespeare", encoding="utf-8")
    monkeypatch.setenv("MINIGPT_DATA", str(tmp_path))
    with pytest.raises(ValueError, match="expected 86c4e6aa"):
        data_path(minigpt.TINY_SHAKESPEARE, verbose=False)


def test_missing_file_is_downloaded_to_the_cache_and_verified(tmp_path, monkeypatch):
    payload = b"a small file served from a local source\n"
    source = tmp_path / "source.txt"
    source.write_bytes(payload)
    file = DataFile("not-shipped.txt", hashlib.sha256(payload).hexdigest(), source.as_uri())
    monkeypatch.setenv("MINIGPT_CACHE", str(tmp_path / "cache"))
    path = data_path(file, verbose=False)
    assert path.parent == tmp_path / "cache" and path.read_bytes() == payload
    bad = DataFile("bad.txt", "0" * 64, source.as_uri())
    with pytest.raises(ValueError, match="sha256"):
        data_path(bad, verbose=False)
    assert not (tmp_path / "cache" / "bad.txt").exists()  # a download that fails its hash is not kept


def test_corpus_and_vocabulary(shakespeare, char_data):
    tokenizer, data = char_data
    assert len(shakespeare) == 1_115_394
    assert tokenizer.vocab_size == 65
    assert len(data) == len(shakespeare)


def test_split_sizes_and_order(char_data):
    _, data = char_data
    train, val = minigpt.train_val_split(data, 0.1)
    assert len(train) == int(0.9 * len(data)) == 1_003_854
    assert len(val) == len(data) - len(train) == 111_540
    assert torch.equal(torch.cat([train, val]), data)  # contiguous, nothing lost or shuffled


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_split_rejects_bad_fractions(fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        minigpt.train_val_split(torch.arange(100), fraction)


def test_batch_shapes_and_shift():
    data = torch.arange(1000)
    x, y = minigpt.get_batch(data, block_size=16, batch_size=8, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (8, 16)
    assert x.dtype == torch.long
    assert torch.equal(y, x + 1)  # on an arange, the next token is the token plus one
    assert int(y.max()) <= 999  # windows never run past the end


def test_batches_are_reproducible_with_a_seed():
    data = torch.arange(10_000)
    a = minigpt.get_batch(data, 8, 4, generator=torch.Generator().manual_seed(123))
    b = minigpt.get_batch(data, 8, 4, generator=torch.Generator().manual_seed(123))
    c = minigpt.get_batch(data, 8, 4, generator=torch.Generator().manual_seed(124))
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not torch.equal(a[0], c[0])


def test_set_seed_makes_global_randomness_repeat():
    minigpt.set_seed(7)
    first = torch.rand(5)
    minigpt.set_seed(7)
    assert torch.equal(first, torch.rand(5))


def test_batch_from_too_short_a_sequence_is_a_clear_error():
    with pytest.raises(ValueError, match="block_size=8"):
        minigpt.get_batch(torch.arange(8), block_size=8, batch_size=2)


def test_a_failed_download_says_what_it_fetched_from_where_and_why(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGPT_CACHE", str(tmp_path / "cache"))
    missing = (tmp_path / "nowhere.txt").as_uri()
    expected = f"downloading not-shipped.txt from {missing} failed: .*No such file"
    with pytest.raises(DownloadError, match=expected):
        data_path(DataFile("not-shipped.txt", "0" * 64, missing), verbose=False)


def test_downloads_have_a_timeout(monkeypatch):
    seen = {}

    def urlopen(url, timeout=None):
        seen["timeout"] = timeout
        raise urllib.error.URLError(TimeoutError("timed out"))

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    expected = "downloading the ranks from https://example.org/r failed: timed out$"
    with pytest.raises(DownloadError, match=expected):
        fetch("https://example.org/r", "the ranks")
    assert seen["timeout"] == DOWNLOAD_TIMEOUT_S
