"""Fabric's test network as real processes with every peer's world state on PostgreSQL.

`network init` a config carrying `state_database`, `network up`, submit and evaluate through the
gateway, kill a peer, commit more without it, `network up` again: the restarted peer catches up
from the ordering service into its PostgreSQL schema and ends with the other peer's state hash.
`ledger verify` then rebuilds every ledger into scratch SQLite and finds each peer's state equal.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from medalliance.app.session import connect_as
from medalliance.database_url import parse_database_url
from medalliance.ledger.world_state import open_state, state_schema
from medalliance.node.bootstrap import NetworkLayout
from tests.networks import TEST_NETWORK, cli, cli_json, running, wait_until, with_free_ports

CHANNEL, BASIC = "mychannel", "basic"
PEERS = ("peer0.org1.example.com", "peer0.org2.example.com")


@pytest.fixture
def pg_network(tmp_path: Path, postgres_url: str) -> Iterator[Path]:
    config_path = with_free_ports(TEST_NETWORK, tmp_path / "network.yaml")
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["state_database"] = postgres_url
    # Either organisation may endorse, so the network commits while one peer is down.
    (channel,) = config["channels"]
    channel["contracts"][0]["endorsement_policy"] = "OR('Org1MSP.peer', 'Org2MSP.peer')"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    with running(config_path, tmp_path) as directory:
        yield directory


def state_hashes(postgres_url: str) -> set[bytes]:
    """Each peer's state hash, read from its own schema while the peers run."""
    url = parse_database_url(postgres_url)
    hashes = set()
    for host in PEERS:
        state = open_state(url, sqlite_path=Path(), schema=state_schema(host, CHANNEL))
        try:
            hashes.add(state.state_hash())
        finally:
            state.close()
    return hashes


def heights(directory: Path) -> dict[str, int]:
    status = cli_json("network", "status", "--dir", str(directory))
    return {n["name"]: n["height"] for n in status["nodes"]}


def test_a_killed_postgresql_peer_catches_up_to_the_same_state(
    pg_network: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = NetworkLayout.load(pg_network)
    with connect_as(layout, "Org1") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(BASIC)
        contract.submit_transaction("CreateAsset", "pg1", "blue", "5", "Tom", "300")
        assert json.loads(contract.evaluate_transaction("ReadAsset", "pg1"))["Owner"] == "Tom"
        wait_until(lambda: len(set(heights(pg_network).values())) == 1, "both peers commit")
        assert len(state_hashes(postgres_url)) == 1

        pid_file = pg_network / "run" / f"{PEERS[1]}.pid"
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        for i in range(5):
            contract.submit_transaction("CreateAsset", f"down{i}", "red", "1", "Bo", "10")
        contract.submit_transaction("TransferAsset", "pg1", "Ana")

    cli("network", "up", "--dir", str(pg_network))
    wait_until(
        lambda: (
            len(set(heights(pg_network).values())) == 1 and len(state_hashes(postgres_url)) == 1
        ),
        "the restarted peer catches up to the same state",
    )
    with connect_as(layout, "Org2") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(BASIC)
        assert json.loads(contract.evaluate_transaction("ReadAsset", "down4"))["Owner"] == "Bo"
        assert json.loads(contract.evaluate_transaction("ReadAsset", "pg1"))["Owner"] == "Ana"

    # The peers recorded their state's URL without the password; libpq takes it from the env.
    monkeypatch.setenv("PGPASSWORD", urlsplit(postgres_url).password or "")
    report = cli_json("ledger", "verify", str(pg_network / "nodes"))
    peer_ledgers = [v for v in report["ledgers"] if v["path"].startswith("peer0.")]
    assert len(peer_ledgers) == 2
    assert all(v["node_state_matches"] is True for v in peer_ledgers), peer_ledgers
    assert report["intact"]
