"""A real `medalliance demo --serve` process on a free port, for browser tests and screenshots."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.networks import REPO, free_ports, wait_until


@dataclass(frozen=True)
class DemoServer:
    url: str
    logins: dict[str, str]  # username -> password, as the server wrote them
    data_dir: Path


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/login", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def demo_server(data_dir: Path, timeout_s: float = 240) -> Iterator[DemoServer]:
    """Run the demo in `data_dir`, serve it, yield once it answers; Ctrl-C (SIGINT) at the end."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    (port,) = free_ports(1)
    log_path = data_dir.parent / f"{data_dir.name}-server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "medalliance", "demo", "--data-dir", str(data_dir),
             "--serve", "--port", str(port)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(
                lambda: process.poll() is not None or _up(url),
                "the demo web server answers",
                timeout_s,
            )
            if process.poll() is not None:
                raise AssertionError(f"the demo server exited: {log_path.read_text()}")
            logins = json.loads((data_dir / "web-logins.json").read_text(encoding="utf-8"))
            yield DemoServer(url, logins, data_dir)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def log_in(page: object, server: DemoServer, username: str) -> None:
    """Log a Playwright page in through the login form."""
    page.goto(f"{server.url}/login")  # type: ignore[attr-defined]
    page.fill("input[name=username]", username)  # type: ignore[attr-defined]
    page.fill("input[name=password]", server.logins[username])  # type: ignore[attr-defined]
    page.click("form[action='/login'] button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_load_state("networkidle")  # type: ignore[attr-defined]
