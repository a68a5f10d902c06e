"""Headless Chromium (Debian's ``chromium`` and ``chromium-driver``) driven by Selenium,
and the dashboard served from a subprocess, as a user runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.conditions import unavailable, wait_for
from tests.support.kafka import free_port

CHROMIUM = "/usr/bin/chromium"


def chromium_driver() -> object:
    """A headless Chromium with its console log kept (for the no-console-errors check)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver_path = shutil.which("chromedriver")
    if driver_path is None or not Path(CHROMIUM).exists():
        unavailable(
            "Debian's chromium and chromium-driver are not installed (.ci/run installs them)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the tests run as root on CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1300",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager would otherwise try to download one.
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)


@contextmanager
def dashboard_server(
    db_url: str, work_dir: Path, refresh_s: float = 1, bootstrap_servers: str = "off"
) -> Iterator[str]:
    """``python -m dashboard`` on a free port of 127.0.0.1; yields its URL once it answers."""
    port = free_port()
    log = work_dir / f"dashboard-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "dashboard", "--db-url", db_url, "--port", str(port),
             "--refresh", str(refresh_s), "--bootstrap-servers", bootstrap_servers],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the dashboard exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_for(answers, 60, "the dashboard to answer", interval_s=0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        dashboard_log = log.read_text()
        assert "Traceback" not in dashboard_log, dashboard_log[-3000:]
