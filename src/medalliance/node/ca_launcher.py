"""Start, watch and stop the organisations' Fabric CA servers as processes (`network up`).

Beside the nodes (node/launcher.py) and in the same folders: each CA runs `python -m
medalliance ca start --dir DIR --org ORG` in its own session, logging to `logs/ca.<domain>.log`,
its pid in `run/ca.<domain>.pid`. Only organisations whose config has `ca:` run one. Healthy
means it answers `GET /api/v1/cainfo` over TLS, verified against the organisation's TLS CA.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from medalliance.errors import DeadlineExceeded, Unavailable
from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.launcher import LOGS, POLL_S, RUN

_Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class CaProcess:
    """One organisation's CA server."""

    name: str  # ca.<domain>
    organization: str
    endpoint: str
    tls_ca: Path

    def pid_file(self, directory: Path) -> Path:
        return directory / RUN / f"{self.name}.pid"

    def log_file(self, directory: Path) -> Path:
        return directory / LOGS / f"{self.name}.log"


def cas_of(layout: NetworkLayout, organization: str | None = None) -> list[CaProcess]:
    """The CA servers of the network's organisations (only `organization`'s when given)."""
    out = []
    for org in layout.config.organizations:
        if org.ca is not None and organization in (None, org.name):
            tls_ca = sorted((layout.org_dir(org.msp_id) / "tlsca").glob("*-cert.pem"))
            out.append(
                CaProcess(
                    f"ca.{org.domain}", org.name, org.ca.endpoint, tls_ca[0] if tls_ca else Path()
                )
            )
    return out


def up(
    layout: NetworkLayout,
    *,
    timeout: float = 60.0,
    on_progress: _Progress | None = None,
    organization: str | None = None,
) -> list[CaProcess]:
    """Start every CA that is not running and wait until each answers; returns those started.
    On failure the ones this call started are stopped again."""
    progress = on_progress or (lambda _m: None)
    started: list[CaProcess] = []
    try:
        for ca in cas_of(layout, organization):
            if _running_pid(ca, layout.directory) is not None:
                continue
            progress(f"starting Fabric CA {ca.name} on {ca.endpoint}")
            _start(ca, layout.directory)
            started.append(ca)
        _wait(started, layout.directory, timeout, progress)
    except BaseException:
        stop(layout, started)
        raise
    return started


def down(
    layout: NetworkLayout, on_progress: _Progress | None = None, organization: str | None = None
) -> list[str]:
    return stop(layout, cas_of(layout, organization), on_progress)


def stop(
    layout: NetworkLayout, cas: list[CaProcess], on_progress: _Progress | None = None
) -> list[str]:
    """SIGTERM each running CA in `cas`, SIGKILL after 10 s; returns the names stopped."""
    progress = on_progress or (lambda _m: None)
    stopped = []
    for ca in cas:
        pid = _running_pid(ca, layout.directory)
        if pid is None:
            continue
        progress(f"stopping {ca.name}")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10.0
        while _running_pid(ca, layout.directory) is not None and time.monotonic() < deadline:
            time.sleep(POLL_S)
        if _running_pid(ca, layout.directory) is not None:
            os.kill(pid, signal.SIGKILL)
        ca.pid_file(layout.directory).unlink(missing_ok=True)
        stopped.append(ca.name)
    return stopped


def answers(ca: CaProcess, timeout: float = 1.0) -> bool:
    """Whether the CA answers `cainfo` over TLS verified against its organisation's TLS CA."""
    host, _, port = ca.endpoint.rpartition(":")
    try:
        context = ssl.create_default_context(cafile=str(ca.tls_ca))
        url = f"https://{host}:{port}/api/v1/cainfo"
        with urllib.request.urlopen(url, timeout=timeout, context=context) as reply:
            return bool(json.loads(reply.read()).get("success"))
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _start(ca: CaProcess, directory: Path) -> None:
    for folder in (RUN, LOGS):
        (directory / folder).mkdir(exist_ok=True)
    log = ca.log_file(directory).open("ab")
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "medalliance",
                "ca",
                "start",
                "--dir",
                str(directory),
                "--org",
                ca.organization,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    finally:
        log.close()
    ca.pid_file(directory).write_text(f"{process.pid}\n")


def _wait(cas: list[CaProcess], directory: Path, timeout: float, progress: _Progress) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(cas)
    while waiting:
        for ca in list(waiting):
            if answers(ca):
                progress(f"{ca.name} is answering")
                waiting.remove(ca)
            elif _running_pid(ca, directory) is None:
                tail = ca.log_file(directory).read_text(errors="replace").splitlines()[-15:]
                raise Unavailable(
                    f"{ca.name} exited during start-up; last log lines:\n" + "\n".join(tail)
                )
        if waiting and time.monotonic() > deadline:
            raise DeadlineExceeded(
                f"Fabric CA not answering after {timeout:.0f}s: {', '.join(c.name for c in waiting)}"
            )
        time.sleep(POLL_S)


def _running_pid(ca: CaProcess, directory: Path) -> int | None:
    try:
        pid = int(ca.pid_file(directory).read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    try:
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return None
    except (OSError, IndexError):
        pass
    return pid
