"""The demo alliance's commissions and tertiary hospitals, each organisation on its own host.

Owns deriving the config (every node's `host` is its host's address, so TLS names, addresses
and ports are real; the relayed organisation is dialled at its TCP proxies on the bridge and
binds its own address through `listen_host`), `network init`, starting each node inside its
host with `ip netns exec` (pid files under run/ as `network up` writes them, so `network down`
stops them) and looking at the nodes from the root namespace or from inside a host.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from medalliance.node.bootstrap import NODES, NetworkLayout
from medalliance.node.config import NODE_FILE
from medalliance.node.launcher import NodeInfo, nodes_of, probe, running_pid
from tests.hosts.namespaces import REQUIRE_ENV, Host, HostNetwork, host_network
from tests.hosts.tcp_proxy import RelaySet
from tests.networks import DEMO_ALLIANCE, REPO, cli, wait_until

ORGS = ("CityHC", "DistrictHC", "TertiaryHospitalA", "TertiaryHospitalB")
RELAYED = "TertiaryHospitalB"  # every connection to its nodes passes a TCP proxy
CHANNEL = "alliance"
# Any one endorsing organisation's peer endorses `basic`: each hospital's system submits through
# its own peer, so a partitioned host can still try (and fail) to get its transactions ordered.
BASIC = {
    "name": "basic",
    "package": "medalliance.samples.asset_transfer_basic:AssetTransferBasic",
    "version": "1.0",
    "label": "basic_1.0",
    "endorsement_policy": "OutOf(1, 'CityHCMSP.peer', 'DistrictHCMSP.peer', "
    "'TertiaryAMSP.peer', 'TertiaryBMSP.peer')",
}
WAIT_S = 120.0  # generous: two cores shared with other test runs


def faketime_library() -> str | None:
    """Debian's libfaketime (package faketime), preloaded to move one host's clock."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    return found[0] if found else None


def require_faketime() -> str:
    """libfaketime's path; skips without it (fails under MEDALLIANCE_REQUIRE_NETNS=1, as CI)."""
    library = faketime_library()
    if library is None:
        reason = "the clock tests need Debian's faketime (apt-get install faketime)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1)")
        pytest.skip(reason)
    return library


