"""Node.js chaincode as a service on medalliance peers, driven by the Fabric Gateway Node client.

One network of processes (Fabric's test network on free ports, the Python port of
asset-transfer-basic deployed as `basic`). Each endorsing organisation runs the Node.js
chaincode `tests/interop/ccaas-basic` (fabric-contract-api 2.5) as a service with
`fabric-chaincode-node server`, packages its own connection.json, installs and approves it
(`medalliance chaincode ...`); then `ccaas.test.mjs` calls both contracts alike and compares.
Needs `node` and `npm ci` in tests/interop, as test_node_gateway.py.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from medalliance.app.session import connect_as
from medalliance.node.bootstrap import NetworkLayout
from medalliance.sdk import Contract, GatewayError
from tests.interop.test_node_gateway import _node_env, run_node_test
from tests.networks import (
    TEST_NETWORK,
    cli,
    cli_json,
    free_ports,
    running,
    wait_until,
    with_free_ports,
)

HERE = Path(__file__).resolve().parent
CHAINCODE = HERE / "ccaas-basic"
SERVER = HERE / "node_modules" / ".bin" / "fabric-chaincode-node"
NODE_TEST = HERE / "ccaas.test.mjs"
CHANNEL = "mychannel"
NAME = "basic-node"
POLICY = "AND('Org1MSP.peer','Org2MSP.peer')"
NODE_TIMEOUT_S = 240
NODE = shutil.which("node")


def _skip_reason() -> str | None:
    if NODE is None:
        return "`node` (Node.js >= 20.9) is not on PATH: the Node.js chaincode cannot run"
    if not SERVER.exists():
        return "fabric-shim is not in tests/interop/node_modules: run `npm ci` there"
    return None


if os.environ.get("MEDALLIANCE_REQUIRE_INTEROP") == "1" and _skip_reason() is not None:
    raise RuntimeError(f"interop tests are required here: {_skip_reason()}")
pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


@dataclass
class ChaincodeProcess:
    """One organisation's Node.js chaincode server."""

    org: str
    port: int
    package_id: str
    log: Path
    process: subprocess.Popen[bytes] | None = None
    module: Path = CHAINCODE
    msp_id: str = ""  # CORE_PEER_LOCALMSPID: what the chaincode's GetMSPID answers

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(SERVER), "server", "--chaincode-address", f"127.0.0.1:{self.port}",
                 "--chaincode-id", self.package_id, "--module-path", str(self.module)],
                cwd=HERE, stdout=log, stderr=subprocess.STDOUT,
                env=dict(os.environ) | ({"CORE_PEER_LOCALMSPID": self.msp_id} if self.msp_id else {}),
            )  # fmt: skip
        wait_until(self.listening, f"{self.org}'s chaincode server listens on {self.port}")

    def listening(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the chaincode server exited:\n{self.log.read_text()}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def deployed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, list[ChaincodeProcess]]]:
    base = tmp_path_factory.mktemp("ccaas")
    config = with_free_ports(TEST_NETWORK, base / "network.yaml")
    servers: list[ChaincodeProcess] = []
    with running(config, base) as directory:
        d = ("--dir", str(directory))
        try:
            for org, port in zip(("Org1", "Org2"), free_ports(2), strict=True):
                package = base / f"{org}.tar.gz"
                built = cli_json("chaincode", "package", str(package), "--label", "basic-node_1.0",
                                 "--address", f"127.0.0.1:{port}")  # fmt: skip
                installed = cli_json("chaincode", "install", str(package), "--org", org, *d)
                assert installed["package_id"] == built["package_id"]
                server = ChaincodeProcess(org, port, built["package_id"], base / f"{org}.log")
                servers.append(server)
                server.start()
            definition = ("-C", CHANNEL, "-n", NAME, "-v", "1.0", "--sequence", "1",
                          "--policy", POLICY)  # fmt: skip
            for server in servers:
                cli_json("chaincode", "approve", "--org", server.org, *definition,
                         "--package-id", server.package_id, *d)  # fmt: skip
            cli_json("chaincode", "commit", "--org", "Org1", *definition, *d)
            yield directory, servers
        finally:
            for server in servers:
                server.stop()


def test_node_chaincode_as_a_service_gives_the_python_ports_results(
    deployed: tuple[Path, list[ChaincodeProcess]],
) -> None:
    directory, _ = deployed
    assert NODE is not None
    env = _node_env(directory)
    env.update({"CCAAS_CONTRACT": NAME, "PYTHON_CONTRACT": "basic"})
    run_node_test(NODE_TEST, env)


def test_a_stopped_chaincode_server_is_reported_and_used_again_once_restarted(
    deployed: tuple[Path, list[ChaincodeProcess]],
) -> None:
    directory, servers = deployed
    layout = NetworkLayout.load(directory)
    org2 = servers[1]
    with connect_as(layout, "Org1MSP") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(NAME)
        before = contract.evaluate_transaction("GetAllAssets")
        org2.stop()
        with pytest.raises(GatewayError, match=f"is not reachable at 127.0.0.1:{org2.port}"):
            contract.submit_transaction("CreateAsset", "down1", "red", "1", "x", "1")
        assert contract.evaluate_transaction("GetAllAssets") == before  # nothing committed
        org2.start()
        wait_until(
            lambda: _submits(contract),
            "Org2's peer reconnects to its restarted chaincode server",
        )
        assert contract.evaluate_transaction("AssetExists", "down2") == b"true"


def _submits(contract: Contract) -> bool:
    """Whether the create went through (or did on an earlier attempt whose answer was lost)."""
    try:
        contract.submit_transaction("CreateAsset", "down2", "red", "1", "x", "1")
    except GatewayError as exc:
        return "already exists" in str(exc)
    return True


def test_a_malformed_package_or_a_minority_commit_is_refused_and_changes_nothing(
    deployed: tuple[Path, list[ChaincodeProcess]], tmp_path: Path
) -> None:
    directory, servers = deployed
    d = ("--dir", str(directory))
    packages = directory / "nodes" / "peer0.org1.example.com" / "packages"
    installed = sorted(packages.iterdir())
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b not a package")
    refused = cli("chaincode", "install", str(bad), "--org", "Org1", *d, check=False)
    assert refused.returncode == 2, refused.stderr
    assert "not a tar.gz archive" in refused.stderr
    assert sorted(packages.iterdir()) == installed

    # sequence 2 approved by Org1 alone: one of the two approvals a commit needs
    definition = ("-C", CHANNEL, "-n", NAME, "-v", "2.0", "--sequence", "2", "--policy", POLICY)
    cli_json("chaincode", "approve", "--org", "Org1", *definition,
             "--package-id", servers[0].package_id, *d)  # fmt: skip
    minority = cli("chaincode", "commit", "--org", "Org1", *definition, *d, check=False)
    assert minority.returncode == 1, minority.stderr
    assert "1 of the 2 approvals it needs" in minority.stdout + minority.stderr
    layout = NetworkLayout.load(directory)
    with connect_as(layout, "Org1MSP") as gateway:
        lifecycle = gateway.get_network(CHANNEL).get_contract("_lifecycle")
        committed = json.loads(lifecycle.evaluate_transaction("QueryChaincodeDefinition", NAME))
    assert (committed["sequence"], committed["version"], committed["external"]) == (1, "1.0", True)
