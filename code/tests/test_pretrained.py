"""Loading GPT-2 checkpoints into our GPT and saving ours in their format, checked against transformers.

transformers is the reference implementation here (a test requirement), never a dependency of the package.
"""

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import minigpt
from minigpt import GPT, GPTConfig
from minigpt.data import DownloadError
from minigpt.pretrained import (
    GPT2_SIZES,
    STANDIN_FILES,
    download_gpt2,
    from_pretrained,
    gpt2_config,
    our_name,
    save_pretrained,
)

SMALL = dict(n_positions=64, vocab_size=300, n_layer=2, n_head=4, n_embd=32)
GPT2_124M = dict(n_positions=1024, vocab_size=50257, n_layer=12, n_head=12, n_embd=768)


def perturb_(model: torch.nn.Module, seed: int = 0) -> None:
    """Give every tensor a random value away from its initialisation: weights, biases and LayerNorm gains."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "ln" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * noise)  # LayerNorm gains around 1
            elif p.dim() == 1:
                p.copy_(0.02 * noise)  # biases, none of them zero
            else:
                p.copy_(0.05 * noise)  # weights and embeddings


def hf_model(transformers, seed: int = 0, **shape) -> "transformers.GPT2LMHeadModel":
    config = transformers.GPT2Config(**shape, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    torch.manual_seed(seed)
    model = transformers.GPT2LMHeadModel(config)
    perturb_(model, seed)
    return model.eval()


def max_logit_diff(ours: GPT, theirs, vocab_size: int, T: int = 32, seed: int = 1) -> float:
    idx = torch.randint(vocab_size, (3, T), generator=torch.Generator().manual_seed(seed))
    idx = idx.to(ours.lm_head.weight.device)
    with torch.no_grad():
        logits = ours(idx)[0]
        print(f"logits up to {logits.abs().max():.2f} in magnitude", end="; ")
        return (logits - theirs(idx).logits).abs().max().item()


def greedy(next_logits, prompt: torch.Tensor, steps: int) -> list[int]:
    """Greedy decoding with any function from ids (1, T) to the last position's logits (1, V)."""
    idx = prompt
    for _ in range(steps):
        idx = torch.cat([idx, next_logits(idx).argmax(-1, keepdim=True)], dim=1)
    return idx[0, prompt.shape[1] :].tolist()


@pytest.fixture(scope="module")
def small_hf_dir(tmp_path_factory, transformers):
    model = hf_model(transformers, **SMALL)
    folder = tmp_path_factory.mktemp("small_hf")
    model.save_pretrained(folder, safe_serialization=True)
    return model, folder


@pytest.mark.cuda
@pytest.mark.parametrize("shape", [SMALL, GPT2_124M], ids=["small", "124M"])
def test_transformers_checkpoint_gives_the_same_logits_and_greedy_text(shape, tmp_path, device, transformers):
    theirs = hf_model(transformers, **shape)
    theirs.save_pretrained(tmp_path, safe_serialization=True)
    assert not (tmp_path / "pytorch_model.bin").exists()
    ours = from_pretrained(tmp_path, device=device)
    theirs.to(device)
    assert ours.num_params() == theirs.num_parameters()
    diff = max_logit_diff(ours, theirs, shape["vocab_size"])
    print(f"max |logit difference| ({shape['n_layer']} layers x {shape['n_embd']}): {diff:.2e}")
    assert diff <= 1e-5

    prompt = torch.tensor([[1, 2, 3, 4, 5]], device=device)
    with torch.no_grad():
        ours_text = greedy(lambda idx: ours(idx)[0][:, -1], prompt, 30)
        theirs_text = theirs.generate(
            prompt, max_new_tokens=30, min_new_tokens=30, do_sample=False, pad_token_id=0
        )[0, 5:].tolist()
    assert ours_text == theirs_text
    assert len(set(ours_text)) > 1  # a continuation that varies, not one token repeated


