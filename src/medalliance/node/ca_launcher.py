"""Start, watch and stop the organisations' Fabric CA servers as processes (`network up`).

Beside the nodes (node/launcher.py), as background processes of the same folder
(node/processes.py): each CA runs `python -m medalliance ca start --dir DIR --org ORG`, logging
to `logs/ca.<domain>.log`, its pid in `run/ca.<domain>.pid`. Only organisations whose config has `ca:` run one. Healthy
means it answers `GET /api/v1/cainfo` over TLS, verified against the organisation's TLS CA;
`status` gives `network status` a row per CA (node/launcher.py).
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medalliance.node import processes
from medalliance.node.bootstrap import NetworkLayout

_Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class CaProcess:
    """One organisation's CA server."""

    name: str  # ca.<domain>
    organization: str
    endpoint: str
    tls_ca: Path


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
            if processes.running_pid(layout.directory, ca.name) is not None:
                continue
            progress(f"starting Fabric CA {ca.name} on {ca.endpoint}")
            processes.spawn(
                layout.directory,
                ca.name,
                ["ca", "start", "--dir", str(layout.directory), "--org", ca.organization],
            )
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
    names = [ca.name for ca in cas]
    return processes.terminate(layout.directory, names, timeout=10.0, progress=progress)


def status(layout: NetworkLayout, organization: str | None = None) -> list[dict[str, Any]]:
    """A `network status` row per CA (of `organization`, name or MSP id, when given): role
    `ca`, its https:// endpoint, pid and health — up when it answers `cainfo` over TLS,
    starting when its process lives but does not answer yet, else down. Another
    organisation's CA (no pid here) is up when it answers."""
    only = layout.config.organization(organization).name if organization else None
    rows: list[dict[str, Any]] = []
    for ca in cas_of(layout, only):
        pid = processes.running_pid(layout.directory, ca.name)
        health = "up" if answers(ca) else ("starting" if pid else "down")
        rows.append({
            "name": ca.name,
            "organization": layout.config.organization(ca.organization).msp_id,
            "role": "ca",
            "pid": pid,
            "endpoint": f"https://{ca.endpoint}",
            "health": health,
            "height": None,
            "channels": {},
        })  # fmt: skip
    return rows


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


def _wait(cas: list[CaProcess], directory: Path, timeout: float, progress: _Progress) -> None:
    by_name = {ca.name: ca for ca in cas}
    processes.wait_ready(
        directory,
        list(by_name),
        lambda name: answers(by_name[name]),
        timeout=timeout,
        progress=progress,
        state="answering",
    )
