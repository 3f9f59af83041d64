"""Shipped network configs run as real processes on free loopback ports (for process tests)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import yaml
from fabric_protos.gateway import gateway_pb2_grpc

from medalliance.app.peer_commits import wait_for_block
from medalliance.node.bootstrap import NetworkLayout
from medalliance.sdk import Contract

REPO = Path(__file__).resolve().parents[1]
TEST_NETWORK = REPO / "networks" / "fabric-test-network.yaml"
DEMO_ALLIANCE = REPO / "networks" / "demo-alliance.yaml"


def free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def with_free_ports(
    source: Path,
    target: Path,
    extra_contracts: Sequence[tuple[str, dict[str, Any]]] = (),
    *,
    with_cas: bool = False,
) -> Path:
    """A copy of a network config whose nodes listen on free ports, plus (channel, contract)s.

    Fabric CA servers (`ca:`) are dropped unless `with_cas`: most tests need none, and each is
    one more process to start."""
    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    for org in config["organizations"]:
        if not with_cas:
            org.pop("ca", None)
    nodes = [n for o in config["organizations"] for n in o.get("peers", []) + o.get("orderers", [])]
    cas = [o["ca"] for o in config["organizations"] if "ca" in o]
    orderers = [n for o in config["organizations"] for n in o.get("orderers", [])]
    ports = free_ports(2 * len(nodes) + len(cas) + len(orderers))
    for ca, port in zip(cas, ports[2 * len(nodes) : 2 * len(nodes) + len(cas)], strict=True):
        ca["port"] = port
    for orderer, port in zip(orderers, ports[2 * len(nodes) + len(cas) :], strict=True):
        orderer["cluster_port"] = port  # the default (port + 20000) may be out of range
    ports = ports[: 2 * len(nodes)]
    for node, port, ops in zip(nodes, ports[::2], ports[1::2], strict=True):
        node["port"], node["operations_port"] = port, ops
    for channel_name, contract in extra_contracts:
        (channel,) = (c for c in config["channels"] if c["name"] == channel_name)
        channel["contracts"].append(contract)
    target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return target


def cli(*args: str, check: bool = True, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    """Run `medalliance` with the repository importable (test contracts live under tests/)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, "-m", "medalliance", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"medalliance {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def cli_json(*args: str) -> Any:
    return json.loads(cli("--json", *args).stdout)


@contextlib.contextmanager
def running(config: Path, base: Path) -> Iterator[Path]:
    """Initialise a (free-port) network config in `base/network`, bring it up, stop it on exit."""
    directory = base / "network"
    cli("network", "init", str(config), "--dir", str(directory))
    try:
        cli("network", "up", "--dir", str(directory))
        yield directory
    finally:
        if cli("network", "down", "--dir", str(directory), check=False).returncode != 0:
            _kill_left_over_nodes(directory)


def _kill_left_over_nodes(directory: Path) -> None:
    """When `network down` itself fails (a broken tree cannot even import), stop the nodes by
    their pid files anyway: a leaked network would slow every later test of the suite."""
    for pid_file in (directory / "run").glob("*.pid"):
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)


def gateway_stub(layout: NetworkLayout) -> tuple[gateway_pb2_grpc.GatewayStub, grpc.Channel]:
    """A raw Gateway stub on Org1's peer, for requests the SDK would never build."""
    org = layout.config.organization("Org1")
    tls_ca = next((layout.org_msp_dir("Org1MSP") / "tlscacerts").glob("*.pem")).read_bytes()
    channel = grpc.secure_channel(
        org.peers[0].endpoint,
        grpc.ssl_channel_credentials(tls_ca),
        options=[("grpc.ssl_target_name_override", "peer0.org1.example.com")],
    )
    return gateway_pb2_grpc.GatewayStub(channel), channel


def wait_until(predicate: Callable[[], object], what: str, timeout_s: float = 60.0) -> None:
    """Wait for a condition of real processes, polling it until a deadline (never a fixed
    sleep: a loaded machine only makes it take longer); fails naming what did not happen."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting until {what}")
        time.sleep(0.1)  # the polling interval, not a guess at how long it takes


def submit_everywhere(
    layout: NetworkLayout, contract: Contract, function: str, *args: str
) -> bytes:
    """Submit through `contract`'s gateway and return its result once every running peer of
    the channel has the block, as `GatewayAlliance.submit` does: the gateway's commit status
    covers only its own peer, and a next step through another organisation's gateway would
    read that organisation's peer, perhaps from before the transaction."""
    submitted = contract.submit_async(function, arguments=list(args))
    status = submitted.get_status()
    assert status.successful, (function, status.code)
    lagging = wait_for_block(layout, contract.channel_id, status.block_number)
    assert lagging == [], f"peers did not commit block {status.block_number}: {lagging}"
    return bytes(submitted.result)
