"""Check that the built book (_build/html) reads offline.

    python scripts/check_offline_book.py            # after `make book`

1. Every page loads its scripts and stylesheets from the book itself (no http(s) address), MathJax
   included, and no page needs widget JavaScript (require.js, the widget manager).
2. Where Chromium is installed (Debian: apt-get install chromium), each chapter is opened headless
   through a server on this machine with every other address sent to a dead proxy, and every math
   expression on it must have been typeset by MathJax, none with a MathJax error.

Exits non-zero, naming the page and what is wrong, on the first problem.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

HTML = Path(__file__).resolve().parents[1] / "_build" / "html"
LOADED = re.compile(r'<(?:script[^>]*\bsrc|link[^>]*\bhref)="([^"]+)"[^>]*>')
WIDGET_JS = ("require.js", "require.min.js", "html-manager", "embed-amd")


def check_references(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    for tag in re.finditer(r"<(?:script|link)\b[^>]*>", html):
        if 'rel="stylesheet"' not in tag[0] and not tag[0].startswith("<script"):
            continue  # links that load nothing (canonical, icons, next/prev pages)
        address = LOADED.search(tag[0])
        if address and re.match(r"(https?:)?//", address[1]):
            sys.exit(f"{page.relative_to(HTML)} loads {address[1]} from the network")
        if address and any(name in address[1] for name in WIDGET_JS):
            sys.exit(f"{page.relative_to(HTML)} loads widget JavaScript: {address[1]}")
    if 'class="math' in html and "_static/mathjax/" not in html:
        sys.exit(f"{page.relative_to(HTML)} has math but does not load the book's own MathJax")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def check_math_in_browser(chromium: str, pages: list[Path]) -> None:
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(HTML))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for page in pages:
            expected = page.read_text(encoding="utf-8").count('class="math notranslate')
            with tempfile.TemporaryDirectory() as profile:
                dom = subprocess.run(
                    [
                        chromium,
                        *("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"),
                        *("--disable-component-update", "--disable-sync", "--no-first-run"),
                        f"--user-data-dir={profile}",
                        "--proxy-server=127.0.0.1:9",  # a dead proxy: nothing beyond this machine answers
                        "--virtual-time-budget=30000",
                        "--dump-dom",
                        f"http://127.0.0.1:{server.server_port}/{page.relative_to(HTML).as_posix()}",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=180,
                ).stdout
            typeset, errors = dom.count("<mjx-container"), dom.count("<mjx-merror")
            print(f"{page.relative_to(HTML)}: {typeset} of {expected} math expressions typeset offline")
            if typeset != expected or errors:
                sys.exit(
                    f"{page.relative_to(HTML)}: {typeset} of {expected} typeset, {errors} MathJax errors"
                )
    finally:
        server.shutdown()


def main() -> None:
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()  # no options: only --help
    pages = sorted(HTML.rglob("*.html"))
    if not pages:
        sys.exit(f"no book in {HTML}: run `make book` first")
    for page in pages:
        check_references(page)
    print(f"{len(pages)} pages load nothing from the network")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("Chromium is not installed: math rendering not checked in a browser")
        return
    check_math_in_browser(chromium, sorted((HTML / "chapters").glob("*.html")))


if __name__ == "__main__":
    main()
