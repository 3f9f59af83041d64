"""Start, watch and stop a network's nodes as OS processes on this machine.

Each node runs `python -m medalliance node start --config nodes/<host>/node.yaml` in its own
session, logging to `logs/<host>.log`, with its pid in `run/<host>.pid`. `up` is idempotent: a
node whose process is alive is left alone, so `up` after a crash restarts only what died, on the
same ledgers. Health comes from each node's operations endpoint (`/healthz`, `/status`).

With an organisation (`--org`), `up` and `down` act on its nodes only: an organisation's folder
of a split set-up (docs/deployment.md) holds the keys of its own nodes alone. `status` asks
every node's operations endpoint, so it shows the nodes of other organisations too, where
their endpoints are reachable (they have no pid here).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medalliance.errors import DeadlineExceeded, NotFound, PreconditionFailed, Unavailable
from medalliance.node.bootstrap import NODES, NetworkLayout, node_hosts
from medalliance.node.config import NODE_FILE

RUN, LOGS = "run", "logs"
POLL_S = 0.2


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    organization: str
    role: str
    endpoint: str
    operations: str

    def pid_file(self, directory: Path) -> Path:
        return directory / RUN / f"{self.name}.pid"

    def log_file(self, directory: Path) -> Path:
        return directory / LOGS / f"{self.name}.log"


def nodes_of(layout: NetworkLayout, organization: str | None = None) -> list[NodeInfo]:
    """The network's nodes, ordering nodes first; only `organization`'s (name or MSP id) when
    given (`ConfigError` lists the organisations when it is unknown)."""
    only = layout.config.organization(organization).name if organization else None
    out = []
    for org, name, role in node_hosts(layout.config):
        if only is not None and org.name != only:
            continue
        node = next(n for n in (*org.peers, *org.orderers) if n.name == name)
        out.append(
            NodeInfo(
                f"{name}.{org.domain}", org.msp_id, role, node.endpoint, node.operations_endpoint
            )
        )
    return out


def running_pid(node: NodeInfo, directory: Path) -> int | None:
    """The pid of the node's process if it is alive."""
    try:
        pid = int(node.pid_file(directory).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid if not _is_zombie(pid) else None


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return False


def probe(node: NodeInfo, path: str = "/status", timeout: float = 1.0) -> dict[str, Any] | None:
    """The node's answer on its operations endpoint, or None when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://{node.operations}{path}", timeout=timeout) as reply:
            data: dict[str, Any] = json.loads(reply.read())
            return data
    except (urllib.error.URLError, OSError, ValueError):
        return None


def start_node(node: NodeInfo, directory: Path) -> int:
    """Spawn the node's process; returns its pid."""
    for folder in (RUN, LOGS):
        (directory / folder).mkdir(exist_ok=True)
    config = directory / NODES / node.name / NODE_FILE
    log = node.log_file(directory).open("ab")
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "medalliance", "node", "start", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    finally:
        log.close()
    node.pid_file(directory).write_text(f"{process.pid}\n")
    return process.pid


def up(
    layout: NetworkLayout,
    *,
    timeout: float = 60.0,
    on_progress: Callable[[str], None] | None = None,
    organization: str | None = None,
) -> list[NodeInfo]:
    """Start every node (of `organization`, when given) that is not running and wait until all
    are healthy; returns the nodes this call started. If one exits or stays unhealthy, or the
    wait is interrupted, every node this call started is stopped again (those already running
    are left alone) and the error names the node, its last log lines and what was stopped.
    A folder without genesis blocks raises `PreconditionFailed` before anything starts."""
    progress = on_progress or (lambda _m: None)
    directory = layout.directory
    nodes = nodes_of(layout, organization)
    missing = [
        c.name for c in layout.config.channels if not layout.genesis_block_path(c.name).is_file()
    ]
    if missing:
        raise PreconditionFailed(
            f"{directory} has no genesis block of channel(s) {', '.join(missing)}; import the "
            "genesis archive first: `medalliance network join-genesis`"
        )
    foreign = [n.name for n in nodes if not (directory / NODES / n.name / NODE_FILE).is_file()]
    if foreign:
        raise PreconditionFailed(
            f"{directory} holds no node config of {', '.join(foreign)}: they are another "
            "organisation's; pass your own with --org"
        )
    started: list[NodeInfo] = []
    try:
        for node in nodes:
            if running_pid(node, directory) is not None:
                progress(f"{node.name} is already running")
                continue
            progress(f"starting {node.role} {node.name} on {node.endpoint}")
            start_node(node, directory)
            started.append(node)
        _wait_healthy(nodes, directory, timeout, progress)
    except Unavailable as exc:
        raise Unavailable(f"{exc}\n{rolled_back(layout, started, progress)}") from None
    except DeadlineExceeded as exc:
        raise DeadlineExceeded(f"{exc}; {rolled_back(layout, started, progress)}") from None
    except BaseException:
        rolled_back(layout, started, progress)
        raise
    return started


def rolled_back(
    layout: NetworkLayout, started: list[NodeInfo], progress: Callable[[str], None]
) -> str:
    """Stop the nodes a failed `up` started; what to tell the operator about it."""
    if not started:
        return "no node was started by this `up`; those running before are left running"
    stopped = stop(layout, [n.name for n in started], on_progress=progress)
    return f"stopped the {len(stopped)} nodes this `up` had started: {', '.join(stopped)}"


def _wait_healthy(
    nodes: list[NodeInfo], directory: Path, timeout: float, progress: Callable[[str], None]
) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(nodes)
    while waiting:
        for node in list(waiting):
            if probe(node, "/healthz") is not None and (probe(node) or {}).get("healthy"):
                progress(f"{node.name} is healthy")
                waiting.remove(node)
            elif running_pid(node, directory) is None:
                raise Unavailable(
                    f"{node.name} exited during start-up; last log lines:\n{_tail(node.log_file(directory))}"
                )
        if waiting and time.monotonic() > deadline:
            names = ", ".join(n.name for n in waiting)
            raise DeadlineExceeded(
                f"not healthy after {timeout:.0f}s: {names}; see {directory / LOGS}"
            )
        time.sleep(POLL_S)


def down(
    layout: NetworkLayout,
    *,
    timeout: float = 15.0,
    on_progress: Callable[[str], None] | None = None,
    organization: str | None = None,
) -> list[str]:
    """Stop every running node (of `organization`, when given) with SIGTERM (SIGKILL after
    `timeout`); returns those stopped."""
    names = [n.name for n in nodes_of(layout, organization)] if organization else None
    return stop(layout, names, timeout=timeout, on_progress=on_progress)


def stop(
    layout: NetworkLayout,
    names: list[str] | None,
    *,
    timeout: float = 15.0,
    on_progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Stop the named running nodes (None: all) with SIGTERM, SIGKILL after `timeout`; returns
    those stopped. `NotFound` lists the node names when one is unknown."""
    progress = on_progress or (lambda _m: None)
    directory = layout.directory
    known = nodes_of(layout)
    unknown = sorted(set(names or ()) - {n.name for n in known})
    if unknown:
        raise NotFound(
            f"no node {unknown[0]!r} in network {layout.config.name}; nodes: "
            + ", ".join(n.name for n in known)
        )
    stopped = []
    pids = {}
    for node in reversed(known):  # peers first, then ordering nodes
        if names is not None and node.name not in names:
            continue
        pid = running_pid(node, directory)
        if pid is not None:
            progress(f"stopping {node.name}")
            os.kill(pid, signal.SIGTERM)
            pids[node.name] = (node, pid)
    deadline = time.monotonic() + timeout
    for name, (node, pid) in pids.items():
        while running_pid(node, directory) is not None and time.monotonic() < deadline:
            time.sleep(POLL_S)
        if running_pid(node, directory) is not None:
            progress(f"{name} did not stop in {timeout:.0f}s; killing it")
            os.kill(pid, signal.SIGKILL)
        node.pid_file(directory).unlink(missing_ok=True)
        stopped.append(name)
    return stopped


def status(layout: NetworkLayout, organization: str | None = None) -> list[dict[str, Any]]:
    """Each node (of `organization`, when given): name, organisation, role, pid, endpoint,
    health and block heights (and, for an ordering node, each channel's consensus height,
    round, mempool size and halt reason). A node without a pid here (another organisation's)
    is asked all the same: it is up when its operations endpoint answers healthy."""
    rows = []
    for node in nodes_of(layout, organization):
        pid = running_pid(node, layout.directory)
        answer = probe(node)
        if answer is not None and answer.get("name") != node.name:
            answer = None  # another node answers on that port: this one is not up
        channels = (answer or {}).get("channels", {})
        rows.append(
            {
                "name": node.name,
                "organization": node.organization,
                "role": node.role,
                "pid": pid,
                "endpoint": node.endpoint,
                "health": "up"
                if answer and answer.get("healthy")
                else ("starting" if pid else "down"),
                "height": max(channels.values(), default=None) if channels else None,
                "channels": channels,
                **({"consensus": answer["consensus"]} if answer and "consensus" in answer else {}),
                **({"integrity": answer["integrity"]} if answer and "integrity" in answer else {}),
            }
        )
    return rows


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
