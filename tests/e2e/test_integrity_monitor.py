"""The integrity monitor on real processes: a peer whose world state is edited is named — in
the monitor's status, by `network status` (exit 1), and in an `integrity.divergence` alarm the
district commission's runner commits on the chain; a flood of state-hash requests does not stall
the peer.

The demo alliance (six peers, so a majority exists), with the monitor on the district
commission's peer checking every second (the city's monitor is off: one monitor is enough)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from medalliance.app.session import connect_as
from medalliance.node.bootstrap import NetworkLayout
from tests.networks import DEMO_ALLIANCE, cli, cli_json, running, wait_until, with_free_ports

CHANNEL = "alliance"
MONITOR, TAMPERED = "peer0.districthc.example.com", "peer0.secondaryb.example.com"
AUDITOR = "Auditor1@DistrictHC"
PEERS = {
    f"peer0.{d}.example.com"
    for d in ("cityhc", "districthc", "tertiarya", "tertiaryb", "secondarya", "secondaryb")
}


@pytest.fixture(scope="module")
def network_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("integrity")
    config = yaml.safe_load(DEMO_ALLIANCE.read_text(encoding="utf-8"))
    for org in config["organizations"]:
        for peer in org.get("peers", []):
            peer.pop("integrity_monitor", None)
        if org["name"] == "DistrictHC":
            org["peers"][0]["integrity_monitor"] = {"interval_s": 1, "timeout_s": 5}
    source = base / "source.yaml"
    source.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    with running(with_free_ports(source, base / "network.yaml"), base) as directory:
        yield directory


def monitor_status(network_dir: Path) -> dict[str, Any]:
    node = NetworkLayout.load(network_dir).config.organization("DistrictHC").peers[0]
    with urllib.request.urlopen(f"http://{node.operations_endpoint}/status", timeout=5) as reply:
        integrity: dict[str, Any] = json.loads(reply.read())["integrity"]
    return integrity


def raise_alarm(network_dir: Path, alarm_id: str) -> None:
    """One write through the gateway: an alarm of the district (a key every peer stores)."""
    layout = NetworkLayout.load(network_dir)
    with connect_as(layout, "DistrictHC", "Auditor1") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract("alarm")
        contract.submit_transaction("RaiseAlarm", alarm_id, "manual.review", "1", "LOW",
                                    '["SecondaryBMSP"]', "[]", "")  # fmt: skip


def integrity_alarms(network_dir: Path) -> list[dict[str, Any]]:
    """The integrity alarms on the chain, as the district's audit index lists them."""
    cli_json("audit", "index", "--as", AUDITOR, "--dir", str(network_dir))
    listed = cli_json("audit", "alarms", "list", "--as", AUDITOR, "--dir", str(network_dir))
    return [a for a in listed["rows"] if a["rule_id"] == "integrity.divergence"]