def test_our_checkpoint_loads_in_transformers_with_the_same_logits(tmp_path, transformers):
    torch.manual_seed(0)
    ours = GPT(GPTConfig(block_size=64, vocab_size=300, n_layer=2, n_head=4, n_embd=32)).eval()
    perturb_(ours)
    save_pretrained(ours, tmp_path, tokenizer=minigpt.CharTokenizer(map(chr, range(32, 32 + 300))))  # 300 ids
    theirs = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    diff = max_logit_diff(ours, theirs, 300)
    print(f"round trip through transformers: max |logit difference| {diff:.2e}")
    assert diff <= 1e-5
    again = from_pretrained(tmp_path)
    for (name, a), (_, b) in zip(ours.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), name  # our save and our load are exact inverses


def test_hub_layout_variants_load_the_same(small_hf_dir, tmp_path):
    """Keys without `transformer.`, a stored lm_head.weight and the old attention-mask buffers all load."""
    theirs, folder = small_hf_dir
    tensors = load_file(folder / "model.safetensors")
    assert any(k.startswith("transformer.") for k in tensors)
    variant = {k.removeprefix("transformer."): v for k, v in tensors.items()}
    variant["lm_head.weight"] = variant["wte.weight"].clone()
    T = SMALL["n_positions"]
    for i in range(SMALL["n_layer"]):
        variant[f"h.{i}.attn.bias"] = torch.tril(torch.ones(1, 1, T, T))
        variant[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    save_file(variant, tmp_path / "model.safetensors", metadata={"format": "pt"})
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    assert max_logit_diff(from_pretrained(tmp_path), theirs, SMALL["vocab_size"]) <= 1e-5


def test_loaded_model_is_tied_in_eval_mode_and_converts_dtype(small_hf_dir):
    _, folder = small_hf_dir
    model = from_pretrained(folder)
    assert model.lm_head.weight is model.transformer.wte.weight
    assert not model.training and model.config.dropout == 0.0
    half = from_pretrained(folder, dtype=torch.bfloat16, dropout=0.1)
    assert all(p.dtype == torch.bfloat16 for p in half.parameters())
    assert half.lm_head.weight is half.transformer.wte.weight and half.config.dropout == 0.1
    for (name, a), (_, b) in zip(model.state_dict().items(), half.state_dict().items(), strict=True):
        assert torch.equal(a.to(torch.bfloat16), b), name


def test_saved_config_has_gpt2_fields_transformers_reads(tmp_path, transformers):
    model = GPT(GPTConfig(block_size=32, vocab_size=50257, n_layer=1, n_head=2, n_embd=16, dropout=0.1))
    save_pretrained(model, tmp_path)
    fields = json.loads((tmp_path / "config.json").read_text())
    assert fields == gpt2_config(model.config)
    config = transformers.GPT2Config.from_pretrained(tmp_path)
    assert (config.n_positions, config.n_layer, config.n_head, config.n_embd) == (32, 1, 2, 16)
    assert config.activation_function == "gelu_new" and config.eos_token_id == 50256
    assert config.resid_pdrop == 0.1
    assert sorted(load_file(tmp_path / "model.safetensors")) == sorted(
        name for name, _ in model.named_parameters()
    )


@pytest.mark.parametrize(
    "name, params",
    [
        ("gpt2", 124_439_808),
        ("gpt2-medium", 354_823_168),
        ("gpt2-large", 774_030_080),
        ("gpt2-xl", 1_557_611_200),
    ],
)
def test_the_four_sizes_have_gpt2s_parameter_counts(name, params):
    with torch.device("meta"):
        model = GPT(GPT2_SIZES[name].config())
    assert model.num_params() == params
    assert len(GPT2_SIZES[name].revision) == 40  # a pinned commit, not a branch


def test_mapping_names():
    assert our_name("h.3.attn.c_attn.weight") == "transformer.h.3.attn.c_attn.weight"
    assert our_name("transformer.h.3.attn.c_attn.bias") == "transformer.h.3.attn.c_attn.bias"
    assert our_name("h.3.attn.bias") is None and our_name("transformer.h.3.attn.masked_bias") is None
    assert our_name("lm_head.weight") == "lm_head.weight"


# ----------------------------------------------------------------------------------------------
# Bad input


def edited_copy(folder: Path, tmp_path: Path, edit) -> Path:
    tensors = load_file(folder / "model.safetensors")
    edit(tensors)
    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    return tmp_path


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="gpt2, gpt2-medium, gpt2-large, gpt2-xl"):
        from_pretrained("gpt3")
    with pytest.raises(ValueError, match="gpt2-xl"):
        minigpt.pretrained.load_base_model("gpt2-xxl")


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda t: t.pop("transformer.h.1.mlp.c_fc.bias"),
            r"missing tensor for transformer\.h\.1\.mlp\.c_fc\.bias",
        ),
        (
            lambda t: t.update({"transformer.h.0.ln_1.weight": torch.ones(33)}),
            r"'transformer\.h\.0\.ln_1\.weight' has shape \(33,\), expected \(32,\)",
        ),
        (
            lambda t: t.update({"transformer.h.0.attn.c_attn.weight": torch.zeros(96, 32)}),
            r"c_attn\.weight' has shape \(32, 96\), expected \(96, 32\)",  # not stored as Conv1D
        ),
        (
            lambda t: t.update({"transformer.h.2.ln_1.weight": torch.ones(32)}),
            r"unexpected tensor 'transformer\.h\.2",
        ),
        (
            lambda t: t.update({"h.0.ln_1.weight": torch.ones(32)}),
            r"h\.0\.ln_1\.weight' fills transformer\.h\.0\.ln_1\.weight a second time",
        ),
        (lambda t: t.update({"lm_head.weight": torch.zeros(300, 32)}), "untied head"),
    ],
    ids=["missing", "wrong-shape", "linear-layout", "unexpected", "twice", "untied-head"],
)
def test_bad_checkpoints_name_the_tensor(small_hf_dir, tmp_path, edit, message):
    folder = edited_copy(small_hf_dir[1], tmp_path, edit)
    with pytest.raises(ValueError, match=message):
        from_pretrained(folder)


