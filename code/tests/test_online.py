"""The online path, as a networked reader takes it, against a local server speaking the Hub's protocol.

scripts/local_hub.py serves GPT-2 124M's files (config.json and model.safetensors as transformers
writes them, random weights at the real shape) at the pinned revision's path, on 127.0.0.1. Each
check runs in a fresh Python process with HF_ENDPOINT pointing there, HF_HUB_OFFLINE unset and a
Hugging Face cache of its own, because huggingface_hub reads those settings once, at import. The
weights are declared random (MINIGPT_RANDOM_WEIGHTS=1), so claims about quality are skipped with a
printed line, which the tests look for; every mechanical check (logits equal transformers', cached
decoding equals uncached) is asserted.
"""

import hashlib
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from minigpt.pretrained import GPT2_SIZES, check_quality, from_pretrained

ROOT = Path(__file__).resolve().parents[2]
GPT2 = GPT2_SIZES["gpt2"]
RESOLVE = f"/{GPT2.repo_id}/resolve/{GPT2.revision}"


def _local_hub():
    spec = importlib.util.spec_from_file_location("local_hub", ROOT / "scripts" / "local_hub.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


local_hub = _local_hub()


def downloads(requests: list[str]) -> list[str]:
    """The requests for a model's files (huggingface_hub may also ask the endpoint for its own registries)."""
    return [request for request in requests if "/resolve/" in request]


class Hub:
    def __init__(self, endpoint: str, root: Path, log: list[str]):
        self.endpoint, self.root, self.log = endpoint, root, log


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """The local Hub, serving random GPT-2 124M at its pinned revision; `log` lists every request."""
    root = tmp_path_factory.mktemp("hub")
    local_hub.write_random_gpt2(root, ["gpt2"])
    log: list[str] = []
    with local_hub.serve(root, request_log=log) as endpoint:
        yield Hub(endpoint, root, log)


def run_online(code: str, endpoint: str, cache: Path, timeout: float = 120) -> str:
    """Run `code` in a fresh process taking the online path; its stdout (stderr shown if it fails)."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env |= {
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(cache),
        "HF_HUB_CACHE": str(cache / "hub"),
        "MINIGPT_RANDOM_WEIGHTS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "code"), env.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


FIND_GPT2 = """
    from minigpt.pretrained import find_base_model, hub_reachable
    print("reachable:", hub_reachable())
    print("folder:", find_base_model("gpt2").folder)
"""


@pytest.fixture(scope="module")
def first_download(hub, tmp_path_factory):
    """find_base_model("gpt2") with an empty cache: (its stdout, the requests it made, the cache)."""
    cache = tmp_path_factory.mktemp("hf-cache")
    before = len(hub.log)
    out = run_online(FIND_GPT2, hub.endpoint, cache)
    return out, hub.log[before:], cache


def test_the_first_call_checks_the_hub_then_downloads_both_files_at_the_pinned_revision(first_download, hub):
    out, requests, cache = first_download
    assert "reachable: (True, '')" in out
    assert f"Using OpenAI's GPT-2 gpt2 from the Hugging Face Hub\n({GPT2.repo_id} at revision {GPT2.revision[:7]})." in out
    assert "Its weights are declared random (MINIGPT_RANDOM_WEIGHTS=1)" in out
    assert "HEAD /" in requests
    for file in ("config.json", "model.safetensors"):
        assert f"GET {RESOLVE}/{file}" in requests, requests  # the pinned commit, in the URL
    folder = Path(out.split("folder: ")[1].split("\n")[0])
    assert folder == cache / "hub" / "models--openai-community--gpt2" / "snapshots" / GPT2.revision
    for file in ("config.json", "model.safetensors"):  # the very bytes served
        served = hub.root / GPT2.repo_id / GPT2.revision / file
        assert hashlib.sha256((folder / file).read_bytes()).digest() == hashlib.sha256(served.read_bytes()).digest()


def test_a_second_call_uses_the_cache_without_asking_the_hub(first_download, hub):
    _, _, cache = first_download
    before = len(hub.log)
    out = run_online("from minigpt.pretrained import find_base_model; find_base_model('gpt2')", hub.endpoint, cache)
    assert "Using OpenAI's GPT-2 gpt2 from the local Hugging Face cache\n(" in out
    assert downloads(hub.log[before:]) == []


def test_a_corrupt_download_is_refused_by_its_sha256(first_download, tmp_path):
    """The weights are checked against the sha256 the Hub declared (the blob's name in the cache)."""
    _, _, cache = first_download
    corrupt = tmp_path / "hub"
    snapshot = corrupt / "models--openai-community--gpt2" / "snapshots" / GPT2.revision
    blobs = snapshot.parents[1] / "blobs"
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    original = cache / "hub" / "models--openai-community--gpt2" / "snapshots" / GPT2.revision
    for file in ("config.json", "model.safetensors"):
        data = bytearray((original / file).read_bytes())
        name = (original / file).resolve().name  # the sha256 the Hub declared
        if file == "model.safetensors":
            data[-1] ^= 1  # one bit of the last weight flipped
        (blobs / name).write_bytes(data)
        (snapshot / file).symlink_to(os.path.relpath(blobs / name, snapshot))
    code = """
        from minigpt.pretrained import download_gpt2
        try:
            download_gpt2("gpt2", local_files_only=True)
        except ValueError as error:
            print(error)
        else:
            raise SystemExit("a corrupt file was accepted")
    """
    out = run_online(code, "http://127.0.0.1:9", tmp_path)
    assert "model.safetensors in the Hugging Face cache has sha256" in out and "a corrupt download" in out


def test_the_loaded_model_gives_transformers_logits(first_download, transformers):
    _, _, cache = first_download
    folder = cache / "hub" / "models--openai-community--gpt2" / "snapshots" / GPT2.revision
    ours = from_pretrained(folder)
    theirs = transformers.GPT2LMHeadModel.from_pretrained(folder).eval()
    tokens = torch.randint(50257, (2, 64), generator=torch.Generator().manual_seed(0))  # (B, T)
    with torch.no_grad():
        diff = (ours(tokens)[0] - theirs(tokens).logits).abs().max().item()
    print(f"GPT-2 124M's shape, random weights: largest |logit difference| {diff:.1e}")
    assert diff <= 1e-5


def test_a_hub_without_the_pinned_revision_makes_the_loader_fall_back_and_say_why(hub, tmp_path):
    other = tmp_path / "hub" / GPT2.repo_id / ("0" * 40)  # the repository, at another commit only
    other.mkdir(parents=True)
    (other / "config.json").write_text("{}")
    with local_hub.serve(tmp_path / "hub") as endpoint:
        out = run_online(
            "from minigpt.pretrained import load_base_model; assert load_base_model('gpt2').is_standin",
            endpoint,
            tmp_path / "cache",
        )
    assert f"The Hugging Face Hub has no commit {GPT2.revision}\nof {GPT2.repo_id}, which this course pins." in out
    assert "Using the course's stand-in instead" in out


def test_chapter6_online_choices_through_a_greedy_continuation(first_download, hub):
    """Chapter 6 online: GPT-2 124M from the Hub, its loss on the first windows, greedy text as transformers'."""
    _, _, cache = first_download
    code = """
        import torch, transformers
        import minigpt
        from minigpt.pretrained import check_quality, find_base_model
        from minigpt.train import evaluate_loss

        checkpoint = find_base_model("gpt2")
        assert not checkpoint.is_standin
        model = minigpt.from_pretrained(checkpoint.folder)
        assert model.config.block_size == 1024 and model.num_params() == 124_439_808
        enc = minigpt.gpt2_tokenizer()
        _, val_tokens = minigpt.train_val_split(torch.tensor(enc.encode_ordinary(minigpt.load_text(verbose=False))))
        val_loss = evaluate_loss(model, val_tokens[: 1024 + 1], 1024)  # one window of the chapter's eight on a CPU
        print(f"val loss {val_loss:.2f}")
        check_quality(checkpoint, "GPT-2's loss is below 5.0 per token", val_loss < 5.0)
        prompt = torch.tensor([enc.encode("JULIET:\\n")])
        ours = minigpt.generate(model, prompt, 8, temperature=0).tokens
        reference = transformers.GPT2LMHeadModel.from_pretrained(checkpoint.folder).eval()
        reference.generation_config.eos_token_id = None
        theirs = reference.generate(prompt, max_new_tokens=8, do_sample=False, pad_token_id=enc.eot_token,
                                    attention_mask=torch.ones_like(prompt))
        assert torch.equal(ours, theirs), (ours, theirs)
        print("greedy: the same 8 tokens as transformers")
    """
    out = run_online(code, hub.endpoint, cache)
    assert "quality check skipped (weights declared random): GPT-2's loss is below 5.0 per token" in out
    assert "greedy: the same 8 tokens as transformers" in out
    val_loss = float(out.split("val loss ")[1].split()[0])
    assert val_loss > 9.0  # random weights: near the uniform ln(50257) = 10.8, so the skip was due


def test_chapter7_online_choices_through_each_rule_the_cache_and_the_command_line(first_download, hub):
    """Chapter 7 online: GPT-2 124M, each decoding rule, stop tokens, stream, KV cache, the CLI with --model gpt2."""
    _, _, cache = first_download
    code = """
        import subprocess, sys
        import torch
        import minigpt
        from minigpt.pretrained import load_base_model

        base = load_base_model()
        assert not base.is_standin and base.model.config.n_layer == 12
        model, enc = base.model, minigpt.gpt2_tokenizer()
        start = torch.tensor([enc.encode("ROMEO:\\n")])
        for options in (dict(temperature=0), dict(temperature=0.7), dict(top_k=40), dict(top_p=0.9)):
            out = minigpt.generate(model, start, 5, generator=torch.Generator().manual_seed(0), **options)
            assert out.tokens.shape == (1, start.shape[1] + 5), options
        stops = [enc.eot_token, enc.encode("\\n")[0]]
        batch = minigpt.generate(model, start.repeat(3, 1), 5, top_p=0.9, stop_tokens=stops,
                                 generator=torch.Generator().manual_seed(1))
        assert batch.tokens.shape[0] == 3 and len(batch.rows()) == 3
        pieces = list(minigpt.stream(model, enc.encode("JULIET:\\n"), 5, top_p=0.9, stop_tokens=enc.eot_token,
                                     generator=torch.Generator().manual_seed(2)))
        assert 0 < len(pieces) <= 5

        tokens = torch.randint(50257, (1, 40), generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            full = model(tokens)[0]
            kv = model.make_kv_cache(batch_size=1)
            steps = [model(tokens[:, :8], cache=kv)[0]] + [model(tokens[:, t : t + 1], cache=kv)[0] for t in range(8, 40)]
        cached = torch.cat(steps, dim=1)
        gap = (cached - full).abs().max().item()
        assert gap < 1e-4 and torch.equal(cached.argmax(-1), full.argmax(-1)), gap
        print(f"cached == uncached at 124M: largest gap {gap:.1e}")

        command = [sys.executable, "-m", "minigpt", "generate", "--model", "gpt2", "--prompt", "JULIET:\\n",
                   "--max-new-tokens", "5", "--top-p", "0.9", "--seed", "3", "--device", "cpu"]
        finished = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert finished.returncode == 0, finished.stderr
        assert finished.stdout.startswith("JULIET:"), finished.stdout
        print("command line: ok")
    """
    before = len(hub.log)
    out = run_online(code, hub.endpoint, cache)
    assert "Using OpenAI's GPT-2 gpt2" in out and "cached == uncached at 124M" in out and "command line: ok" in out
    assert downloads(hub.log[before:]) == []  # the cached download serves the chapter and its command line


class Loaded:  # what check_quality reads of a BaseModel or BaseCheckpoint
    def __init__(self, is_standin: bool):
        self.is_standin, self.source = is_standin, "the stand-in" if is_standin else "openai-community/gpt2"


def test_check_quality_asserts_a_claim_unless_gpt2_weights_are_declared_random(monkeypatch, capsys):
    monkeypatch.delenv("MINIGPT_RANDOM_WEIGHTS", raising=False)
    check_quality(Loaded(False), "a claim that holds", True)
    with pytest.raises(AssertionError, match="quality check failed for openai-community/gpt2: GPT-2 is good"):
        check_quality(Loaded(False), "GPT-2 is good", False)
    monkeypatch.setenv("MINIGPT_RANDOM_WEIGHTS", "1")
    check_quality(Loaded(False), "GPT-2 is good", False)
    assert capsys.readouterr().out == "quality check skipped (weights declared random): GPT-2 is good\n"
    with pytest.raises(AssertionError, match="the stand-in"):  # the shipped stand-in is never random
        check_quality(Loaded(True), "the stand-in is good", False)
    monkeypatch.setenv("MINIGPT_RANDOM_WEIGHTS", "yes")
    with pytest.raises(ValueError, match="MINIGPT_RANDOM_WEIGHTS must be 1"):
        check_quality(Loaded(False), "GPT-2 is good", True)
