"""docs/app.png: ``imposter app`` on the bundled toy model, one toy-world example generated, in Chromium.

    python benchmarks/app_screenshot.py            # writes docs/app.png (needs /usr/bin/chromium)

Starts the app on a free port, clicks the example row whose driving caption is ``--example``, generates
``--seeds`` with the page's defaults (the fine-tune included), and saves the whole page at 1280 px wide.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright import sync_api

DOCS = Path(__file__).resolve().parent.parent / "docs"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise SystemExit("imposter app exited before answering")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"imposter app did not answer within {timeout_s:.0f} s") from None
            time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", default="a duck squatting", help="driving caption of the example row")
    parser.add_argument("--seeds", default="0 1 2 3")
    parser.add_argument("--out", type=Path, default=DOCS / "app.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryDirectory() as work:
        command = [sys.executable, "-m", "imposter", "app", "--model", "toy", "--device", "cpu"]
        process = subprocess.Popen(
            command + ["--port", str(port), "--out", work],
            env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")},
        )
        try:
            wait_for(url, process, 180)
            with sync_api.sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(30_000)
                page.goto(url)
                page.get_by_text(args.example, exact=True).first.click()
                sync_api.expect(page.get_by_label("Driving caption")).to_have_value(args.example)
                page.get_by_text("Advanced").click()
                page.get_by_label("Seeds", exact=True).fill(args.seeds)
                page.get_by_text("Advanced").click()  # closed again, as a first visit shows it
                page.get_by_role("button", name="Generate").click()
                count = len(args.seeds.split())
                sync_api.expect(page.locator("#results img")).to_have_count(count, timeout=900_000)
                sync_api.expect(page.locator("#status")).to_contain_text("Generated in")
                time.sleep(2)  # the grid and downloads render after the results
                page.screenshot(path=str(args.out), full_page=True)
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