def test_a_file_that_is_not_safetensors_is_refused(small_hf_dir, tmp_path):
    (tmp_path / "config.json").write_text((small_hf_dir[1] / "config.json").read_text())
    torch.save({"wte.weight": torch.zeros(3)}, tmp_path / "model.safetensors")  # a pickle under that name
    with pytest.raises(ValueError, match="is not a readable safetensors file"):
        from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="only safetensors are read"):
        from_pretrained(tmp_path)


def test_unsupported_config_options_are_refused(small_hf_dir, tmp_path):
    fields = json.loads((small_hf_dir[1] / "config.json").read_text())
    (tmp_path / "model.safetensors").symlink_to(small_hf_dir[1] / "model.safetensors")
    for key, value in [
        ("activation_function", "relu"),
        ("scale_attn_by_inverse_layer_idx", True),
        ("n_inner", 64),
    ]:
        (tmp_path / "config.json").write_text(json.dumps({**fields, key: value}))
        with pytest.raises(ValueError, match=f"config.json has {key}="):
            from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({k: v for k, v in fields.items() if k != "n_head"}))
    with pytest.raises(ValueError, match="lacks the GPT-2 field 'n_head'"):
        from_pretrained(tmp_path)


def test_saving_a_model_without_biases_is_refused(tmp_path):
    model = GPT(GPTConfig(block_size=8, vocab_size=10, n_layer=1, n_head=1, n_embd=8, bias=False))
    with pytest.raises(ValueError, match="bias=False"):
        save_pretrained(model, tmp_path)


# ----------------------------------------------------------------------------------------------
# The Hub code path, offline, against a cache laid out as huggingface_hub lays it out


def hub_cache_with(folder: Path, cache: Path, name: str = "gpt2") -> None:
    """Put `folder`'s files into `cache` as huggingface_hub stores a download of `name`'s pinned revision.

    models--{org}--{repo}/blobs/<hash> holds the bytes, snapshots/<commit>/<file> links to them and
    refs/main names the commit.
    """
    import hashlib

    size = GPT2_SIZES[name]
    repo = cache / ("models--" + size.repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / size.revision
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(size.revision)
    for file in ("config.json", "model.safetensors"):
        data = (folder / file).read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / file).symlink_to(os.path.relpath(blob, snapshot))


