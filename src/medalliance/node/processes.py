"""Background processes of a network folder: what `network up` starts and `down` stops.

Each process (a node, an organisation's Fabric CA) is `python -m medalliance ...` in its own
session, so a Ctrl-C at the terminal that started it does not reach it; it logs to
`logs/<name>.log` and its pid is in `run/<name>.pid`. A pid whose process is gone, or a zombie,
counts as not running, so a crash leaves nothing that blocks the next `up`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from medalliance.errors import DeadlineExceeded, Unavailable

RUN, LOGS = "run", "logs"
POLL_S = 0.2  # how often a wait looks again: the polling interval, not a guess of a duration

Progress = Callable[[str], None]


def pid_file(directory: Path, name: str) -> Path:
    return directory / RUN / f"{name}.pid"


def log_file(directory: Path, name: str) -> Path:
    return directory / LOGS / f"{name}.log"


def spawn(directory: Path, name: str, args: Sequence[str]) -> int:
    """Start `python -m medalliance ARGS` as process `name`, detached; returns its pid."""
    for folder in (RUN, LOGS):
        (directory / folder).mkdir(exist_ok=True)
    log = log_file(directory, name).open("ab")
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "medalliance", *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    finally:
        log.close()
    pid_file(directory, name).write_text(f"{process.pid}\n")
    return process.pid


def running_pid(directory: Path, name: str) -> int | None:
    """The pid of process `name` if it is alive."""
    try:
        pid = int(pid_file(directory, name).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid if not _is_zombie(pid) else None


def wait_ready(
    directory: Path,
    names: Sequence[str],
    ready: Callable[[str], bool],
    *,
    timeout: float,
    progress: Progress,
    state: str,
) -> None:
    """Wait until `ready(name)` holds for every process, reporting "NAME is STATE" (e.g.
    "healthy"). One that exits meanwhile raises `Unavailable` with its last log lines; past
    `timeout`, `DeadlineExceeded` names those still not in that state."""
    deadline = time.monotonic() + timeout
    waiting = list(names)
    while waiting:
        for name in list(waiting):
            if ready(name):
                progress(f"{name} is {state}")
                waiting.remove(name)
            elif running_pid(directory, name) is None:
                raise Unavailable(
                    f"{name} exited during start-up; last log lines:\n{tail(directory, name)}"
                )
        if waiting and time.monotonic() > deadline:
            raise DeadlineExceeded(
                f"not {state} after {timeout:.0f}s: {', '.join(waiting)}; see {directory / LOGS}"
            )
        time.sleep(POLL_S)


def terminate(
    directory: Path, names: Sequence[str], *, timeout: float, progress: Progress
) -> list[str]:
    """SIGTERM each running process of `names` (in that order), SIGKILL those still running
    after `timeout`; returns the names stopped."""
    pids = {}
    for name in names:
        pid = running_pid(directory, name)
        if pid is not None:
            progress(f"stopping {name}")
            os.kill(pid, signal.SIGTERM)
            pids[name] = pid
    deadline = time.monotonic() + timeout
    for name, pid in pids.items():
        while running_pid(directory, name) is not None and time.monotonic() < deadline:
            time.sleep(POLL_S)
        if running_pid(directory, name) is not None:
            progress(f"{name} did not stop in {timeout:.0f}s; killing it")
            os.kill(pid, signal.SIGKILL)
        pid_file(directory, name).unlink(missing_ok=True)
    return list(pids)


def tail(directory: Path, name: str, lines: int = 15) -> str:
    """The last lines of the process's log."""
    try:
        text = log_file(directory, name).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return False
