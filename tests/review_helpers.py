"""Helpers of the review tests: a tiny trained run, a `brats-ssl review` server in a subprocess,
headless Chromium through selenium, and reading pixels from a screenshot."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_RUN

TINY = TINY_RUN
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# The network is closed: without these Chromium waits on connections. SwiftShader gives WebGL2.
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--window-size=1300,900",
]


def train_tiny_ours(data: Path, run: Path) -> Path:
    from brats_ssl.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["train", str(data), "-o", str(run), "--method", "ours", *TINY])
    assert stop.value.code == 0
    return run


def ranked_pool(run: Path, round_name: str = "round_0") -> list[str]:
    from brats_ssl.ssl.labelling import read_ranking

    return [row["case"] for row in read_ranking(run / "pseudo" / round_name / "ranking.csv")]


class ReviewServer:
    """``brats-ssl review RUN --port 0 --no-browser`` in a subprocess; its URL from what it prints."""

    def __init__(self, run: Path):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "brats_ssl", "review", str(run), "--port", "0", "--no-browser"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        first_line = self.process.stdout.readline()
        if "http://" not in first_line:
            self.stop()
            raise RuntimeError(f"review server did not start: {first_line}{self.process.stdout.read()}")
        self.url = first_line[first_line.index("http://") :].split()[0].rstrip("/")

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=60) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def post(self, path: str, body: bytes) -> tuple[int, dict]:
        request = urllib.request.Request(
            self.url + path, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def chromium_or_skip():
    """A headless Chromium driven by selenium; skips (fails under BRATS_SSL_REQUIRE_BROWSER=1, as
    in CI) when Chromium or its driver is not installed."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        message = (
            f"no Chromium for the browser tests ({', '.join(missing)} missing): "
            "apt-get install chromium chromium-driver"
        )
        if os.environ.get("BRATS_SSL_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="review-chromium-")
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    driver.profile_dir = profile
    return driver


def close_chromium(driver) -> None:
    driver.quit()
    shutil.rmtree(driver.profile_dir, ignore_errors=True)


def wait_for(condition, timeout: float = 30.0, interval: float = 0.2):
    """Poll ``condition()`` until it returns something truthy; that value, or an AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {condition}")
        time.sleep(interval)


def wait_for_viewer(driver) -> None:
    """Until the case page's viewer says it has drawn its layers (or fails with its error)."""
    from selenium.webdriver.common.by import By

    def ready():
        status = driver.find_element(By.ID, "viewer-status")
        error = status.get_attribute("data-error")
        assert not error, f"viewer error: {error}"
        return status.get_attribute("data-ready") == "1"

    wait_for(ready, timeout=60)


def canvas_pixels(driver) -> np.ndarray:
    """The viewer canvas as it is on screen: (H, W, 3) uint8."""
    from PIL import Image
    from selenium.webdriver.common.by import By

    png = driver.find_element(By.ID, "viewer").screenshot_as_png
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def greenish(pixels: np.ndarray) -> int:
    """Pixels where green clearly dominates: the ED colour of the label maps (nothing else is green)."""
    r, g, b = (pixels[..., i].astype(int) for i in range(3))
    return int(((g > r + 40) & (g > b + 40)).sum())
