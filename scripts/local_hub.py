"""A local stand-in for the Hugging Face Hub's download protocol, to run the online path without network.

    python scripts/local_hub.py --root /tmp/hub --sizes gpt2 [gpt2-medium ...] [--port N] \
        [--file /datasets/alpaca.json=/path/to/alpaca.json ...]

writes GPT-2 checkpoints with random weights at the real shape where ROOT lacks them, serves ROOT on
127.0.0.1 and prints `HF_ENDPOINT=http://127.0.0.1:PORT`; Ctrl-C stops it. With that variable set
(and HF_HUB_OFFLINE unset), `huggingface_hub.hf_hub_download` and so `minigpt.find_base_model` take
the path a networked reader takes: reachability check, metadata request at the pinned revision,
download into the cache, size check, loading. The weights are random: declare them so
(MINIGPT_RANDOM_WEIGHTS=1) and the chapters skip their claims about a trained model's quality.

From Python:

    write_random_gpt2(root, ["gpt2"])                 # ROOT/openai-community/gpt2/<pinned revision>/...
    with serve(root, extra_files={"/data/alpaca.json": path}, request_log=log) as endpoint:
        ...                                           # endpoint == "http://127.0.0.1:PORT"

The folder is laid out as ROOT/<repo_id>/<revision>/<filename>, and the server answers what
huggingface_hub 2.4 asks (file_download.get_hf_file_metadata and http_get):

    HEAD / ........................................ 200 (the reachability check)
    HEAD|GET /<repo_id>/resolve/<revision>/<file> .. 200 with X-Repo-Commit (the revision), ETag
        (sha256 for weights, as git-lfs stores them; git's blob sha1 for small files), X-Linked-Etag
        and X-Linked-Size for weights, Content-Length; GET honours `Range: bytes=N-` (resumption)
    an unknown repo, revision or file ........... 404 with the Hub's X-Error-Code (RepoNotFound,
        RevisionNotFound, EntryNotFound) and X-Error-Message, which huggingface_hub turns into its
        RepositoryNotFoundError, RevisionNotFoundError and RemoteEntryNotFoundError
    an extra file, at the URL path given ......... 200 with its bytes (e.g. a data set to download)
    anything else ................................ 404
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import os
import re
import shutil
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

# Files the Hub keeps in git-lfs: their ETag is the sha256 of the content, not git's blob hash
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".h5", ".msgpack", ".onnx")
RESOLVE = re.compile(r"^/(?P<repo>[\w.-]+/[\w.-]+)/resolve/(?P<revision>[\w.-]+)/(?P<file>[\w./-]+)$")
CHUNK = 1 << 20
REQUEST_TIMEOUT_S = 60  # a client that stops talking for this long is dropped


def write_random_gpt2(root: str | os.PathLike, names: Iterable[str], *, seed: int = 0) -> None:
    """Write each GPT-2 size in `names` with random weights at its real shape, where `root` lacks it.

    The files are what transformers writes (`GPT2LMHeadModel(GPT2Config(...)).save_pretrained`):
    config.json and model.safetensors (plus its generation_config.json), at
    ROOT/openai-community/<name>/<the revision pinned in minigpt.pretrained.GPT2_SIZES>/. Same
    `seed`, same weights. gpt2 takes about 0.5 GB of disk, gpt2-xl 6.2 GB.
    """
    import torch
    import transformers  # a test requirement: the reference that writes the Hub's format
    from minigpt.pretrained import CONFIG_FILE, GPT2_SIZES, WEIGHTS_FILE

    for name in names:
        if name not in GPT2_SIZES:
            raise ValueError(f"unknown GPT-2 size {name!r}: choose from {', '.join(GPT2_SIZES)}")
        size = GPT2_SIZES[name]
        folder = Path(root) / size.repo_id / size.revision
        if (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file():
            continue
        config = transformers.GPT2Config(
            n_layer=size.n_layer, n_head=size.n_head, n_embd=size.n_embd, n_positions=1024, vocab_size=50257
        )
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = transformers.GPT2LMHeadModel(config)
        partial = folder.with_name(folder.name + ".partial")  # never a half-written revision
        shutil.rmtree(partial, ignore_errors=True)
        model.save_pretrained(partial)
        partial.rename(folder)


def _file_etag(path: Path) -> str:
    """The ETag the Hub gives a file: sha256 of the content for git-lfs files, else git's blob sha1."""
    if path.name.endswith(LFS_SUFFIXES):
        digest = hashlib.sha256()
    else:
        digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _Hub(http.server.ThreadingHTTPServer):
    daemon_threads = True  # a hung client never keeps the process alive

    def __init__(self, root: Path, extra_files: dict[str, Path], request_log: list[str] | None, port: int):
        super().__init__(("127.0.0.1", port), _Handler)  # loopback only: nothing outside can ask
        self.root, self.extra_files, self.request_log = root, extra_files, request_log
        self._etags: dict[tuple, str] = {}
        self._lock = threading.Lock()

    def etag(self, path: Path) -> str:
        stat = path.stat()
        key = (path, stat.st_size, stat.st_mtime_ns)
        with self._lock:  # hashing 6 GB twice at once would help no one
            if key not in self._etags:
                self._etags[key] = _file_etag(path)
            return self._etags[key]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Hub
    timeout = REQUEST_TIMEOUT_S
    protocol_version = "HTTP/1.1"

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def log_message(self, format: str, *args) -> None:
        pass  # quiet: the request log below is the record

    def _answer(self, send_body: bool) -> None:
        if self.server.request_log is not None:
            self.server.request_log.append(f"{self.command} {self.path}")
        path = self.path.split("?", 1)[0]
        if path == "/":
            return self._send(200, {}, b"local Hugging Face Hub stand-in\n", send_body)
        if path in self.server.extra_files:
            return self._send_file(self.server.extra_files[path], {}, send_body)
        match = RESOLVE.match(path)
        if match is None:  # e.g. the client's other API calls, which downloads do not need
            return self._send(404, {"X-Error-Message": "Not Found"}, b"Not Found\n", send_body)
        repo = self.server.root / match["repo"]
        revision, filename = match["revision"], match["file"]
        if not repo.is_dir():
            return self._error(404, "RepoNotFound", "Repository not found", send_body)
        if not (repo / revision).is_dir():
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", send_body)
        file = repo / revision / filename
        if ".." in filename.split("/") or not file.is_file():
            headers = {"X-Repo-Commit": revision}  # the Hub names the commit it looked in
            return self._error(404, "EntryNotFound", "Entry not found", send_body, headers)
        etag = self.server.etag(file)
        headers = {"X-Repo-Commit": revision, "ETag": f'"{etag}"'}
        if filename.endswith(LFS_SUFFIXES):
            headers |= {"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(file.stat().st_size)}
        self._send_file(file, headers, send_body)

    def _error(self, status: int, code: str, message: str, send_body: bool, headers: dict | None = None) -> None:
        headers = {"X-Error-Code": code, "X-Error-Message": message, **(headers or {})}
        self._send(status, headers, f'{{"error": "{message}"}}'.encode(), send_body)

    def _send(self, status: int, headers: dict, body: bytes, send_body: bool) -> None:
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _send_file(self, file: Path, headers: dict, send_body: bool) -> None:
        size = file.stat().st_size
        start = 0
        ranged = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if ranged and int(ranged[1]) < size:
            start = int(ranged[1])
            headers = {**headers, "Content-Range": f"bytes {start}-{size - 1}/{size}"}
        self.send_response(206 if start else 200)
        for key, value in {**headers, "Content-Length": str(size - start)}.items():
            self.send_header(key, value)
        self.end_headers()
        if send_body:
            with file.open("rb") as f:
                f.seek(start)
                shutil.copyfileobj(f, self.wfile, CHUNK)


@contextmanager
def serve(
    root: str | os.PathLike,
    *,
    extra_files: dict[str, str | os.PathLike] | None = None,
    request_log: list[str] | None = None,
    port: int = 0,
) -> Iterator[str]:
    """Serve `root` (ROOT/<repo_id>/<revision>/<filename>) on 127.0.0.1; yields the endpoint URL.

    `extra_files` maps URL paths ("/data/alpaca.json") to local files served as they are.
    `request_log`, if given, receives "METHOD /path" for every request, in order of arrival.
    `port` 0 (the default) takes a free one. The server stops when the block exits.
    """
    extra = {url: Path(file) for url, file in (extra_files or {}).items()}
    for url, file in extra.items():
        if not url.startswith("/") or not file.is_file():
            raise ValueError(f"extra file {url!r} -> {file}: need a URL path starting with / and an existing file")
    hub = _Hub(Path(root), extra, request_log, port)
    thread = threading.Thread(target=hub.serve_forever, name="local-hub", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{hub.server_address[1]}"
    finally:
        hub.shutdown()
        hub.server_close()
        thread.join()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="folder laid out as ROOT/<repo_id>/<revision>/<file>")
    parser.add_argument("--sizes", nargs="*", default=["gpt2"], help="GPT-2 sizes to write with random weights")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument(
        "--file", action="append", default=[], metavar="URLPATH=FILE", help="also serve FILE at URLPATH"
    )
    args = parser.parse_args(argv)
    extra = dict(spec.split("=", 1) for spec in args.file)
    write_random_gpt2(args.root, args.sizes)
    with serve(args.root, extra_files=extra, port=args.port) as endpoint:
        print(f"HF_ENDPOINT={endpoint}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopped")


if __name__ == "__main__":
    main(sys.argv[1:])
