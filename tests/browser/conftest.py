"""The browser harness: Playwright for Python driving Debian's Chromium against a real server.

- `browser` (module): headless Chromium from /usr/bin/chromium (`apt-get install chromium`;
  .ci/run installs it). Without it the browser tests skip with the reason — or fail when
  MEDALLIANCE_REQUIRE_BROWSER=1 (set by .ci/run).
- `demo_server` (module): `medalliance demo --serve --port <free>` as a real uvicorn process
  over a fresh data folder, waited on with a deadline; yields its URL and the demo logins it
  wrote (DATA_DIR/web-logins.json). Stopped with Ctrl-C (SIGINT) at the end of the module.
- `new_page(username)`: a page in its own browser context (own cookies), logged in through the
  login form; console errors (a CSP violation is one) are collected in `page_errors`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.server import DemoServer, log_in
from tests.browser.server import demo_server as serve_demo

CHROMIUM = Path(os.environ.get("MEDALLIANCE_CHROMIUM", "/usr/bin/chromium"))


# Module, not session: while Playwright's sync API lives it runs an event loop on the main
# thread, and every later `asyncio.run` of the session would fail ("a running event loop").
@pytest.fixture(scope="module")
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


@pytest.fixture(scope="module")
def demo_server(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with serve_demo(tmp_path_factory.mktemp("browser") / "demo") as server:
        yield server


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
        log_in(page, demo_server, username)
        return page

    yield make
    for context in contexts:
        context.close()
