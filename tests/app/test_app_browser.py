"""``imposter app`` in a real browser: Chromium (Debian's package) driven by playwright's Python package.

CI installs Chromium with apt-get (.ci/run); here the test skips only where it is absent.
"""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright import sync_api

CHROMIUM = Path("/usr/bin/chromium")
START_TIMEOUT_S = 120  # importing torch, diffusers and gradio on a busy 2-core machine
RUN_TIMEOUT_MS = 90_000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}: apt-get install chromium (CI does)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tiny_model, tmp_path):
    """``imposter app`` on the tiny pipeline, on a free localhost port; killed afterwards whatever happens."""
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "imposter", "app", "--model", str(tiny_model), "--device", "cpu"]
        + ["--port", str(port), "--out", str(tmp_path / "out")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"imposter app exited: {(tmp_path / 'server.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"imposter app did not answer within {START_TIMEOUT_S} s")
                time.sleep(0.5)
        yield url, tmp_path / "out"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
    assert f"imposter app: {url}" in (tmp_path / "server.log").read_text()  # it printed its address


def test_upload_type_generate_then_an_empty_caption_shows_the_error_until_the_next_run(server, pair_files):
    url, out = server
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.goto(url)
            page.locator("#source-image input[type=file]").set_input_files(pair_files["source"])
            page.locator("#driving-image input[type=file]").set_input_files(pair_files["driving"])
            page.get_by_label("Source caption").fill("a dog")
            page.get_by_label("Driving caption").fill("a cat jumping")
            sync_api.expect(page.get_by_label("Target caption")).to_have_value("a dog jumping")
            page.get_by_label("Method").first.click()  # the default (imposter) fine-tunes nothing: ImPoster's
            page.get_by_role("option", name="imposter-guided", exact=True).click()
            sync_api.expect(page.get_by_label("Method").first).to_have_value("imposter-guided")
            page.get_by_text("Advanced").click()
            for label, value in (
                ("Fine-tuning steps", "2"),
                ("Denoising steps", "3"),
                ("K", "1"),
                ("Seeds", "0 1"),
            ):
                page.get_by_label(label, exact=True).fill(value)
            page.get_by_role("button", name="Generate").click()

            results = page.locator("#results img")
            sync_api.expect(results).to_have_count(2, timeout=RUN_TIMEOUT_MS)
            sync_api.expect(page.locator("#status")).to_contain_text("Fine-tuned")
            assert len(list((out / "runs").glob("*/seed_*.png"))) == 2

            page.get_by_label("Source caption").fill("")
            page.get_by_role("button", name="Generate").click()
            refused = page.get_by_text(re.compile("Source caption is empty"))
            sync_api.expect(refused).to_be_visible()
            assert len(list((out / "runs").iterdir())) == 1  # nothing ran
            sync_api.expect(results).to_have_count(2)

            # the next run closes the refusal's toast at once (Gradio alone keeps it 10 s, over that run)
            page.get_by_label("Source caption").fill("a dog")
            page.get_by_role("button", name="Generate").click()
            sync_api.expect(refused).to_be_hidden(timeout=3_000)
            sync_api.expect(page.locator("#status")).to_contain_text("Reused", timeout=RUN_TIMEOUT_MS)
            sync_api.expect(refused).to_be_hidden()
        finally:
            browser.close()
