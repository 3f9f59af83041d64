"""A real network of node processes on free loopback ports, shared by the tests of a module."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TEST_NETWORK = REPO / "networks" / "fabric-test-network.yaml"


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


def with_free_ports(source: Path, target: Path) -> Path:
    """A copy of a network config whose nodes listen on free ports."""
    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    nodes = [
        n for org in config["organizations"] for n in org.get("peers", []) + org.get("orderers", [])
    ]
    ports = free_ports(2 * len(nodes))
    for node, port, ops in zip(nodes, ports[::2], ports[1::2], strict=True):
        node["port"], node["operations_port"] = port, ops
    target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return target


def cli(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "medalliance", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"medalliance {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result


def cli_json(*args: str) -> dict:  # type: ignore[type-arg]
    return json.loads(cli("--json", *args).stdout)


@pytest.fixture(scope="module")
def network_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The Fabric test network config, initialised and up; stopped after the module."""
    base = tmp_path_factory.mktemp("net")
    config = with_free_ports(TEST_NETWORK, base / "network.yaml")
    directory = base / "network"
    cli("network", "init", str(config), "--dir", str(directory))
    try:
        cli("network", "up", "--dir", str(directory))
        yield directory
    finally:
        cli("network", "down", "--dir", str(directory), check=False)
