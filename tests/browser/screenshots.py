"""Screenshots of each role's main pages in both languages, for the README (`make screenshots`).

Runs the demo and serves it (tests/browser/server.py), logs each role in with Debian's Chromium
and writes docs/screenshots/<role>-<page>-<lang>.png (1280×800, PNG). Made by this script, never
by hand, so they stay current. Chinese text needs a CJK font (Debian: fonts-noto-cjk).

    python -m tests.browser.screenshots [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from tests.browser.server import demo_server, log_in
from tests.networks import REPO

# role -> (demo login, [(page name, path)]): each role's main pages.
PAGES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "doctor": ("doctor.secondarya", [("home", "/hospital/"), ("outgoing", "/hospital/outgoing")]),
    "clerk": ("clerk.tertiarya", [("incoming", "/hospital/incoming")]),
    "reviewer": ("reviewer.districthc", [("queue", "/commission/queue")]),
    "auditor": ("auditor.cityhc", [("indicators", "/commission/indicators")]),
    "operator": ("operator.cityhc", [("blocks", "/operator/blocks")]),
}
LANGUAGES = {"zh": "zh_CN", "en": "en"}
VIEWPORT = {"width": 1280, "height": 800}


def _switch_language(page: Page, code: str) -> None:
    page.click(f"form[action='/language'] button[value='{code}']")
    page.wait_for_load_state("networkidle")


def take(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        demo_server(Path(tmp) / "demo") as server,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"]
        )
        login_page = browser.new_page(viewport=VIEWPORT)
        for short, code in LANGUAGES.items():
            login_page.goto(f"{server.url}/login")
            _switch_language(login_page, code)
            path = out / f"login-login-{short}.png"
            login_page.screenshot(path=str(path))
            written.append(path)
        for role, (username, pages) in PAGES.items():
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            log_in(page, server, username)
            for short, code in LANGUAGES.items():
                page.goto(server.url + pages[0][1])
                _switch_language(page, code)
                for name, url in pages:
                    page.goto(server.url + url)
                    page.wait_for_load_state("networkidle")
                    path = out / f"{role}-{name}-{short}.png"
                    page.screenshot(path=str(path))
                    written.append(path)
            context.close()
        browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    for path in take(parser.parse_args().out):
        print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)


if __name__ == "__main__":
    main()
