"""Private data collections between peer processes (Fabric's test network, two organisations).

`notes` is endorsed by either organisation alone, so Org2's peer gets Org1's private write only
through the `PushCollection` gRPC call (requiredPeerCount 1); `org1Only` names Org1 alone, so
no file of Org2's node may contain its value."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.networks import TEST_NETWORK, cli, running, wait_until, with_free_ports

SHARED_SECRET = "shared-collection-marker-4711"
OWN_SECRET = "org1-only-collection-marker-0815"
NOTES = {
    "name": "notes",
    "package": "tests.private_contract:PrivateNotes",
    "endorsement_policy": "OR('Org1MSP.peer', 'Org2MSP.peer')",
    "collections": [
        {"name": "shared", "policy": "OR('Org1MSP.member', 'Org2MSP.member')",
         "requiredPeerCount": 1, "maxPeerCount": 1, "memberOnlyRead": True,
         "memberOnlyWrite": True},
        {"name": "org1Only", "policy": "OR('Org1MSP.member')", "requiredPeerCount": 0,
         "maxPeerCount": 0, "memberOnlyRead": True, "memberOnlyWrite": False},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("pdc")
    config = with_free_ports(TEST_NETWORK, base / "network.yaml", [("mychannel", NOTES)])
    with running(config, base) as directory:
        yield directory


def _tx(network: Path, verb: str, org: str, *args: str, check: bool = True) -> str:
    out = cli("tx", verb, "--dir", str(network), "--org", org, "-C", "mychannel", "-n", "notes",
              *args, check=check)  # fmt: skip
    return out.stdout if out.returncode == 0 else out.stderr


def test_private_data_reaches_member_peers_only(network: Path) -> None:
    _tx(network, "submit", "Org1", "Put", "shared", "k1", "--transient", f"value={SHARED_SECRET}")
    _tx(network, "submit", "Org1", "Put", "org1Only", "k2", "--transient", f"value={OWN_SECRET}")
    # Org2's peer got the shared value by the push, before the commit
    wait_until(
        lambda: (
            SHARED_SECRET in _tx(network, "evaluate", "Org2", "Get", "shared", "k1", check=False)
        ),
        "Org2 reads the shared value",
    )
    assert OWN_SECRET in _tx(network, "evaluate", "Org1", "Get", "org1Only", "k2")
    refused = _tx(network, "evaluate", "Org2", "Get", "org1Only", "k2", check=False)
    assert "read access" in refused
    org2 = network / "nodes" / "peer0.org2.example.com"
    org1 = network / "nodes" / "peer0.org1.example.com"
    assert _files_with(org1, OWN_SECRET.encode())
    assert _files_with(org2, SHARED_SECRET.encode())
    assert _files_with(org2, OWN_SECRET.encode()) == []


def _files_with(directory: Path, needle: bytes) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file() and needle in p.read_bytes()]