def test_a_tampered_peer_is_named_and_raised_as_an_alarm_healthy_ones_never(
    network_dir: Path,
) -> None:
    seen: list[dict[str, Any]] = []

    def compared_all(check: dict[str, Any]) -> bool:
        seen.append(check)
        return any(set(c["compared"]) == PEERS for c in check["channels"])

    raise_alarm(network_dir, "ALM-INT")
    height = max(
        cli_json("network", "status", "--dir", str(network_dir))["nodes"][0]["channels"].values()
    )
    wait_until(
        lambda: (
            compared_all(check := monitor_status(network_dir))
            and check["channels"][0]["height"] >= height
        ),
        "the monitor compares all six peers at the new height",
    )
    assert all(check["findings"] == [] for check in seen)
    assert cli("network", "status", "--dir", str(network_dir), check=False).returncode == 0
    healthy = cli_json("audit", "alarms", "run", "--as", AUDITOR, "--dir", str(network_dir))
    assert [r for r in healthy["raised"] if r["rule_id"] == "integrity.divergence"] == []

    # Stop SecondaryB's peer, change one value in its world state behind its back, restart it.
    pid = int((network_dir / "run" / f"{TAMPERED}.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not _alive(pid), "the tampered peer stops")
    state = network_dir / "nodes" / TAMPERED / "ledgers" / CHANNEL / "state.db"
    with sqlite3.connect(state) as db:
        key = "\x00alarm\x00ALM-INT\x00"  # the alarm itself, not its index key
        (value,) = db.execute(
            "SELECT value FROM state WHERE ns = 'alarm' AND key = ?", (key,)
        ).fetchone()
        edited = bytes(value).replace(b'"LOW"', b'"NONE"')
        assert edited != bytes(value)
        db.execute("UPDATE state SET value = ? WHERE ns = 'alarm' AND key = ?", (edited, key))
    cli("network", "up", "--dir", str(network_dir))

    def named() -> list[dict[str, Any]]:
        check = monitor_status(network_dir)
        seen.append(check)
        return list(check["findings"])

    wait_until(lambda: named(), "the monitor names the tampered peer")
    (finding,) = seen[-1]["findings"]
    assert (finding["peer"], finding["organization"], finding["kind"]) == (
        TAMPERED,
        "SecondaryBMSP",
        "state-hash",
    )
    assert finding["agreeing"] == sorted(PEERS - {TAMPERED})
    assert {f["peer"] for check in seen for f in check["findings"]} == {TAMPERED}

    # `network status` shows it, as JSON and as a line under the table, and exits 1.
    status = cli("--json", "network", "status", "--dir", str(network_dir), check=False)
    assert status.returncode == 1
    rows = {n["name"]: n for n in json.loads(status.stdout)["nodes"]}
    assert all(r["health"] == "up" for r in rows.values())  # exit 1 is the divergence alone
    assert [f["peer"] for f in rows[MONITOR]["integrity"]["findings"]] == [TAMPERED]
    assert "integrity" not in rows[TAMPERED] or rows[TAMPERED]["integrity"] is None
    text = cli("network", "status", "--dir", str(network_dir), check=False).stdout
    assert f"{TAMPERED} (SecondaryBMSP) diverges on channel {CHANNEL}" in text

    # The district's runner raises it on the chain, naming the peer and the height, once.
    run = cli_json("audit", "alarms", "run", "--as", AUDITOR, "--dir", str(network_dir))
    (raised,) = [r for r in run["raised"] if r["rule_id"] == "integrity.divergence"]
    assert raised["subjects"] == [TAMPERED, "SecondaryBMSP", CHANNEL,
                                  f"height-{finding['height']}"]  # fmt: skip
    again = cli_json("audit", "alarms", "run", "--as", AUDITOR, "--dir", str(network_dir))
    assert [r for r in again["raised"] if r["rule_id"] == "integrity.divergence"] == []
    assert again["already_raised"] >= 1
    (on_chain,) = integrity_alarms(network_dir)
    assert (on_chain["alarm_id"], on_chain["status"], on_chain["severity"]) == (
        raised["alarm_id"], "OPEN", "CRITICAL")  # fmt: skip
    assert (on_chain["subjects"][0], on_chain["raised_by"]) == (TAMPERED, "DistrictHCMSP")

    # ... and the monitor logged it once, at WARNING, naming the peer and never a value.
    log = (network_dir / "logs" / f"{MONITOR}.log").read_text()
    warnings = [json.loads(line) for line in log.splitlines() if '"integrity finding' in line]
    assert [(w["level"], w["divergent_peer"]) for w in warnings] == [("warning", TAMPERED)]
    assert "NONE" not in log


@pytest.mark.parametrize(
    ("org", "role", "code"),
    [
        pytest.param("SecondaryHospitalA", "peers", 200, id="a peer answers with its digests"),
        pytest.param("TertiaryHospitalA", "orderers", 404, id="an ordering node has no state"),
    ],
)
def test_who_answers_state_hash_requests(network_dir: Path, org: str, role: str, code: int) -> None:
    config = NetworkLayout.load(network_dir).config.organization(org)
    node = (config.peers if role == "peers" else config.orderers)[0]
    status, answer = _get(f"http://{node.operations_endpoint}/status?state_hash=1")
    assert status == code
    if code == 200:
        ledger = answer["ledgers"][CHANNEL]
        assert ledger["height"] == answer["channels"][CHANNEL]
        assert len(ledger["blockHash"]) == len(ledger["stateHash"]) == 64


def test_a_flood_of_state_hash_requests_does_not_stall_the_peer(network_dir: Path) -> None:
    """Twelve clients ask the monitor peer for its state hash as fast as they can while
    transactions commit through that peer: every transaction commits, every health check
    answers within its deadline, and the flood gets answers or a clear 503 to retry."""
    layout = NetworkLayout.load(network_dir)
    node = layout.config.organization("DistrictHC").peers[0]
    flood_url = f"http://{node.operations_endpoint}/status?state_hash=1"
    answers: list[int] = []
    refusals: list[str] = []
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            status, body = _get(flood_url)
            answers.append(status)
            if status != 200:
                refusals.append(str(body.get("error")))

    def heights() -> dict[str, int]:
        # check=False: the peer tampered with above still diverges, so the status exits 1
        status = cli("--json", "network", "status", "--dir", str(network_dir), check=False)
        return {n["name"]: n["height"] for n in json.loads(status.stdout)["nodes"]}

    start = heights()[MONITOR]
    threads = [threading.Thread(target=flood, daemon=True) for _ in range(12)]
    for thread in threads:
        thread.start()
    try:
        for n in range(5):
            raise_alarm(network_dir, f"ALM-FLOOD-{n}")  # endorsed and committed via the peer
            status, body = _get(f"http://{node.operations_endpoint}/healthz", timeout=5)
            assert (status, body["status"]) == (200, "OK")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert heights()[MONITOR] >= start + 5
    assert len(answers) > 100  # a real flood ...
    assert 200 in answers  # ... and it was answered
    assert set(answers) <= {200, 503}
    assert set(refusals) <= {"busy with other ledger digest requests; try again"}


def _get(url: str, timeout: float = 10) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.split(") ", 1)[1][:1] != "Z"