@dataclass
class HostedAlliance:
    directory: Path
    layout: NetworkLayout
    net: HostNetwork
    relays: RelaySet
    nodes: dict[str, NodeInfo]  # by node name, e.g. orderer0.tertiarya.example.com
    committed: set[str] = field(default_factory=set)  # tx ids reported committed

    def host_of(self, node: str) -> Host:
        return self.net.hosts[self.layout.config.organization(self.nodes[node].organization).name]

    def nodes_on(self, org: str) -> list[str]:
        msp_id = self.layout.config.organization(org).msp_id
        return [name for name, n in self.nodes.items() if n.organization == msp_id]

    def start(self, name: str, *, clock_offset: str | None = None) -> None:
        """Run node `name` inside its host, its clock moved by `clock_offset` (faketime's
        syntax, e.g. '+5m') when given."""
        node, host = self.nodes[name], self.host_of(name)
        env = _clock_env(clock_offset)
        for folder in ("run", "logs"):
            (self.directory / folder).mkdir(exist_ok=True)
        config = self.directory / NODES / name / NODE_FILE
        with node.log_file(self.directory).open("ab") as log:
            process = subprocess.Popen(
                host.command(
                    sys.executable, "-m", "medalliance", "node", "start", "--config", str(config)
                ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                env=env,
            )
        node.pid_file(self.directory).write_text(f"{process.pid}\n")

    def pid(self, name: str) -> int:
        pid = running_pid(self.nodes[name], self.directory)
        assert pid is not None, f"{name} is not running"
        return pid

    def wait_healthy(self, *names: str) -> None:
        for name in names or tuple(self.nodes):
            node = self.nodes[name]
            wait_until(functools.partial(_healthy, node), f"{name} answers healthy", WAIT_S)

    def heights(self, *names: str) -> dict[str, int | None]:
        """The named nodes' (default: every node's) heights on the channel, seen from the root
        namespace (None: no answer)."""
        return {name: _height(probe(self.nodes[name], timeout=2.0)) for name in names or self.nodes}

    def heights_inside(self, *names: str) -> tuple[int | None, ...]:
        """The nodes' heights asked from inside their host (reachable when it is partitioned);
        all the nodes must live on one host."""
        (host,) = {self.host_of(name) for name in names}
        ports = [self.nodes[name].operations.rpartition(":")[2] for name in names]
        answers = self.in_host(host.name, "status", *(f"{host.address}:{p}" for p in ports))
        return tuple(_height(answer) for answer in answers)

    def in_host(self, org: str, *argv: str, clock_offset: str | None = None) -> Any:
        """`tests.hosts.host_client argv` run inside `org`'s host: its one JSON answer."""
        return self.answer(self.start_in_host(org, *argv, clock_offset=clock_offset))

    def start_in_host(
        self, org: str, *argv: str, clock_offset: str | None = None
    ) -> subprocess.Popen[str]:
        """The same, started: `answer` collects it (so it can overlap other work)."""
        env = _clock_env(clock_offset)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        return subprocess.Popen(
            self.net.hosts[org].command(sys.executable, "-m", "tests.hosts.host_client", *argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=env,
        )

    @staticmethod
    def answer(process: subprocess.Popen[str]) -> Any:
        try:
            stdout, stderr = process.communicate(timeout=WAIT_S * 2)
        finally:
            process.kill()
        assert process.returncode == 0, stderr
        return json.loads(stdout)

    def peer_digests(self) -> dict[str, tuple[int, str, str] | None]:
        """Each peer's (height, last block hash, world-state hash) on the channel."""
        found: dict[str, tuple[int, str, str] | None] = {}
        for name, node in self.nodes.items():
            if node.role == "peer":
                answer = probe(node, "/status?state_hash=1", timeout=30.0) or {}
                digest = answer.get("ledgers", {}).get(CHANNEL)
                found[name] = (
                    (digest["height"], digest["blockHash"], digest["stateHash"]) if digest else None
                )
        return found


def _clock_env(clock_offset: str | None) -> dict[str, str]:
    """This process's environment, with libfaketime moving the clock by `clock_offset`."""
    env = dict(os.environ)
    if clock_offset is not None:
        env |= {"LD_PRELOAD": require_faketime(), "FAKETIME": clock_offset}
    return env


def _healthy(node: NodeInfo) -> bool:
    return (probe(node) or {}).get("healthy") is True


def _height(answer: dict[str, Any] | None) -> int | None:
    if not answer or answer.get("down"):
        return None
    height = answer.get("channels", {}).get(CHANNEL)
    return int(height) if height is not None else None


@contextlib.contextmanager
def hosted_alliance(base: Path, seed: int) -> Iterator[HostedAlliance]:
    """Hosts, proxies, `network init` and every node started in its host; all removed on exit."""
    with host_network(ORGS) as net, RelaySet(seed).running() as relays:
        config = _config(net)
        directory = base / "network"
        source = base / "alliance-on-hosts.yaml"
        source.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        cli("network", "init", str(source), "--dir", str(directory))
        layout = NetworkLayout.load(directory)
        alliance = HostedAlliance(
            directory, layout, net, relays, {n.name: n for n in nodes_of(layout)}
        )
        for org in layout.config.organizations:
            if org.name == RELAYED:
                for node_config in (*org.peers, *org.orderers):
                    host = net.hosts[org.name].address
                    ops = node_config.operations_port or node_config.port + 10000
                    for port, kind in ((node_config.port, ""), (ops, "-ops")):
                        relays.add(f"{node_config.name}{kind}", (net.gateway, port), (host, port))
        try:
            for name in alliance.nodes:
                alliance.start(name)
            # Every node already runs (in its host): `up` leaves them alone, waits until all
            # are healthy and deploys the contracts, as the alliance's admins would.
            cli("network", "up", "--dir", str(directory))
            yield alliance
        finally:
            if cli("network", "down", "--dir", str(directory), check=False).returncode != 0:
                for node in alliance.nodes.values():
                    pid = running_pid(node, directory)
                    if pid is not None:
                        os.kill(pid, 9)


def _config(net: HostNetwork) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(DEMO_ALLIANCE.read_text(encoding="utf-8"))
    config["name"] = "alliance-on-hosts"
    config["organizations"] = [o for o in config["organizations"] if o["name"] in ORGS]
    for org in config["organizations"]:
        address = net.hosts[org["name"]].address
        for node in (*org.get("peers", []), *org.get("orderers", [])):
            node["host"] = address
            if org["name"] == RELAYED:
                node["host"], node["listen_host"] = net.gateway, address
    (channel,) = config["channels"]
    channel["contracts"].append(BASIC)
    return config
