"""Snapshots and backups of real node processes (issue 18): a peer rejoined from a snapshot taken
of a running peer, and a peer backed up while running, wiped and restored; both catch up to the
same height and state hash as the others."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from medalliance.app.session import connect_as
from medalliance.node import launcher
from medalliance.node.bootstrap import NetworkLayout
from medalliance.sdk import GatewayError
from tests.networks import cli, cli_json, wait_until

CHANNEL, BASIC = "mychannel", "basic"
ORG2_PEER = "peer0.org2.example.com"
ORG1_PEER = "peer0.org1.example.com"


def _submit(network_dir: Path, prefix: str, count: int) -> None:
    with connect_as(NetworkLayout.load(network_dir), "Org1") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(BASIC)
        for i in range(count):
            contract.submit_transaction("CreateAsset", f"{prefix}{i}", "red", "1", "Bo", "10")


def _digests(network_dir: Path) -> dict[str, tuple[int, str] | None]:
    out: dict[str, tuple[int, str] | None] = {}
    for node in launcher.nodes_of(NetworkLayout.load(network_dir)):
        if node.role != "peer":
            continue
        answer = launcher.probe(node, "/status?state_hash=1", timeout=5.0)
        ledger = (answer or {}).get("ledgers", {}).get(CHANNEL)
        out[node.name] = (ledger["height"], ledger["stateHash"]) if ledger else None
    return out


def _converged(network_dir: Path, height_at_least: int) -> bool:
    digests = set(_digests(network_dir).values())
    if len(digests) != 1:
        return False
    (only,) = digests
    return only is not None and only[0] >= height_at_least


def _kill(network_dir: Path, host: str) -> None:
    pid = int((network_dir / "run" / f"{host}.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not _alive(pid), f"{host} is gone")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.split(") ", 1)[1][:1] != "Z"


def _height(network_dir: Path) -> int:
    found = _digests(network_dir)[ORG1_PEER]
    assert found is not None
    return found[0]


def test_a_peer_rejoins_from_a_snapshot_of_a_running_peer_and_catches_up(
    network_dir: Path, tmp_path: Path
) -> None:
    _submit(network_dir, "before-snap", 3)
    ledger = network_dir / "nodes" / ORG1_PEER / "ledgers" / CHANNEL
    with connect_as(NetworkLayout.load(network_dir), "Org1") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(BASIC)
        during = [  # the peer commits these while the snapshot is taken
            contract.submit_async("CreateAsset", arguments=[f"during{i}", "red", "1", "Bo", "10"])
            for i in range(10)
        ]
        taken = cli_json("ledger", "snapshot", "create", str(ledger), "-o", str(tmp_path / "snap"))
        assert all(tx.get_status().successful for tx in during)
    number = taken["last_block_number"]
    verified = cli_json(
        "ledger", "snapshot", "verify", str(tmp_path / "snap"), "--ledger", str(ledger)
    )
    assert verified["snapshot_hash"] == taken["snapshot_hash"]

    config = network_dir / "nodes" / ORG2_PEER / "node.yaml"
    _kill(network_dir, ORG2_PEER)
    shutil.rmtree(network_dir / "nodes" / ORG2_PEER / "ledgers" / CHANNEL)
    cli("ledger", "snapshot", "join", str(tmp_path / "snap"), "--config", str(config))
    cli("network", "up", "--dir", str(network_dir))
    _submit(network_dir, "after-snap", 3)  # endorsed by Org2 on the snapshot's state
    target = _height(network_dir)
    wait_until(lambda: _converged(network_dir, target), "both peers agree on height and state")

    with connect_as(NetworkLayout.load(network_dir), "Org2") as gateway:
        network = gateway.get_network(CHANNEL)
        assert (
            json.loads(
                network.get_contract(BASIC).evaluate_transaction("ReadAsset", "before-snap0")
            )["Owner"]
            == "Bo"
        )
        events = network.get_block_events(start_block=number, timeout=10)
        with pytest.raises(GatewayError, match="NOT_FOUND"):
            next(iter(events))
    (verdict,) = cli_json("ledger", "verify", str(network_dir / "nodes" / ORG2_PEER))["ledgers"]
    assert (verdict["intact"], verdict["first_block"]) == (True, number + 1)


def test_a_peer_backed_up_while_running_is_restored_after_a_wipe_and_catches_up(
    network_dir: Path, tmp_path: Path
) -> None:
    config = network_dir / "nodes" / ORG2_PEER / "node.yaml"
    archive = tmp_path / "peer.tar.gz"
    _submit(network_dir, "before-backup", 3)
    backed = cli_json("node", "backup", "--config", str(config), "-o", str(archive))
    assert backed["channels"] == [CHANNEL]
    _submit(network_dir, "after-backup", 5)

    _kill(network_dir, ORG2_PEER)
    shutil.rmtree(network_dir / "nodes" / ORG2_PEER / "ledgers")
    restored = cli_json("node", "restore", str(archive), "--config", str(config))
    assert restored["node"] == ORG2_PEER
    cli("network", "up", "--dir", str(network_dir))
    target = _height(network_dir)
    wait_until(lambda: _converged(network_dir, target), "both peers agree on height and state")
    _submit(network_dir, "after-restore", 2)  # the restored peer endorses again
    target = _height(network_dir)
    wait_until(lambda: _converged(network_dir, target), "both peers agree after new blocks")


def test_an_ordering_node_backup_is_taken_but_never_restored_over_its_consensus_state(
    network_dir: Path, tmp_path: Path
) -> None:
    config = network_dir / "nodes" / "orderer.example.com" / "node.yaml"
    cli_json("node", "backup", "--config", str(config), "-o", str(tmp_path / "orderer"))
    before = sorted(p.name for p in (config.parent / "ledgers").rglob("*"))
    refused = cli(
        "node", "restore", str(tmp_path / "orderer"), "--config", str(config), check=False
    )
    assert refused.returncode == 1
    assert "vote again" in refused.stderr
    assert sorted(p.name for p in (config.parent / "ledgers").rglob("*")) == before