def run_offline(code: str, cache: Path, **env_vars: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), **env_vars}
    env = {k: v for k, v in env.items() if v}  # an empty value removes a variable
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=120
    )


def test_hub_download_path_reads_the_pinned_revision_from_the_cache(small_hf_dir, tmp_path):
    theirs, folder = small_hf_dir
    hub_cache_with(folder, tmp_path / "hub")
    expected = theirs.transformer.h[1].mlp.c_fc.weight.detach().t()  # Conv1D (in, out) -> (out, in)
    torch.save(expected, tmp_path / "expected.pt")
    result = run_offline(
        f"""
        import torch
        from minigpt.pretrained import download_gpt2, from_pretrained, load_base_model
        folder = download_gpt2("gpt2")
        print(folder.name)
        model = from_pretrained("gpt2")
        expected = torch.load({str(tmp_path / "expected.pt")!r}, weights_only=True)
        assert torch.equal(model.transformer.h[1].mlp.c_fc.weight, expected)
        base = load_base_model("gpt2")
        assert not base.is_standin and torch.equal(base.model.transformer.h[1].mlp.c_fc.weight, expected)
        """,
        tmp_path / "hub",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == GPT2_SIZES["gpt2"].revision
    assert "Using OpenAI's GPT-2 gpt2" in result.stdout and "local Hugging Face cache" in result.stdout


def test_offline_without_a_cached_copy_falls_back_to_the_standin(tmp_path):
    result = run_offline(
        """
        import time
        from minigpt.pretrained import load_base_model
        start = time.perf_counter()
        base = load_base_model("gpt2")
        assert base.is_standin and base.model.config.n_layer == 4, base
        print(f"fell back in {time.perf_counter() - start:.1f} s")
        """,
        tmp_path / "empty-hub",
    )
    assert result.returncode == 0, result.stderr
    assert "HF_HUB_OFFLINE is set" in result.stdout and "stand-in" in result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines()), result.stdout  # the book's page


def test_an_unreachable_hub_falls_back_to_the_standin(tmp_path):
    """Without HF_HUB_OFFLINE, against a Hub address where nothing listens (a closed port on this machine)."""
    result = run_offline(
        """
        from minigpt.pretrained import load_base_model
        assert load_base_model("gpt2").is_standin
        """,
        tmp_path / "empty-hub",
        HF_HUB_OFFLINE="",
        TRANSFORMERS_OFFLINE="",
        HF_ENDPOINT="http://127.0.0.1:9",
    )
    assert result.returncode == 0, result.stderr
    assert "The Hugging Face Hub is not reachable" in result.stdout and "HF_HUB_OFFLINE" not in result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines()), result.stdout  # the book's page


def test_standin_is_verified_by_sha256(tmp_path, monkeypatch):
    for file in STANDIN_FILES:
        (tmp_path / file.name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / file.name).write_bytes(minigpt.data_path(file, verbose=False).read_bytes()[:-1])
    monkeypatch.setenv("MINIGPT_DATA", str(tmp_path))
    with pytest.raises(ValueError, match="sha256"):
        minigpt.pretrained.standin_dir()


def test_a_failed_hub_download_names_the_file_and_waits_a_bounded_time(monkeypatch):
    import huggingface_hub

    waits = []

    def hf_hub_download(repo_id, filename, *, revision, local_files_only, etag_timeout):
        waits.append(etag_timeout)
        raise TimeoutError("The read operation timed out")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    gpt2 = GPT2_SIZES["gpt2"]
    expected = f"downloading config.json of {gpt2.repo_id} from .*revision {gpt2.revision}.* failed: The read"
    with pytest.raises(DownloadError, match=expected):
        download_gpt2("gpt2")
    assert waits and all(0 < wait < math.inf for wait in waits)
