"""A real browser and a real ``podline dashboard`` process, for the dashboard's cluster tests.

The browser is Debian's Chromium, headless, driven by Selenium through Debian's chromedriver
(``/usr/bin/chromedriver``, named explicitly so Selenium Manager never runs and nothing is downloaded);
``tests/cluster/setup.sh api`` installs both. The dashboard runs as ``python -m podline dashboard`` with a
kubeconfig (the admin's, or a ServiceAccount token's to see exactly that RBAC), on a free loopback port.
"""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from tests.cluster import fixtures
from tests.e2e import operating

CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMEDRIVER = pathlib.Path("/usr/bin/chromedriver")
SCREENSHOTS = pathlib.Path(os.environ.get("PODLINE_SCREENSHOTS", "/tmp/podline-screenshots"))


def browser() -> Any:
    """A headless Chromium (1280×900) under Selenium; skipped (failed in CI) without Chromium."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        message = f"the dashboard's browser tests need {', '.join(missing)}: run `tests/cluster/setup.sh api`"
        if fixtures.in_ci():
            pytest.fail(message + " (CI=true: must not skip)", pytrace=False)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # as root (the test cluster's user); the page under test is our own
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--force-device-scale-factor=1",
        "--no-first-run",
        # nothing but the dashboard on loopback: no background services, and no name resolves but localhost
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--no-pings",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    service = Service(executable_path=str(CHROMEDRIVER))
    return webdriver.Chrome(service=service, options=options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DashboardProcess:
    """``podline dashboard`` as a user starts it, with the credentials of ``kubeconfig``."""

    def __init__(self, kubeconfig: pathlib.Path, log_dir: pathlib.Path, *args: str, name: str = "dashboard"):
        self.kubeconfig = kubeconfig
        self.args: Sequence[str] = args
        self.log_path = log_dir / f"{name}.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DashboardProcess:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "podline", "dashboard", "--port", str(self.port), *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=operating.ROOT,
                start_new_session=True,
            )
        operating.wait_for(self.ready, timeout=60, what=f"the dashboard to answer (log: {self.log_path})")
        return self

    def ready(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log()
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def until(
    driver: Any, condition: Callable[[Any], Any], *, timeout: float = 60, what: str = "the page"
) -> Any:
    """Wait for the page to show something (Selenium's wait, which re-reads the DOM; never a reload)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(
        driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    ).until(condition, message=f"timed out waiting for {what}")


def screenshot(driver: Any, name: str, *, max_height: int = 1300) -> pathlib.Path:
    """The whole page (up to ``max_height`` pixels) as ``$PODLINE_SCREENSHOTS/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    size = driver.get_window_size()
    chrome_height = size["height"] - int(driver.execute_script("return window.innerHeight;"))
    page = int(driver.execute_script("return document.documentElement.scrollHeight;"))
    driver.set_window_size(size["width"], min(max_height, page) + chrome_height)
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(size["width"], size["height"])
    return path


def states(driver: Any, selector: str) -> dict[str, str]:
    """step name → state, as elements matching ``selector`` (with data-step / data-state) show them."""
    return dict(
        driver.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map(e => [e.dataset.step, e.dataset.state]);",
            selector,
        )
    )
