"""docs/deployment.md's set-up on loopback (one folder per organisation of the BFT test
network): only public material is exchanged, a tampered genesis archive is refused, and after
the exchange no folder holds another organisation's key. Starting, deploying and running the
split alliance is followed command by command by the namespace suite (tests/hosts), each
organisation on its own host."""

from __future__ import annotations

from pathlib import Path

import pytest

from medalliance.ledger.block import parse_block
from medalliance.node.public_bundle import pack, unpack
from tests.key_custody import assert_no_folder_holds_another_organisations_key
from tests.networks import REPO, cli, cli_json, with_free_ports

BFT_NETWORK = REPO / "networks" / "bft-test-network.yaml"
ORGS = ("OrdererOrg", "Org1", "Org2")
DOMAINS = {"OrdererOrg": "example.com", "Org1": "org1.example.com", "Org2": "org2.example.com"}


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Every organisation initialised, the genesis made from the bundles; no node started."""
    base = tmp_path_factory.mktemp("split")
    config = with_free_ports(BFT_NETWORK, base / "network.yaml")
    for org in ORGS:  # each on its own machine: here, its own folder
        cli("network", "init", str(config), "--org", org, "--dir", str(base / org))
    bundles = [str(base / org / f"{org}.public.tar.gz") for org in ORGS]
    made = cli_json("network", "genesis", str(config), *bundles, "--out", str(base / "g.tar.gz"))
    return base, made["genesis_sha256"]


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
    before = {path: path.stat().st_mtime_ns for path in folder.rglob("*")}
    result = cli(
        "network", "join-genesis", str(forged), "--dir", str(folder), "--org", "Org2",
        "--genesis-sha256", f"mychannel={hashes['mychannel']}", check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "not the published one" in result.stderr
    assert {path: path.stat().st_mtime_ns for path in folder.rglob("*")} == before


@pytest.fixture(scope="module")
def imported(alliance: tuple[Path, dict[str, str]]) -> Path:
    """Every organisation has imported the genesis archive into its folder."""
    base, hashes = alliance
    for org in ORGS:
        cli(
            "network", "join-genesis", str(base / "g.tar.gz"), "--dir", str(base / org),
            "--org", org, "--genesis-sha256", f"mychannel={hashes['mychannel']}",
        )  # fmt: skip
    return base


def test_each_organisation_imports_the_genesis_and_holds_no_other_organisations_key(
    imported: Path,
) -> None:
    for org in ORGS:
        assert (imported / org / "channel-artifacts" / "mychannel.block").is_file()
    assert_no_folder_holds_another_organisations_key({org: imported / org for org in ORGS}, DOMAINS)


@pytest.mark.parametrize(
    "org_args",
    [
        pytest.param([], id="network up without --org in one organisation's folder is refused"),
        pytest.param(["--org", "Org2"], id="network up of another organisation's nodes is refused"),
    ],
)
def test_a_folder_starts_no_other_organisations_nodes(imported: Path, org_args: list[str]) -> None:
    folder = imported / "Org1"
    result = cli("network", "up", "--dir", str(folder), *org_args, check=False)
    assert result.returncode == 1, result
    assert "another organisation's; pass your own with --org" in result.stderr
    assert not list(folder.glob("run/*.pid")), "a node was started"
