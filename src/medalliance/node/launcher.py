"""Start, watch and stop a network's nodes as OS processes on this machine.

Each node runs `python -m medalliance node start --config nodes/<host>/node.yaml` as one of the
folder's background processes (node/processes.py: `logs/<host>.log`, `run/<host>.pid`). `up` is idempotent: a
node whose process is alive is left alone, so `up` after a crash restarts only what died, on the
same ledgers. Health comes from each node's operations endpoint (`/healthz`, `/status`).

With an organisation (`--org`), `up` and `down` act on its nodes only: an organisation's folder
of a split set-up (docs/deployment.md) holds the keys of its own nodes alone. `status` asks
every node's operations endpoint, so it shows the nodes of other organisations too, where
their endpoints are reachable (they have no pid here).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medalliance.errors import DeadlineExceeded, NotFound, PreconditionFailed, Unavailable
from medalliance.node import ca_launcher, processes
from medalliance.node.bootstrap import NODES, NetworkLayout, node_hosts
from medalliance.node.config import NODE_FILE
from medalliance.node.processes import LOGS, RUN

__all__ = ["LOGS", "RUN", "NodeInfo", "down", "nodes_of", "probe", "running_pid", "start_node",
           "status", "stop", "up"]  # fmt: skip


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    organization: str
    role: str
    endpoint: str
    operations: str

    def pid_file(self, directory: Path) -> Path:
        return processes.pid_file(directory, self.name)

    def log_file(self, directory: Path) -> Path:
        return processes.log_file(directory, self.name)


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
    return processes.running_pid(directory, node.name)


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
    config = directory / NODES / node.name / NODE_FILE
    return processes.spawn(directory, node.name, ["node", "start", "--config", str(config)])


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
    by_name = {n.name: n for n in nodes}

    def healthy(name: str) -> bool:
        node = by_name[name]
        return probe(node, "/healthz") is not None and bool((probe(node) or {}).get("healthy"))

    processes.wait_ready(
        directory, list(by_name), healthy, timeout=timeout, progress=progress, state="healthy"
    )


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
    wanted = [n.name for n in reversed(known) if names is None or n.name in names]
    # peers first, then ordering nodes
    return processes.terminate(directory, wanted, timeout=timeout, progress=progress)


def status(layout: NetworkLayout, organization: str | None = None) -> list[dict[str, Any]]:
    """Each node (of `organization`, when given): name, organisation, role, pid, endpoint,
    health and block heights (and, for an ordering node, each channel's consensus height,
    round, mempool size and halt reason), then each Fabric CA (role `ca`: node/ca_launcher.py).
    A node without a pid here (another organisation's)
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
                **(
                    {"signatures": answer["signatures"]}
                    if answer and "signatures" in answer
                    else {}
                ),
            }
        )
    return rows + ca_launcher.status(layout, organization)  # the Fabric CAs, role `ca`
