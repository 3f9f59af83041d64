"""The integrity monitor on real processes: a peer whose world state is edited is named.

Fabric's test network plus a second peer for Org1 (three peers, so a majority exists), with the
monitor on peer0.org1 checking every second."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from medalliance.app.session import connect_as
from medalliance.node.bootstrap import NetworkLayout
from tests.networks import TEST_NETWORK, cli, cli_json, running, wait_until, with_free_ports

CHANNEL, BASIC = "mychannel", "basic"
MONITOR, TAMPERED = "peer0.org1.example.com", "peer0.org2.example.com"
PEERS = {MONITOR, "peer1.org1.example.com", TAMPERED}


@pytest.fixture(scope="module")
def network_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("integrity")
    config = yaml.safe_load(TEST_NETWORK.read_text(encoding="utf-8"))
    (org1,) = (o for o in config["organizations"] if o["name"] == "Org1")
    org1["peers"][0]["integrity_monitor"] = {"interval_s": 1, "timeout_s": 5}
    org1["peers"].append({"name": "peer1", "host": "localhost", "port": 1})
    source = base / "source.yaml"
    source.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    with running(with_free_ports(source, base / "network.yaml"), base) as directory:
        yield directory


def monitor_status(network_dir: Path) -> dict[str, Any]:
    node = NetworkLayout.load(network_dir).config.organization("Org1").peers[0]
    with urllib.request.urlopen(f"http://{node.operations_endpoint}/status", timeout=5) as reply:
        integrity: dict[str, Any] = json.loads(reply.read())["integrity"]
    return integrity


def test_healthy_peers_are_never_named_and_a_tampered_one_is(network_dir: Path) -> None:
    seen: list[dict[str, Any]] = []

    def compared_all(check: dict[str, Any]) -> bool:
        seen.append(check)
        return any(set(c["compared"]) == PEERS for c in check["channels"])

    layout = NetworkLayout.load(network_dir)
    with connect_as(layout, "Org1") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(BASIC)
        contract.submit_transaction("CreateAsset", "integrity1", "blue", "5", "Tom", "300")
    height = max(
        cli_json("network", "status", "--dir", str(network_dir))["nodes"][0]["channels"].values()
    )
    wait_until(
        lambda: (
            compared_all(check := monitor_status(network_dir))
            and check["channels"][0]["height"] >= height
        ),
        "the monitor compares all three peers at the new height",
    )
    assert all(check["findings"] == [] for check in seen)

    # Stop Org2's peer, change one value in its world state behind its back, start it again.
    pid = int((network_dir / "run" / f"{TAMPERED}.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not _alive(pid), "the tampered peer stops")
    state = network_dir / "nodes" / TAMPERED / "ledgers" / CHANNEL / "state.db"
    with sqlite3.connect(state) as db:
        changed = db.execute(
            "UPDATE state SET value = ? WHERE ns = ? AND key = ?",
            (b'{"ID":"integrity1","Owner":"Mallory"}', BASIC, "integrity1"),
        ).rowcount
    assert changed == 1
    cli("network", "up", "--dir", str(network_dir))

    def named() -> list[dict[str, Any]]:
        check = monitor_status(network_dir)
        seen.append(check)
        return list(check["findings"])

    wait_until(lambda: named(), "the monitor names the tampered peer")
    (finding,) = seen[-1]["findings"]
    assert (finding["peer"], finding["organization"], finding["kind"]) == (
        TAMPERED,
        "Org2MSP",
        "state-hash",
    )
    assert finding["agreeing"] == sorted(PEERS - {TAMPERED})
    assert {f["peer"] for check in seen for f in check["findings"]} == {TAMPERED}

    # `network status` shows it, as JSON and as a line under the table.
    rows = {n["name"]: n for n in cli_json("network", "status", "--dir", str(network_dir))["nodes"]}
    assert [f["peer"] for f in rows[MONITOR]["integrity"]["findings"]] == [TAMPERED]
    assert "integrity" not in rows[TAMPERED] or rows[TAMPERED]["integrity"] is None
    text = cli("network", "status", "--dir", str(network_dir)).stdout
    assert f"{TAMPERED} (Org2MSP) diverges on channel {CHANNEL}" in text
    # ... and the monitor logged it once, at WARNING, naming the peer and never a value.
    log = (network_dir / "logs" / f"{MONITOR}.log").read_text()
    warnings = [json.loads(line) for line in log.splitlines() if '"integrity finding' in line]
    assert [(w["level"], w["divergent_peer"]) for w in warnings] == [("warning", TAMPERED)]
    assert "Mallory" not in log


@pytest.mark.parametrize(
    ("org", "role", "code"),
    [
        pytest.param("Org2", "peers", 200, id="a peer answers with its ledger digests"),
        pytest.param("OrdererOrg", "orderers", 404, id="an ordering node keeps no world state"),
    ],
)
def test_who_answers_state_hash_requests(network_dir: Path, org: str, role: str, code: int) -> None:
    config = NetworkLayout.load(network_dir).config.organization(org)
    node = (config.peers if role == "peers" else config.orderers)[0]
    url = f"http://{node.operations_endpoint}/status?state_hash=1"
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            answer, status = json.loads(reply.read()), reply.status
    except urllib.error.HTTPError as refused:
        answer, status = json.loads(refused.read()), refused.code
    assert status == code
    if code == 200:
        ledger = answer["ledgers"][CHANNEL]
        assert ledger["height"] == answer["channels"][CHANNEL]
        assert len(ledger["blockHash"]) == len(ledger["stateHash"]) == 64


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.split(") ", 1)[1][:1] != "Z"
