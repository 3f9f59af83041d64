"""Private data collections used by a Node.js chaincode run as a service.

Each organisation runs `tests/interop/ccaas-private` (fabric-contract-api 2.5, each function
one private data call of fabric-shim) with `fabric-chaincode-node server`, installs and approves
it with a collections config (`shared`: Org1 and Org2; `org1Only`); the Python SDK then drives
it through Org1's and Org2's gateways: values reach member peers only, a non-member reads the
hash alone, ranges, delete and purge go through the shim's collection messages.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from medalliance.app.session import connect_as
from medalliance.node.bootstrap import NetworkLayout
from medalliance.sdk import GatewayError
from tests.interop.test_ccaas_node import HERE, ChaincodeProcess, _skip_reason
from tests.networks import (
    TEST_NETWORK,
    cli_json,
    free_ports,
    running,
    wait_until,
    with_free_ports,
)

CHANNEL = "mychannel"
NAME = "private-node"
POLICY = "OR('Org1MSP.peer','Org2MSP.peer')"
SECRET = b"org1 only: blood type AB-"

pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


def _collection(name: str, members: list[str], required: int) -> dict[str, object]:
    policy = "OR(" + ",".join(f"'{m}.member'" for m in members) + ")"
    return {
        "name": name,
        "policy": policy,
        "requiredPeerCount": required,
        "maxPeerCount": 1,
        "blockToLive": 0,
        "memberOnlyRead": True,
        "memberOnlyWrite": False,
    }


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("ccaas-private")
    config = with_free_ports(TEST_NETWORK, base / "network.yaml")
    collections = base / "collections.json"
    collections.write_text(
        json.dumps(
            [
                _collection("shared", ["Org1MSP", "Org2MSP"], 1),
                _collection("org1Only", ["Org1MSP"], 0),
            ]
        ),
        encoding="utf-8",
    )
    servers: list[ChaincodeProcess] = []
    with running(config, base) as network:
        d = ("--dir", str(network))
        try:
            for org, port in zip(("Org1", "Org2"), free_ports(2), strict=True):
                package = base / f"{org}.tar.gz"
                built = cli_json("chaincode", "package", str(package), "--label", "private-node_1.0",
                                 "--address", f"127.0.0.1:{port}")  # fmt: skip
                cli_json("chaincode", "install", str(package), "--org", org, *d)
                server = ChaincodeProcess(
                    org, port, built["package_id"], base / f"{org}.log",
                    module=HERE / "ccaas-private", msp_id=f"{org}MSP",
                )  # fmt: skip
                servers.append(server)
                server.start()
            definition = ("-C", CHANNEL, "-n", NAME, "-v", "1.0", "--sequence", "1",
                          "--policy", POLICY, "--collections-config", str(collections))  # fmt: skip
            for server in servers:
                cli_json("chaincode", "approve", "--org", server.org, *definition,
                         "--package-id", server.package_id, *d)  # fmt: skip
            cli_json("chaincode", "commit", "--org", "Org1", *definition, *d)
            yield network
        finally:
            for server in servers:
                server.stop()


def test_node_chaincode_uses_collections_through_the_shim(directory: Path) -> None:
    layout = NetworkLayout.load(directory)
    with connect_as(layout, "Org1MSP") as org1, connect_as(layout, "Org2MSP") as org2:
        one = org1.get_network(CHANNEL).get_contract(NAME)
        two = org2.get_network(CHANNEL).get_contract(NAME)
        assert one.evaluate_transaction("WhoEndorses") == b"Org1MSP"
        one.submit("Put", arguments=["shared", "k1"], transient={"value": b"for both"})
        one.submit("Put", arguments=["shared", "k2"], transient={"value": b"also for both"})
        one.submit("Put", arguments=["org1Only", "k1"], transient={"value": SECRET})
        assert one.evaluate_transaction("Get", "org1Only", "k1") == SECRET
        assert json.loads(one.evaluate_transaction("Range", "shared", "k1", "k3")) == ["k1", "k2"]
        assert _eventually(lambda: two.evaluate_transaction("Get", "shared", "k1")) == b"for both"
        # Org2 is no member of org1Only: refused the value, answered the hash.
        with pytest.raises(GatewayError, match="read access"):
            two.evaluate_transaction("Get", "org1Only", "k1")
        digest = two.evaluate_transaction("Hash", "org1Only", "k1").decode()
        assert digest == hashlib.sha256(SECRET).hexdigest()
        one.submit_transaction("Delete", "shared", "k2")
        one.submit_transaction("Purge", "org1Only", "k1")
        assert one.evaluate_transaction("Get", "org1Only", "k1") == b""
        assert json.loads(one.evaluate_transaction("Range", "shared", "k1", "k3")) == ["k1"]
    org2_files = b"".join(
        p.read_bytes()
        for p in (directory / "nodes" / "peer0.org2.example.com").rglob("*")
        if p.is_file()
    )
    assert SECRET not in org2_files


def _eventually(read: Callable[[], bytes]) -> bytes:
    """Org2's peer may commit the block a moment after Org1's gateway reported it."""
    found: list[bytes] = []

    def arrived() -> bool:
        try:
            found.append(read())
        except GatewayError:
            return False
        return found[-1] != b""

    wait_until(arrived, "Org2's peer has the value")
    return found[-1]
