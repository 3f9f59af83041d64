"""The demo alliance's commissions and tertiary hospitals, each organisation on its own host.

Owns deriving the config (every node's `host` is its host's address, so TLS names, addresses
and ports are real; the relayed organisation is dialled at its TCP proxies on the bridge and
binds its own address through `listen_host`), setting the alliance up and running it with
docs/deployment.md's commands, each run inside the organisation's host on its own folder
(`base/<org>/`; sending a file is a copy), and looking at the nodes from the root namespace or
from inside a host.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.launcher import NodeInfo, nodes_of, probe, running_pid
from tests.hosts.namespaces import REQUIRE_ENV, Host, HostNetwork, host_network
from tests.hosts.tcp_proxy import RelaySet
from tests.key_custody import assert_no_folder_holds_another_organisations_key
from tests.networks import DEMO_ALLIANCE, REPO, _kill_left_over_nodes

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
    base: Path  # base/<org>/: each organisation's own folder, as on its own machine
    layouts: dict[str, NetworkLayout]  # by organisation name
    net: HostNetwork
    relays: RelaySet
    nodes: dict[str, NodeInfo]  # by node name, e.g. orderer0.tertiarya.example.com
    committed: set[str] = field(default_factory=set)  # tx ids reported committed

    def folder(self, org: str) -> Path:
        return self.layouts[org].directory

    def org_of(self, node: str) -> str:
        return self.layouts[ORGS[0]].config.organization(self.nodes[node].organization).name

    def host_of(self, node: str) -> Host:
        return self.net.hosts[self.org_of(node)]

    def nodes_on(self, org: str) -> list[str]:
        msp_id = self.layouts[org].config.organization(org).msp_id
        return [name for name, n in self.nodes.items() if n.organization == msp_id]

    def medalliance(
        self, org: str, *argv: str, clock_offset: str | None = None
    ) -> subprocess.Popen[str]:
        """`medalliance argv` started inside `org`'s host, under `faketime -f clock_offset` when
        given (a guide command as its operator types it there); `finish` collects it."""
        return start_medalliance(self.net.hosts[org], *argv, clock_offset=clock_offset)

    def up(self, org: str, *, clock_offset: str | None = None) -> None:
        """docs/deployment.md §3 inside `org`'s host: `network up --org` starts its nodes there
        (they inherit the host's namespace and, with `clock_offset`, libfaketime)."""
        finish(
            self.medalliance(org, *self.org_args("network", "up", org), clock_offset=clock_offset)
        )

    def down(self, *orgs: str) -> None:
        """`network down --org` inside each named host, at once (separate machines)."""
        in_hosts(self.net, orgs, lambda org: self.org_args("network", "down", org))

    def org_args(self, group: str, verb: str, org: str) -> tuple[str, ...]:
        return (group, verb, "--dir", str(self.folder(org)), "--org", org)

    def pid(self, name: str) -> int:
        pid = running_pid(self.nodes[name], self.folder(self.org_of(name)))
        assert pid is not None, f"{name} is not running"
        return pid

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


def _height(answer: dict[str, Any] | None) -> int | None:
    if not answer or answer.get("down"):
        return None
    height = answer.get("channels", {}).get(CHANNEL)
    return int(height) if height is not None else None


def start_medalliance(
    host: Host, *argv: str, clock_offset: str | None = None
) -> subprocess.Popen[str]:
    """`medalliance argv` started inside `host` (`faketime -f clock_offset` when given)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    clock = ("faketime", "-f", clock_offset) if clock_offset is not None else ()
    if clock:
        require_faketime()
    return subprocess.Popen(
        host.command(*clock, sys.executable, "-m", "medalliance", *argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )


def finish(process: subprocess.Popen[str], *, check: bool = True) -> str:
    """A started command's output, once it exited; it must have succeeded when `check`."""
    try:
        stdout, stderr = process.communicate(timeout=WAIT_S * 2)
    finally:
        process.kill()
    if check and process.returncode != 0:
        raise AssertionError(f"{process.args!r} failed ({process.returncode}):\n{stdout}\n{stderr}")
    return stdout


@contextlib.contextmanager
def hosted_alliance(base: Path, seed: int) -> Iterator[HostedAlliance]:
    """Hosts, proxies and the alliance set up and started as docs/deployment.md says, each
    organisation in its own folder on its own host; everything stopped and removed on exit."""
    with host_network(ORGS) as net, RelaySet(seed).running() as relays:
        source = base / "network.yaml"  # the network file the organisations agreed on
        config = _config(net)
        source.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        try:
            _set_up(base, source, net)
            layouts = {org: NetworkLayout.load(base / org) for org in ORGS}
            alliance = HostedAlliance(
                base, layouts, net, relays, {n.name: n for n in nodes_of(layouts[ORGS[0]])}
            )
            _add_relays(alliance)
            # §3: each organisation starts its own nodes in its host (start order does not
            # matter), then approves the contracts for itself, all at once as on separate
            # machines: the approvals completing the majority race to commit each contract, and
            # each contract is committed by exactly one of them.
            in_hosts(net, ORGS, lambda org: alliance.org_args("network", "up", org))
            outputs = in_hosts(
                net, ORGS, lambda org: ("--json", *alliance.org_args("network", "deploy", org))
            )
            committed = [name for out in outputs for name in json.loads(out)["deployed"]]
            contracts = [f"{CHANNEL}/{c['name']}" for c in config["channels"][0]["contracts"]]
            assert sorted(committed) == sorted(contracts), outputs
            # §8: any host sees every node of the alliance, its own and the others'.
            (status,) = in_hosts(
                net, ORGS[:1], lambda org: ("--json", "network", "status", "--dir", str(base / org))
            )
            health = {node["name"]: node["health"] for node in json.loads(status)["nodes"]}
            assert health == dict.fromkeys(alliance.nodes, "up"), health
            yield alliance
        finally:
            for org in ORGS:
                folder = base / org
                if (folder / "run").is_dir() and any((folder / "run").glob("*.pid")):
                    down = start_medalliance(
                        net.hosts[org], "network", "down", "--dir", str(folder), "--org", org
                    )
                    finish(down, check=False)
                    if down.returncode != 0:
                        _kill_left_over_nodes(folder)


def in_hosts(
    net: HostNetwork, orgs: Sequence[str], argv_of: Callable[[str], Sequence[str]]
) -> list[str]:
    """The guide command `argv_of(org)` run by each organisation inside its own host, all at
    once as on separate machines; their outputs (each must succeed)."""
    started = [start_medalliance(net.hosts[org], *argv_of(org)) for org in orgs]
    try:
        return [finish(process) for process in started]
    finally:
        for process in started:  # after one failed: leave none of the others running
            process.kill()


def _set_up(base: Path, source: Path, net: HostNetwork) -> None:
    """§2: each organisation makes its own keys in its own folder on its own host; the bundles
    are sent (copied) to the genesis maker, CityHC, which builds the genesis blocks in a folder
    of its own; each organisation imports the archive, checked against the printed hashes."""
    in_hosts(
        net,
        ORGS,
        lambda org: ("network", "init", str(source), "--org", org, "--dir", str(base / org)),
    )
    maker = base / "genesis-maker"
    maker.mkdir()
    bundles = [str(shutil.copy(base / org / f"{org}.public.tar.gz", maker)) for org in ORGS]
    archive = maker / "alliance.genesis.tar.gz"
    (made,) = in_hosts(
        net,
        ["CityHC"],
        lambda _: ("--json", "network", "genesis", str(source), *bundles, "--out", str(archive)),
    )
    published = json.loads(made)["genesis_sha256"].items()
    hashes = [
        word for channel, sha in published for word in ("--genesis-sha256", f"{channel}={sha}")
    ]
    for org in ORGS:
        shutil.copy(archive, base / org)
    in_hosts(
        net,
        ORGS,
        lambda org: (
            "network",
            "join-genesis",
            str(base / org / archive.name),
            "--dir",
            str(base / org),
            "--org",
            org,
            *hashes,
        ),
    )
    config = NetworkLayout.load(base / ORGS[0]).config
    assert_no_folder_holds_another_organisations_key(
        {org: base / org for org in ORGS}, {org: config.organization(org).domain for org in ORGS}
    )


def _add_relays(alliance: HostedAlliance) -> None:
    """The relayed organisation's nodes (node, operations and, for ordering nodes, cluster
    ports) behind the proxies."""
    org = alliance.layouts[RELAYED].config.organization(RELAYED)
    host = alliance.net.hosts[RELAYED].address
    for node_config in (*org.peers, *org.orderers):
        ops = node_config.operations_port or node_config.port + 10000
        ports = [(node_config.port, ""), (ops, "-ops")]
        if node_config in org.orderers:
            ports.append((int(node_config.cluster_endpoint.rpartition(":")[2]), "-cluster"))
        for port, kind in ports:
            alliance.relays.add(
                f"{node_config.name}{kind}", (alliance.net.gateway, port), (host, port)
            )


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
