"""Every chapter and the CUDA-capable unit tests on a CUDA GPU under a T4's limits, with results in a folder.

    python scripts/gpu_check.py --out results/gpu-check                 # a machine with a CUDA GPU
    python scripts/gpu_check.py --device cpu --out /tmp/rehearsal       # rehearsal on a CPU: a subset
    python scripts/gpu_check.py --fetch-wheels                          # wheels for an offline GPU machine

Made for one run on a borrowed GPU machine with no network (Python 3.12, with PyTorch, transformers
and pytest but not the Jupyter packages): fetch the wheels here into .whl/ (--fetch-wheels, the
versions in WHEELS), carry that folder, and there run

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl && export PYTHONPATH=/tmp/site && PYTHONUNBUFFERED=1 python3 scripts/gpu_check.py --out DIR

Every process runs under a T4's limits (scripts/t4_limits.py: memory capped at 14.5 GiB, bf16
reported as unsupported so that the Trainer takes fp16 with a GradScaler, TF32 off, no
FlashAttention): each chapter's kernel through an IPython start-up file in a temporary IPYTHONDIR
that the kernels inherit, the unit tests through `pytest -p t4_limits`, the benchmark through
`python scripts/t4_limits.py`. The kernel's start-up also records its peak GPU memory
(`torch.cuda.max_memory_allocated`) after every cell and every two seconds, so a chapter that fails
or runs out of time still reports it.

The parts, most important first, each with a time limit inside one deadline (--deadline-s); the
results (gpu_check.json, gpu_check.md, the full log gpu_check.log, the executed Chapter 8) are
rewritten in --out after each, so a run stopped early keeps what it measured:

1. Chapter 8's GPU choice, online, alone on the GPU: the chapter's cells up to the end of its first
   complete fine-tuning, in a kernel, against scripts/local_hub.py serving GPT-2 checkpoints of
   random weights at the real shape and, as Alpaca's 52k, the shipped records plus a lengthened copy
   of each (`long_alpaca`), with the fine-tuning cut to --ch8-steps steps. Reports the peak memory
   against the chapter's estimate (`run.memory().peak`) and the cap, and the step time measured,
   scaled to a T4 by the ratio of the two GPUs' fp16 throughput (below).
2. Every chapter of _toc.yml under nbval, in order (their offline path, outputs compared with the
   committed ones): runtime, peak memory, passed/failed cells and the failing cells' messages. The
   chapters leave --reserve-s of the deadline to part 4.
3. The unit tests marked `cuda` (pytest.ini), on the GPU: started with part 2 and run beside it, in
   a process of their own, so that they take none of the chapters' time.
4. scripts/benchmark_generation.py on the GPU at GPT-2 124M's shape, alone: the KV cache against no
   cache and against transformers' `generate`, batch 1 and 8.

T4 and GPU throughput, from NVIDIA's datasheets: the T4 does 65 TFLOPS of fp16 matrix arithmetic
(its datasheet's "Mixed Precision (FP16/FP32)" figure); the H200 SXM 1,979 TFLOPS of "FP16 Tensor
Core" with structured sparsity, so about 989 dense (NVIDIA quotes the sparse figure, twice the dense
one). A T4's step is estimated as the measured step times 989 / 65 = 15.2; the script also measures
the GPU's own fp16 matrix-product rate and prints the ratio to 65 TFLOPS that it gives.

--device cpu rehearses every line but the CUDA ones on a small subset (Chapter 1 under nbval,
code/tests/test_model.py, Chapter 8 to its fine-tuning in its CPU run with a few steps, the
benchmark with few tokens): no memory cap, and peak memory reported as n/a.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from pathlib import Path

import nbformat
import psutil
import torch
from nbclient import NotebookClient
from nbclient.exceptions import CellControlSignal, DeadKernelError

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
sys.path.insert(0, str(SCRIPTS))
sys.path.insert(0, str(ROOT / "code"))
import t4_limits
from execute_chapters import toc_chapters
from local_hub import serve, write_random_gpt2
from minigpt.memory import gib as memory_gib

CHAPTER_8 = ROOT / "chapters" / "08_instruction_tuning.ipynb"
GPT2_MEDIUM = "gpt2-medium"  # the base model of Chapter 8's GPU run
T4_FP16_TFLOPS = 65.0  # NVIDIA T4 datasheet, "Mixed Precision (FP16/FP32)"
H200_FP16_TFLOPS = 989.0  # NVIDIA H200 datasheet: "FP16 Tensor Core" 1,979 TFLOPS with sparsity, halved
PROBE_TAG = "GPU_CHECK_PROBE "
STEP_CAP_TAG = "gpu_check: "
# Outside requests fail at once instead of waiting for a name lookup on a machine with no network:
# a proxy that refuses every connection, except for the local Hub.
NO_NETWORK = {
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "no_proxy": "127.0.0.1,localhost",
}
# The Jupyter and test packages a GPU machine with PyTorch, transformers and pytest may lack, and what
# they need, at the versions the course's tests use (each a py3 wheel, or one for CPython 3.12).
WHEELS = ["nbval==0.11.0", "ipykernel==7.4.0", "ipython==9.18.1", "ipython_pygments_lexers==1.1.1", "jupyter_client==8.10.0", "jupyter_core==5.9.1", "nbformat==5.11.1", "nbclient==0.11.0", "traitlets==5.16.1", "pyzmq==27.3.0", "tornado==6.6.1", "comm==0.2.3", "debugpy==1.8.22", "matplotlib-inline==0.2.2", "nest-asyncio2==1.7.4", "jedi==0.20.1", "parso==0.8.7", "prompt_toolkit==3.0.53", "wcwidth==0.9.4", "pexpect==4.9.0", "ptyprocess==0.7.0", "stack_data==0.6.3", "executing==2.3.0", "asttokens==3.0.2", "pure_eval==0.2.4", "fastjsonschema==2.22.3", "jsonschema==4.26.0", "jsonschema-specifications==2025.9.1", "referencing==0.37.0", "rpds-py==2026.9.1", "platformdirs==4.14.9"]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]


# --- the log and the results ------------------------------------------------------------------------


class Results:
    """The results so far, rewritten as JSON and Markdown after each part; a log of everything."""

    def __init__(self, out: Path, device: str):
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.log_file = open(out / "gpu_check.log", "a", encoding="utf-8")  # noqa: SIM115 (open all run)
        self.data: dict = {"device": device, "parts": {}}
        self.start = time.monotonic()

    def say(self, line: str = "") -> None:
        print(line, flush=True)
        self.log(line)

    def log(self, text: str) -> None:
        self.log_file.write(text if text.endswith("\n") else text + "\n")
        self.log_file.flush()

    def record(self, part: str, value) -> None:
        self.data["parts"][part] = value
        self.data["elapsed_s"] = round(time.monotonic() - self.start, 1)
        (self.out / "gpu_check.json").write_text(json.dumps(self.data, indent=1, default=str))
        (self.out / "gpu_check.md").write_text(markdown(self.data))


def gib(size: int | None) -> str:
    return "n/a" if size is None else memory_gib(size)


def markdown(data: dict) -> str:
    """The results as a short report: one section per part."""
    parts = data["parts"]
    lines = [f"# GPU check on {data['device']} ({data.get('elapsed_s', 0):.0f} s in all)", ""]
    if env := parts.get("environment"):
        lines += [f"- {key}: {value}" for key, value in env.items()] + [""]
    if ch8 := parts.get("chapter8_online"):
        lines += ["## Chapter 8's GPU choice, online (random GPT-2 weights)", ""]
        lines += [f"- {key}: {value}" for key, value in ch8.items() if key != "cells"] + [""]
    if chapters := parts.get("chapters"):
        columns = "chapter", "result", "cells passed / failed / skipped", "runtime", "peak allocated"
        columns += "peak reserved", "failing cells"
        lines += [
            "## Chapters under nbval",
            "",
            "| " + " | ".join(columns) + " |",
            "|---" * len(columns) + "|",
        ]
        for c in chapters:
            failing = "; ".join(f"{f['cell']}: {f['message'][:120]}" for f in c.get("failing", [])) or ""
            counts = f"{c.get('passed', 0)} / {c.get('failed', 0)} / {c.get('skipped', 0)}"
            lines.append(
                f"| {c['chapter']} | {c['result']} | {counts} | {c.get('seconds', 0):.0f} s | "
                f"{gib(c.get('max_memory_allocated'))} | {gib(c.get('max_memory_reserved'))} | "
                f"{failing.replace('|', '/')} |"
            )
        lines.append("")
    for part, title in (("unit_tests", "Unit tests marked cuda"), ("benchmark", "Generation benchmark")):
        if value := parts.get(part):
            lines += [f"## {title}", ""]
            lines += [f"- {key}: {item}" for key, item in value.items() if key not in ("rows", "output")]
            if "output" in value:
                lines += ["", "```", value["output"].rstrip(), "```"]
            lines.append("")
    if skipped := parts.get("not_run"):
        lines += ["## Not run", ""] + [f"- {line}" for line in skipped] + [""]
    return "\n".join(lines)


# --- processes: environment, time limits ------------------------------------------------------------


@contextmanager
def environment(**changes: str | None):
    """os.environ with `changes` (None removes a variable) inside the block, as it was after it."""
    saved = {key: os.environ.get(key) for key in changes}

    def put(settings: dict) -> None:
        for key, value in settings.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    put(changes)
    try:
        yield
    finally:
        put(saved)


class Process:
    """A command running from the repository's root, its output going to a file in `work`."""

    def __init__(self, name: str, command: list[str], env: dict, work: Path, results: Results):
        self.name, self.results = name, results
        self.output_file = work / f"{name}.out"
        results.log(f"$ {' '.join(command)}")
        self.start = time.monotonic()
        with open(self.output_file, "w") as output:
            self.popen = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)

    def finish(self, until: float) -> tuple[int | None, str, float]:
        """Wait until time.monotonic() reaches `until` at most; the exit status (None if it had to be
        stopped), the output (also logged) and the runtime. A stopped command's children go too: a
        Jupyter kernel runs in a session of its own, out of reach of a signal to its parent's group."""
        try:
            status = self.popen.wait(timeout=max(until - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            for child in psutil.Process(self.popen.pid).children(recursive=True):
                child.kill()
            self.popen.kill()
            self.popen.wait()
            status = None
        output = self.output_file.read_text(errors="replace")
        self.results.log(output)
        return status, output, time.monotonic() - self.start


def child_env(ipython_dir: Path, peak_file: Path, **extra: str) -> dict:
    """The environment of a check's processes: the package, the kernels' start-up, no network."""
    paths = [str(ROOT / "code"), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {
        **os.environ,
        **NO_NETWORK,
        "PYTHONPATH": os.pathsep.join(paths),
        "IPYTHONDIR": str(ipython_dir),
        t4_limits.PEAK_FILE_ENV: str(peak_file),
        **extra,
    }


def write_startup(folder: Path) -> Path:
    """An IPYTHONDIR whose start-up file puts every kernel under the T4's limits (scripts/t4_limits.py)."""
    startup = folder / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-t4-limits.py").write_text(
        textwrap.dedent(f"""\
            def _t4_limits():  # by scripts/gpu_check.py: a T4's limits in this kernel, its peak recorded
                import importlib.util
                import sys

                spec = importlib.util.spec_from_file_location("t4_limits", {str(SCRIPTS / "t4_limits.py")!r})
                module = importlib.util.module_from_spec(spec)
                sys.modules["t4_limits"] = module
                spec.loader.exec_module(module)
                module.start_kernel()


            _t4_limits()
            del _t4_limits
        """)
    )
    return folder / "ipython"


def read_peak(path: Path) -> dict:
    """What a kernel or pytest run recorded with t4_limits (peak memory, the limits), or {} if nothing."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


# --- 0. the machine ---------------------------------------------------------------------------------


def describe_machine(device: str) -> dict:
    info = {"python": sys.version.split()[0], "torch": torch.__version__}
    for name in ("transformers", "huggingface_hub", "nbval", "ipykernel", "nbclient", "numpy"):
        try:
            info[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            info[name] = "missing"
    info["cap"] = gib(t4_limits.cap_bytes()) if device == "cuda" else "n/a (no CUDA)"
    if device != "cuda":
        return info
    props = torch.cuda.get_device_properties(0)
    info |= {
        "gpu": props.name,
        "compute_capability": f"{props.major}.{props.minor}",
        "gpu_memory": gib(props.total_memory),
    }
    info["fp16_matmul_tflops_measured"] = round(fp16_matmul_tflops(), 1)
    ratio = H200_FP16_TFLOPS / T4_FP16_TFLOPS
    info["throughput_ratio_datasheets"] = f"{H200_FP16_TFLOPS:g} / {T4_FP16_TFLOPS:g} = {ratio:.1f}"
    measured = info["fp16_matmul_tflops_measured"] / T4_FP16_TFLOPS
    info["throughput_ratio_measured"] = f"{measured:.1f} (the rate measured here over the T4's 65)"
    return info


def fp16_matmul_tflops(n: int = 8192, repeats: int = 10) -> float:
    """This GPU's fp16 matrix-product rate: the mean of `repeats` products of n x n matrices, after 3."""
    a = torch.randn(n, n, device="cuda", dtype=torch.float16)
    b = torch.randn(n, n, device="cuda", dtype=torch.float16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    del a, b
    torch.cuda.empty_cache()
    return repeats * 2 * n**3 / seconds / 1e12


# --- 1. Chapter 8's GPU choice, online ---------------------------------------------------------------


def chapter8_cells(nb, steps: int) -> None:
    """Cut Chapter 8 after the cell that fine-tunes, cap the run's steps, and add the probe, in place.

    The cap goes right after the cell that sets `run`; the cut after the first cell that trains a run
    to its end (`.train()`). The probe prints, as one JSON line, the run, the chapter's estimate of its
    peak memory (`run.memory()`), the fine-tuning runs' steps and seconds (their histories) and the
    chapter's own step-time and memory measurements where it makes them, and the peak."""
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    chooses = [i for i in code if re.search(r"^run\s*=", nb.cells[i].source, re.MULTILINE)]
    trains = [i for i in code if ".train()" in nb.cells[i].source and chooses and i > chooses[0]]
    if not chooses or not trains:
        raise ValueError(
            f"{CHAPTER_8.name}: expected a code cell that sets `run = ...` and a later one that calls "
            f"`.train()`; found `run =` in cells {chooses} and `.train()` after it in cells {trains}"
        )
    cap = nbformat.v4.new_code_cell(
        textwrap.dedent(f"""\
            import dataclasses as _dc
            _gpu_check_steps = run.steps if _dc.is_dataclass(run) else run["steps"]
            if _dc.is_dataclass(run):
                run = _dc.replace(run, steps=min(run.steps, {steps}))
            else:
                run = {{**run, "steps": min(run["steps"], {steps})}}
            print("{STEP_CAP_TAG}fine-tuning cut from", _gpu_check_steps, "to", {steps}, "steps")
        """)
    )
    probe = nbformat.v4.new_code_cell(
        textwrap.dedent(f"""\
            import json as _json
            import torch as _torch
            _cuda, _g = _torch.cuda.is_available(), globals()
            _last = [history[-1] for history in histories.values()]  # each run's last evaluation
            print("{PROBE_TAG}" + _json.dumps(dict(
                run=_dc.asdict(run) if _dc.is_dataclass(run) else dict(run),
                chapter_steps=_gpu_check_steps,
                estimate_bytes=run.memory().peak if hasattr(run, "memory") else None,
                base_params=base_model.num_params(),
                base_shape=[base_model.config.n_layer, base_model.config.n_head, base_model.config.n_embd],
                runs=len(_last), steps=sum(row["step"] for row in _last),
                train_seconds=sum(row["seconds"] for row in _last),
                chapter_step_seconds=_g.get("step_s"), chapter_evaluation_seconds=_g.get("evaluation_s"),
                chapter_step_estimate_bytes=getattr(_g.get("estimate"), "peak", None),
                chapter_step_measured_bytes=_g.get("during_step"),
                max_memory_allocated=_torch.cuda.max_memory_allocated() if _cuda else None,
                max_memory_reserved=_torch.cuda.max_memory_reserved() if _cuda else None,
            )))
        """)
    )
    nb.cells = nb.cells[: chooses[0] + 1] + [cap] + nb.cells[chooses[0] + 1 : trains[0] + 1] + [probe]


def stream_text(nb) -> str:
    outputs = [output for cell in nb.cells for output in cell.get("outputs", [])]
    return "".join(output.get("text", "") for output in outputs if output.get("output_type") == "stream")


def long_alpaca(path: Path) -> Path:
    """Records in Alpaca's format for the local Hub to serve as Alpaca's 52k: the shipped records, and
    each again with an output lengthened past 1,500 characters (the next records' outputs appended).

    Real Alpaca has records longer than Chapter 8's 256 tokens, and over a run's 1,500 steps of 16
    records some batch holds one, so the run's peak comes from a batch at its full length; here half
    the records are that long, so the first steps already show that peak."""
    from minigpt.instruct import load_instruction_data

    shipped = load_instruction_data(verbose=False)
    lengthened = []
    for i, record in enumerate(shipped):
        output, j = record["output"], i
        while len(output) < 1500:
            j += 1
            output += " " + shipped[j % len(shipped)]["output"]
        lengthened.append({**record, "output": output})
    path.write_text(json.dumps(shipped + lengthened), encoding="utf-8")
    return path


def chapter8_online(args, results: Results, work: Path, ipython_dir: Path, limit_s: float) -> dict:
    """Part 1 (see the module's docstring)."""
    from minigpt.instruct import git_blob_sha1

    start = time.monotonic()
    results.say(f"writing random GPT-2 checkpoints ({', '.join(args.hub_sizes)}) into {args.hub_root} ...")
    write_random_gpt2(args.hub_root, args.hub_sizes)
    results.say(f"  done in {time.monotonic() - start:.0f} s")
    records = long_alpaca(work / "alpaca_data.json")
    nb = nbformat.read(CHAPTER_8, as_version=4)
    chapter8_cells(nb, args.ch8_steps)
    peak_file = work / "peak-ch8-online.json"
    record: dict = {"steps_cap": args.ch8_steps}
    with serve(args.hub_root, extra_files={"/alpaca_data.json": records}) as endpoint:
        alpaca = f"{endpoint}/alpaca_data.json#{git_blob_sha1(records.read_bytes())}"
        online = dict(HF_ENDPOINT=endpoint, HF_HOME=str(work / "hf-home"), MINIGPT_ALPACA_52K=alpaca)
        env = child_env(
            ipython_dir, peak_file, MINIGPT_PROGRESS="plain", MINIGPT_RANDOM_WEIGHTS="1", **online
        )
        changes = {key: value for key, value in env.items() if os.environ.get(key) != value}
        changes |= {"HF_HUB_OFFLINE": None, "HF_HUB_CACHE": None}  # online, with an empty cache
        with environment(**changes):  # the kernel inherits this environment
            record |= execute_with_limit(nb, limit_s, results)
    nbformat.write(nb, results.out / "08_online_executed.ipynb")
    text = stream_text(nb)
    results.log(text)
    record["online"] = "Using OpenAI's GPT-2" in text
    said = re.compile(r"GiB|GPU|Alpaca|Hub|stand-in|because|step|minutes|" + STEP_CAP_TAG)  # about its run
    lines = [line for line in text.splitlines() if said.search(line) and not line.startswith(PROBE_TAG)]
    record["chapter_lines"] = lines[:25]
    probe = [line for line in text.splitlines() if line.startswith(PROBE_TAG)]
    kernel = read_peak(peak_file)
    record["max_memory_allocated"] = kernel.get("max_memory_allocated")
    record["max_memory_reserved"] = kernel.get("max_memory_reserved")
    record["limits_in_kernel"] = kernel.get("t4_limits", "not recorded: the start-up file did not run")
    if probe:
        figures = json.loads(probe[-1][len(PROBE_TAG) :])
        for key in ("max_memory_allocated", "max_memory_reserved"):  # the highest of both records
            values = [v for v in (figures[key], record[key]) if v is not None]
            figures[key] = record[key] = max(values) if values else None
        record |= judge_chapter8(figures, args.device)
    for key in ("result", "error", "online", "summary", "step_seconds_measured", "t4_estimate"):
        if key in record:
            results.say(f"  {key}: {record[key]}")
    return record


def judge_chapter8(probe: dict, device: str) -> dict:
    """The probe's figures, and the issue's two claims: the peak within 25% of the estimate and under
    the cap; the step time measured, and scaled to a T4 by the datasheets' fp16 throughput."""
    judged = dict(probe)
    estimate, cap = probe["estimate_bytes"], t4_limits.cap_bytes()
    peak = probe["max_memory_allocated"]  # the highest the kernel's recorder and the probe saw
    step_s = probe["train_seconds"] / max(probe["steps"], 1)
    judged["step_seconds_measured"] = round(step_s, 4)
    if device == "cuda":
        ratio = H200_FP16_TFLOPS / T4_FP16_TFLOPS
        chapter_step_s = probe["chapter_step_seconds"] or step_s  # the chapter's own timing, if it makes one
        full = 2 * probe["chapter_steps"]  # two fine-tuning runs, evaluations not counted
        judged["t4_estimate"] = (
            f"a step {chapter_step_s * ratio:.2f} s (the {chapter_step_s:.3f} s measured here x {ratio:.1f}, "
            f"{H200_FP16_TFLOPS:g} / {T4_FP16_TFLOPS:g} TFLOPS of fp16): both runs' {full} steps about "
            f"{full * chapter_step_s * ratio / 60:.0f} minutes on a T4, evaluations not counted"
        )
    if peak is not None and estimate:
        judged["peak_over_estimate"] = round(peak / estimate, 3)
        judged["peak_within_25_percent"] = abs(peak / estimate - 1) <= 0.25
        judged["peak_under_cap"] = peak < cap
        judged["summary"] = f"peak {gib(peak)} against an estimate of {gib(estimate)} and a cap of {gib(cap)}"
    else:
        judged["summary"] = (
            f"peak {gib(peak)}, estimate {gib(estimate)}: not compared (no CUDA or no estimate)"
        )
    return judged


def execute_with_limit(nb, limit_s: float, results: Results) -> dict:
    """Execute `nb` in place in a fresh kernel for at most limit_s in all; how it went."""
    start = time.monotonic()

    def time_left(cell) -> int:  # each cell may run for what is left of the chapter's time
        return max(int(limit_s - (time.monotonic() - start)), 1)

    client = NotebookClient(
        nb,
        timeout_func=time_left,
        iopub_timeout=60,
        kernel_name="python3",
        record_timing=True,
        resources={"metadata": {"path": str(CHAPTER_8.parent)}},  # the chapters' folder, as in Jupyter
    )
    outcome = {"result": "passed"}
    try:
        client.execute()
    except (CellControlSignal, DeadKernelError, TimeoutError) as error:
        # a cell's error as "ValueError: ...", a time-out or a dead kernel by its message's first line
        said = f"{error.ename}: {error.evalue}" if hasattr(error, "ename") else first_line(str(error))
        outcome = {"result": "failed", "error": said}
    outcome["seconds"] = round(time.monotonic() - start, 1)
    results.say(f"  {outcome['result']} in {outcome['seconds']:.0f} s {outcome.get('error', '')}")
    return outcome


def text_lines(text: str) -> list[str]:
    """The non-blank lines of `text`, without terminal colours (a JUnit report writes ESC as "#x1B")."""
    plain = re.sub(r"(\x1b|#x1B)\[[0-9;]*m", "", text)
    return [line.strip() for line in plain.splitlines() if line.strip()]


def first_line(text: str) -> str:
    return next(iter(text_lines(text)), "")[:300]


def last_line(text: str) -> str:
    return (text_lines(text) or [""])[-1][:300]


def failure_summary(message: str) -> str:
    """A failed test's message in one line: for a notebook cell, nbval's reason ("Cell 3: Cell outputs
    differ") and the last lines of its diff or traceback; for a unit test, its first and last lines."""
    lines = text_lines(message)
    if lines and lines[0] == "Notebook cell execution failed":
        return " | ".join(lines[1:2] + lines[-4:])[:400]
    return " | ".join(dict.fromkeys(lines[:1] + lines[-1:]))[:400]


# --- 2. chapters under nbval; 3. unit tests ------------------------------------------------------------


def junit_counts(path: Path) -> dict:
    """Passed, failed and skipped tests of a JUnit XML report, and the failures' first lines."""
    try:
        cases = list(ET.parse(path).getroot().iter("testcase"))
    except (OSError, ET.ParseError):
        return {}
    failing = []
    skipped = 0
    for case in cases:
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        if problem is not None:
            message = problem.get("message") or problem.text or ""
            failing.append({"cell": case.get("name"), "message": failure_summary(message)})
        elif case.find("skipped") is not None:
            skipped += 1
    passed = len(cases) - len(failing) - skipped
    return {"passed": passed, "failed": len(failing), "skipped": skipped, "failing": failing}


def start_pytest(name: str, pytest_args: list[str], env: dict, work: Path, results: Results) -> Process:
    """pytest with `pytest_args`, started; its JUnit report goes to work/NAME.xml (see pytest_result).
    Verbose, so that a run stopped before it writes the report still shows each test's outcome."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-v",
        "-p",
        "no:cacheprovider",
        f"--junitxml={work / name}.xml",
    ]
    return Process(name, command + pytest_args, env, work, results)


def outcomes_shown(output: str) -> dict:
    """Passed, failed and skipped tests as pytest -v printed them (for a run stopped before its report)."""
    shown = re.findall(r"^(\S+::.+?) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b", output, re.MULTILINE)
    failed = [test.rsplit("::", 1)[1] for test, outcome in shown if outcome in ("FAILED", "ERROR")]
    failing = [{"cell": test, "message": "(stopped before its report)"} for test in failed]
    skipped = sum(outcome == "SKIPPED" for _, outcome in shown)
    return {
        "passed": len(shown) - len(failing) - skipped,
        "failed": len(failing),
        "skipped": skipped,
        "failing": failing,
    }


def pytest_result(process: Process, until: float, peak_file: Path, work: Path) -> dict:
    """Wait for a pytest run until `until`; its result, counts, failures, runtime and peak memory."""
    status, output, seconds = process.finish(until)
    counts = junit_counts(work / f"{process.name}.xml") or outcomes_shown(output)
    result = "timed out" if status is None else "passed" if status == 0 else "failed"
    if status not in (None, 0, 1):
        result = f"error (pytest exit status {status}): {last_line(output)}"
    peak = read_peak(peak_file)
    record = {"result": result, "seconds": round(seconds, 1), **counts}
    record |= {key: peak.get(key) for key in ("max_memory_allocated", "max_memory_reserved")}
    record["limits_in_process"] = peak.get("t4_limits", "not recorded: t4_limits did not run there")
    if status is None and peak.get("cells"):
        record["cells_finished"] = peak["cells"][-1][
            :2
        ]  # how many cells ended, and the last one's first line
    passed, failed = counts.get("passed", 0), counts.get("failed", 0)
    peak_text = gib(record["max_memory_allocated"])
    process.results.say(f"  {result} in {seconds:.0f} s: {passed} passed, {failed} failed; peak {peak_text}")
    for failure in counts.get("failing", []):
        process.results.say(f"    {failure['cell']}: {failure['message'][:200]}")
    return record


# --- 4. the generation benchmark --------------------------------------------------------------------


def benchmark(args, results: Results, env: dict, work: Path, limit_s: float) -> dict:
    """Part 4: scripts/benchmark_generation.py on the device, under the T4's limits; its table parsed."""
    command = [sys.executable, str(SCRIPTS / "t4_limits.py"), str(SCRIPTS / "benchmark_generation.py")]
    command += ["--device", args.device, *args.benchmark_args]
    status, output, seconds = Process("benchmark", command, env, work, results).finish(
        time.monotonic() + limit_s
    )
    rows = [
        {"batch": int(m[1]), "case": m[2].strip(), "seconds": float(m[3]), "tokens_per_s": float(m[4])}
        for m in re.finditer(r"^\s*(\d+)  (\S.*?)\s+([\d.]+)\s+([\d.]+)\s*$", output, re.MULTILINE)
    ]
    same = re.findall(r"same tokens in every case: (\w+); largest \|cached - uncached\| logit: (\S+)", output)
    table = [line for line in output.splitlines() if not line.startswith("T4 limits:")]
    record = {
        "result": "timed out" if status is None else "passed" if status == 0 and same else "failed",
        "seconds": round(seconds, 1),
        "same_tokens_by_batch": [s[0] for s in same],
        "largest_cached_vs_uncached_logit_by_batch": [s[1] for s in same],
        "rows": rows,
        "output": "\n".join(table[-40:]),
    }
    results.say(f"  {record['result']} in {seconds:.0f} s; same tokens: {record['same_tokens_by_batch']}")
    for row in rows:
        results.say(f"    batch {row['batch']}, {row['case']}: {row['tokens_per_s']:.1f} tokens/s")
    return record


# --- the run --------------------------------------------------------------------------------------------


def fetch_wheels(folder: Path) -> None:
    """Download WHEELS for CPython 3.12 on x86-64 Linux into `folder` (needs PyPI)."""
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(folder), *WHEELS]
    subprocess.run(command, check=True, timeout=600)
    wheels = sorted(folder.glob("*.whl"))
    print(f"{len(wheels)} wheels, {sum(w.stat().st_size for w in wheels) / 2**20:.1f} MiB in {folder}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--device", choices=("cuda", "cpu"), default="cuda", help="cuda, or cpu for a rehearsal on a subset"
    )
    parser.add_argument("--out", type=Path, help="folder for the results (created)")
    parser.add_argument("--deadline-s", type=float, default=480, help="stop starting parts after this (s)")
    parser.add_argument(
        "--reserve-s", type=float, default=60, help="seconds the chapters leave for the benchmark"
    )
    parser.add_argument("--cap-gib", type=float, help="memory cap in GiB (default: t4_limits' 14.5)")
    parser.add_argument("--chapters", nargs="*", type=Path, help="default: all (cuda), Chapter 1 (cpu)")
    parser.add_argument("--chapter-limit-s", type=float, default=150, help="per chapter under nbval")
    parser.add_argument("--ch8-steps", type=int, help="fine-tuning steps of part 1 (default 200; cpu: 5)")
    parser.add_argument("--ch8-limit-s", type=float, default=180)
    parser.add_argument(
        "--hub-sizes", nargs="+", default=[GPT2_MEDIUM, "gpt2"], help="GPT-2s the local Hub serves"
    )
    parser.add_argument("--hub-root", type=Path, default=Path(tempfile.gettempdir()) / "minigpt-local-hub")
    parser.add_argument("--unit-tests", nargs="*", help="default: code/tests; cpu: code/tests/test_model.py")
    parser.add_argument("--unit-limit-s", type=float, default=150)
    parser.add_argument("--benchmark-args", nargs="*", help="default: none; cpu: --new-tokens 8")
    parser.add_argument("--benchmark-limit-s", type=float, default=120)
    parts = ["ch8", "chapters", "unit", "benchmark"]
    parser.add_argument("--parts", nargs="+", default=parts, choices=parts, help="which parts (default: all)")
    parser.add_argument("--fetch-wheels", action="store_true", help="download WHEELS into .whl/ and stop")
    args = parser.parse_args(argv)
    cpu = args.device == "cpu"
    chosen = [chapter.resolve() for chapter in args.chapters or []]
    args.chapters = chosen or ([ROOT / "chapters/01_bigram.ipynb"] if cpu else toc_chapters())
    args.unit_tests = args.unit_tests or ["code/tests/test_model.py" if cpu else "code/tests"]
    args.benchmark_args = args.benchmark_args or (["--new-tokens", "8"] if cpu else [])
    args.ch8_steps = args.ch8_steps or (5 if cpu else 200)
    if not args.fetch_wheels and args.out is None:
        parser.error("--out is required")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.fetch_wheels:
        fetch_wheels(ROOT / ".whl")
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda, but PyTorch sees no CUDA GPU here (rehearse with --device cpu)")
    if args.cap_gib:
        os.environ[t4_limits.CAP_ENV] = str(int(args.cap_gib * 2**30))  # the children inherit it
    results = Results(args.out, args.device)
    deadline = time.monotonic() + args.deadline_s
    not_run: list[str] = []

    def time_left(reserve: float = 0) -> float:
        return deadline - reserve - time.monotonic()

    def part(name: str, limit_s: float, reserve: float, run) -> None:
        """Run one part inside the deadline; a crash is recorded and the next part runs."""
        limit = min(limit_s, time_left(reserve))
        if limit < 20:
            not_run.append(f"{name}: {time_left():.0f} s left before the deadline")
            results.say(f"{name}: not run, out of time")
            results.record("not_run", not_run)
            return
        results.say(f"== {name} (limit {limit:.0f} s)")
        try:
            run(limit)
        except Exception:  # noqa: BLE001 (a failed part is a result; the next part still runs)
            results.say(traceback.format_exc())
            results.record(name, {"result": "error", "error": last_line(traceback.format_exc())})

    results.say(f"gpu_check on {args.device}; deadline {args.deadline_s:.0f} s; results in {args.out}")
    results.record("environment", describe_machine(args.device))
    for key, value in results.data["parts"]["environment"].items():
        results.say(f"  {key}: {value}")

    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(tmp)
        ipython_dir = write_startup(work)
        if "ch8" in args.parts:

            def run_chapter8(limit):
                results.record("chapter8_online", chapter8_online(args, results, work, ipython_dir, limit))

            part("chapter8_online", args.ch8_limit_s, 0, run_chapter8)
        benchmark_reserve = args.reserve_s if "benchmark" in args.parts else 0
        if "unit" in args.parts:  # beside the chapters: other processes, on the same GPU
            unit_peak = work / "peak-unit.json"
            env = child_env(ipython_dir, unit_peak)
            env["PYTHONPATH"] += os.pathsep + str(SCRIPTS)  # for -p t4_limits
            unit_args = [*args.unit_tests, "-m", "cuda", "--device", args.device, "-p", "t4_limits"]
            results.say("== unit_tests, beside the chapters")
            unit = start_pytest("unit", unit_args, env, work, results)
        if "chapters" in args.parts:
            chapters: list[dict] = []
            for chapter in args.chapters:

                def run_chapter(limit, chapter=chapter):
                    peak_file = work / f"peak-{chapter.stem}.json"
                    nbval = [str(chapter.relative_to(ROOT)), f"--nbval-cell-timeout={int(limit)}"]
                    env = child_env(ipython_dir, peak_file)
                    process = start_pytest(chapter.stem, nbval, env, work, results)
                    record = pytest_result(process, time.monotonic() + limit, peak_file, work)
                    chapters.append({"chapter": chapter.stem, **record})
                    results.record("chapters", chapters)

                part(chapter.stem, args.chapter_limit_s, benchmark_reserve, run_chapter)
        if "unit" in args.parts:
            until = min(unit.start + args.unit_limit_s, deadline - benchmark_reserve)
            results.say(f"== unit_tests (waiting at most {max(until - time.monotonic(), 0):.0f} s more)")
            results.record("unit_tests", pytest_result(unit, until, unit_peak, work))
        if "benchmark" in args.parts:
            env = child_env(ipython_dir, work / "peak-benchmark.json")

            def run_benchmark(limit):
                results.record("benchmark", benchmark(args, results, env, work, limit))

            part("benchmark", args.benchmark_limit_s, 0, run_benchmark)
    results.record("not_run", not_run)
    results.say(f"done in {time.monotonic() - results.start:.0f} s; {args.out / 'gpu_check.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
