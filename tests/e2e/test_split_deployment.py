"""docs/deployment.md, followed command by command: each organisation of the BFT test network
in its own folder with its own keys, only public material exchanged, its own nodes started from
its own folder; a transaction endorsed by two organisations commits on every peer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from medalliance.ledger.block import parse_block
from medalliance.node.public_bundle import pack, unpack
from tests.key_custody import assert_no_folder_holds_another_organisations_key
from tests.networks import REPO, cli, cli_json, wait_until, with_free_ports

BFT_NETWORK = REPO / "networks" / "bft-test-network.yaml"
ORGS = ("OrdererOrg", "Org1", "Org2")
DOMAINS = {"OrdererOrg": "example.com", "Org1": "org1.example.com", "Org2": "org2.example.com"}


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """Every organisation initialised, the genesis made from the bundles; no node started."""
    base = tmp_path_factory.mktemp("split")
    config = with_free_ports(BFT_NETWORK, base / "network.yaml")
    for org in ORGS:  # each on its own machine: here, its own folder
        cli("network", "init", str(config), "--org", org, "--dir", str(base / org))
    bundles = [str(base / org / f"{org}.public.tar.gz") for org in ORGS]
    made = cli_json("network", "genesis", str(config), *bundles, "--out", str(base / "g.tar.gz"))
    try:
        yield base, made["genesis_sha256"]
    finally:
        for org in ORGS:
            if (base / org / "network.yaml").exists():
                cli("network", "down", "--dir", str(base / org), "--org", org, check=False)


def test_a_tampered_genesis_archive_is_refused_by_the_command(
    alliance: tuple[Path, dict[str, str]],
) -> None:
    base, hashes = alliance
    files = unpack((base / "g.tar.gz").read_bytes(), "archive")
    block = parse_block(files["channel-artifacts/mychannel.block"])
    block.header.data_hash = bytes(32)  # changed on the way
    files["channel-artifacts/mychannel.block"] = block.SerializeToString()
    forged = base / "forged.tar.gz"
    forged.write_bytes(pack(files))
    folder = base / "Org2"
    result = cli(
        "network", "join-genesis", str(forged), "--dir", str(folder), "--org", "Org2",
        "--genesis-sha256", f"mychannel={hashes['mychannel']}", check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "not the published one" in result.stderr
    assert not (folder / "channel-artifacts").exists()


def test_each_organisation_runs_its_own_nodes_and_a_two_organisation_transaction_commits(
    alliance: tuple[Path, dict[str, str]],
) -> None:
    base, hashes = alliance
    for org in ORGS:
        cli(
            "network", "join-genesis", str(base / "g.tar.gz"), "--dir", str(base / org),
            "--org", org, "--genesis-sha256", f"mychannel={hashes['mychannel']}",
        )  # fmt: skip
    assert_no_folder_holds_another_organisations_key({org: base / org for org in ORGS}, DOMAINS)
    for org in ORGS:
        cli("network", "up", "--dir", str(base / org), "--org", org)
    for org in ("Org1", "Org2"):  # each approves for itself; the second approval commits
        cli("network", "deploy", "--dir", str(base / org), "--org", org)
    # basic's policy is AND(Org1, Org2): Org1's gateway needs Org2's peer to endorse.
    submitted = cli_json(
        "tx", "submit", "--dir", str(base / "Org1"), "--org", "Org1", "-C", "mychannel",
        "-n", "basic", "CreateAsset", "asset-split", "blue", "3", "Ana", "300",
    )  # fmt: skip
    block = submitted["block_number"]

    def every_peer_has_the_block() -> bool:
        nodes = cli_json("network", "status", "--dir", str(base / "Org2"))["nodes"]
        return len(nodes) == 6 and all(n["channels"].get("mychannel", 0) > block for n in nodes)

    wait_until(every_peer_has_the_block, "every node has committed the transaction's block")
    read = cli(
        "tx", "evaluate", "--dir", str(base / "Org2"), "--org", "Org2", "-C", "mychannel",
        "-n", "basic", "ReadAsset", "asset-split",
    )  # fmt: skip
    assert json.loads(read.stdout)["Owner"] == "Ana"
