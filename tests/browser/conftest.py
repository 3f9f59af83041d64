"""The browser harness: Playwright for Python driving Debian's Chromium against a real server.

- `browser` (session): headless Chromium from /usr/bin/chromium (`apt-get install chromium`;
  .ci/run installs it). Without it the browser tests skip with the reason — or fail when
  MEDALLIANCE_REQUIRE_BROWSER=1 (set by .ci/run).
- `demo_server` (module): `medalliance demo --serve --port <free>` as a real uvicorn process
  over a fresh data folder, waited on with a deadline; yields its URL and the demo logins it
  wrote (DATA_DIR/web-logins.json). Stopped with Ctrl-C (SIGINT) at the end of the module.
- `new_page(username)`: a page in its own browser context (own cookies), logged in through the
  login form; console errors (a CSP violation is one) are collected in `page_errors`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.networks import REPO, free_ports, wait_until

CHROMIUM = Path(os.environ.get("MEDALLIANCE_CHROMIUM", "/usr/bin/chromium"))


@dataclass(frozen=True)
class DemoServer:
    url: str
    logins: dict[str, str]
    data_dir: Path


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    reason = ""
    if not CHROMIUM.exists():
        reason = f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = reason or "browser tests need the playwright package (pip install -e '.[dev]')"
    if reason:
        if os.environ.get("MEDALLIANCE_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/login", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def demo_server(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    data_dir = tmp_path_factory.mktemp("browser") / "demo"
    (port,) = free_ports(1)
    log = (data_dir.parent / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "medalliance", "demo", "--data-dir", str(data_dir),
         "--serve", "--port", str(port)],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: process.poll() is not None or _up(url), "the demo web server answers", 240
        )
        if process.poll() is not None:
            raise AssertionError(
                f"the demo server exited: {(data_dir.parent / 'server.log').read_text()}"
            )
        logins = json.loads((data_dir / "web-logins.json").read_text(encoding="utf-8"))
        yield DemoServer(url, logins, data_dir)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def new_page(browser: Any, demo_server: DemoServer) -> Iterator[Callable[..., Any]]:
    """`new_page(username, language="zh-CN")`: a logged-in page in a fresh browser context."""
    contexts = []

    def make(username: str, language: str = "zh-CN") -> Any:
        context = browser.new_context(base_url=demo_server.url, locale=language)
        contexts.append(context)
        page = context.new_page()
        page.page_errors = []  # type: ignore[attr-defined]
        page.on("console", lambda m: m.type == "error" and page.page_errors.append(m.text))
        page.goto("/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", demo_server.logins[username])
        page.click("form[action='/login'] button[type=submit]")
        page.wait_for_load_state("networkidle")
        return page

    yield make
    for context in contexts:
        context.close()
