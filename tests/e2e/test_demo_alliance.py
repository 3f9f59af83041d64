"""The paper's demo alliance as ten processes: four BFT ordering nodes, six peers, events."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from medalliance.app.session import connect_as
from medalliance.node import launcher
from medalliance.node.bootstrap import NetworkLayout
from medalliance.sdk import GatewayError, InMemoryCheckpointer
from tests.networks import (
    DEMO_ALLIANCE,
    cli,
    cli_json,
    free_ports,
    running,
    submit_everywhere,
    wait_until,
    with_free_ports,
)

CHANNEL, VISIT = "alliance", "visit"
PATIENT = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("da")
    with running(with_free_ports(DEMO_ALLIANCE, base / "network.yaml"), base) as directory:
        yield directory


def test_every_node_is_up_and_the_ordering_nodes_agree(alliance: Path) -> None:
    layout = NetworkLayout.load(alliance)
    with connect_as(layout, "SecondaryAMSP") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(VISIT)
        contract.submit_transaction("RegisterVisit", "V-1", PATIENT, "SecondaryAMSP")
    status = cli_json("network", "status", "--dir", str(alliance))
    assert len(status["nodes"]) == 10
    assert {n["health"] for n in status["nodes"]} == {"up"}
    orderers = [n for n in status["nodes"] if n["role"] == "orderer"]
    assert sorted(o["organization"] for o in orderers) == [
        "CityHCMSP", "DistrictHCMSP", "TertiaryAMSP", "TertiaryBMSP"
    ]  # fmt: skip
    assert len({o["height"] for o in orderers}) == 1
    assert orderers[0]["height"] >= 4


def test_chaincode_events_replay_from_a_block_and_resume_from_a_checkpoint(alliance: Path) -> None:
    layout = NetworkLayout.load(alliance)
    with connect_as(layout, "SecondaryBMSP") as gateway:
        network = gateway.get_network(CHANNEL)
        contract = network.get_contract(VISIT)
        first = contract.submit_async("RegisterVisit", arguments=["E-1", PATIENT, "SecondaryBMSP"])
        start = first.get_status().block_number
        contract.submit_transaction("RegisterVisit", "E-2", PATIENT, "SecondaryBMSP")
        checkpoint = InMemoryCheckpointer()
        with network.get_chaincode_events(VISIT, start_block=start, timeout=20) as events:
            event = next(iter(events))
            assert event.event_name == "VisitRegistered"
            assert json.loads(event.payload)["visitNo"] == "E-1"
            assert event.transaction_id == first.transaction_id
            checkpoint.checkpoint_chaincode_event(event)
        with network.get_chaincode_events(VISIT, checkpoint=checkpoint, timeout=20) as events:
            assert json.loads(next(iter(events)).payload)["visitNo"] == "E-2"


def test_block_events_stream_the_ledger_from_genesis(alliance: Path) -> None:
    layout = NetworkLayout.load(alliance)
    with connect_as(layout, "CityHCMSP", "Auditor1") as gateway:
        network = gateway.get_network(CHANNEL)
        with network.get_block_events(start_block=0, timeout=20) as blocks:
            numbers = [block.header.number for block, _ in zip(blocks, range(3), strict=False)]
        assert numbers == [0, 1, 2]
        with network.get_filtered_block_events(start_block=1, timeout=20) as filtered:
            block = next(iter(filtered))
        assert block.number == 1
        assert block.channel_id == CHANNEL
        assert all(len(t.txid) == 64 for t in block.filtered_transactions)


def test_records_hold_rights_from_the_alliance_roles(alliance: Path) -> None:
    layout = NetworkLayout.load(alliance)
    digest = "ab" * 32
    with connect_as(layout, "SecondaryAMSP") as gateway:
        records = gateway.get_network(CHANNEL).get_contract("records")
        args = ("REC-1", PATIENT, digest, "[]", '["TertiaryBMSP"]')
        # SecondaryB's peer is asked next: every peer must hold the record first.
        record = json.loads(submit_everywhere(layout, records, "RegisterRecord", *args))
    # The supervising regulator is always authorised; the other hospitals are not.
    assert record["authorised"] == ["DistrictHCMSP", "SecondaryAMSP", "TertiaryBMSP"]
    with connect_as(layout, "SecondaryBMSP") as gateway:
        records = gateway.get_network(CHANNEL).get_contract("records")
        assert records.evaluate_transaction("IsAuthorised", "REC-1", "SecondaryBMSP") == b"false"


def test_the_referral_workflow_runs_against_the_processes(alliance: Path) -> None:
    """`demo --network`: the paper's fig. 5 over Gateway, Deliver and private-data gRPC."""
    result = cli_json("demo", "--network", str(alliance))
    assert result["ok"], [s for s in result["steps"] if not s["ok"]]
    titles = " | ".join(f"{s['title']}: {s['outcome']}" for s in result["steps"])
    assert "TertiaryAMSP's connector syncs from the chain: imported REF-" in titles
    assert "exactly once" in titles
    assert "settled under AG-SecondaryAMSP-TertiaryAMSP" in titles
    trace = result["steps"][-1]["detail"]
    assert [line.split(":")[-1].strip() for line in trace if line.startswith("referral")] == [
        "REFERRED → ACCEPTED → COMPLETED",
        "REFERRED → ACCEPTED → COMPLETED",
    ]
    # The hospitals' own databases hold the identity; no node's files or logs do.
    held = (alliance / "hospitals" / "TertiaryAMSP.db").read_bytes()
    assert "张三".encode() in held
    for path in [*(alliance / "nodes").rglob("*"), *(alliance / "logs").rglob("*")]:
        if path.is_file():
            assert b"990101194912310036" not in path.read_bytes(), path  # the demo patient's


def test_a_hospital_leaves_by_vote_and_its_certificates_are_refused_after(
    alliance: Path, tmp_path: Path
) -> None:
    update, d = tmp_path / "remove-sb.json", ("--dir", str(alliance))
    cli("channel", "propose-update", *d, "--org", "CityHC", "-C", CHANNEL,
        "--remove-org", "SecondaryHospitalB", "-o", str(update))  # fmt: skip
    layout = NetworkLayout.load(alliance)
    with connect_as(layout, "SecondaryBMSP") as gateway:  # still a member until it commits
        gateway.get_network(CHANNEL).get_contract(VISIT).submit_transaction(
            "RegisterVisit", "SB-1", PATIENT, "SecondaryBMSP"
        )
    # four of six application organisations and three of four ordering organisations
    for org in ("CityHC", "DistrictHC", "TertiaryHospitalA", "TertiaryHospitalB"):
        cli("channel", "sign-update", str(update), *d, "--org", org)
    cli("channel", "submit-update", str(update), *d, "--org", "CityHC")
    with connect_as(layout, "SecondaryBMSP") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(VISIT)
        with pytest.raises(GatewayError) as refused:
            contract.submit_transaction("RegisterVisit", "SB-2", PATIENT, "SecondaryBMSP")
    assert "access denied" in str(refused.value)
    with connect_as(layout, "SecondaryAMSP") as gateway:  # the others carry on
        gateway.get_network(CHANNEL).get_contract(VISIT).submit_transaction(
            "RegisterVisit", "SA-9", PATIENT, "SecondaryAMSP"
        )


def test_a_hospital_joins_by_vote_and_catches_up(alliance: Path, tmp_path: Path) -> None:
    port, ops = free_ports(2)
    entry = {
        "name": "SecondaryHospitalC", "msp_id": "SecondaryCMSP",
        "domain": "secondaryc.example.com", "type": "secondary", "regulator": "DistrictHC",
        "peers": [{"name": "peer0", "host": "127.0.0.1", "port": port, "operations_port": ops}],
        "users": [{"name": "User1", "role": "doctor"}],
    }  # fmt: skip
    org_file, update = tmp_path / "secondary-c.yaml", tmp_path / "add-sc.json"
    org_file.write_text(yaml.safe_dump(entry), encoding="utf-8")
    d = ("--dir", str(alliance))
    added = cli_json("network", "add-org", str(org_file), *d, "--org", "CityHC", "-C", CHANNEL,
                     "-o", str(update))  # fmt: skip
    assert added["description"] == "add organisation SecondaryCMSP to alliance"
    for org in ("CityHC", "DistrictHC", "TertiaryHospitalA", "TertiaryHospitalB"):
        cli("channel", "sign-update", str(update), *d, "--org", org)
    submitted = cli_json("channel", "submit-update", str(update), *d, "--org", "CityHC")
    cli("network", "down", *d)  # restarted, every node trusts the new organisation's TLS CA
    cli("network", "up", *d)
    # Up means healthy, not caught up: the new hospital is a member from the update's block on,
    # for each peer once it holds that block (the new one starts from genesis).
    wait_until(
        lambda: _peers_hold(alliance, submitted["block_number"], but="secondaryb"),
        "every member's peer holds the block that added SecondaryC",
    )
    layout = NetworkLayout.load(alliance)
    with connect_as(layout, "SecondaryCMSP") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(VISIT)
        contract.submit_transaction("RegisterVisit", "SC-1", PATIENT, "SecondaryCMSP")
        assert json.loads(contract.evaluate_transaction("GetVisit", "SC-1"))["hospital"] == (
            "SecondaryCMSP"
        )
    # every node holds the same chain, but the peer of the hospital voted out: it gets no more
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        nodes = cli_json("network", "status", *d)["nodes"]
        heights = {n["name"]: n["height"] for n in nodes}
        if len({h for name, h in heights.items() if "secondaryb" not in name}) == 1:
            break
        time.sleep(0.5)
    assert len({h for name, h in heights.items() if "secondaryb" not in name}) == 1, heights
    assert heights["peer0.secondaryb.example.com"] < heights["peer0.secondaryc.example.com"]


def test_a_revoked_certificate_is_refused_once_the_vote_commits(
    alliance: Path, tmp_path: Path
) -> None:
    layout = NetworkLayout.load(alliance)
    clerk = next((layout.user_msp_dir("SecondaryAMSP", "Clerk1") / "signcerts").glob("*.pem"))
    update, d = tmp_path / "revoke-clerk.json", ("--dir", str(alliance))
    proposed = cli_json("channel", "propose-update", *d, "--org", "SecondaryHospitalA",
                        "-C", CHANNEL, "--revoke", str(clerk), "-o", str(update))  # fmt: skip
    assert proposed["description"].startswith("revoke Clerk1@")
    for org in ("CityHC", "DistrictHC", "TertiaryHospitalA", "TertiaryHospitalB"):
        cli("channel", "sign-update", str(update), *d, "--org", org)
    cli("channel", "submit-update", str(update), *d, "--org", "SecondaryHospitalA")
    with connect_as(layout, "SecondaryAMSP", "Clerk1") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(VISIT)
        with pytest.raises(GatewayError) as refused:
            contract.submit_transaction("RegisterVisit", "RV-1", PATIENT, "SecondaryAMSP")
    assert "access denied" in str(refused.value)
    with connect_as(layout, "SecondaryAMSP", "User1") as gateway:  # its colleagues carry on
        gateway.get_network(CHANNEL).get_contract(VISIT).submit_transaction(
            "RegisterVisit", "RV-2", PATIENT, "SecondaryAMSP"
        )


def test_a_peer_catches_up_from_other_peers_when_no_ordering_node_answers(
    alliance: Path,
) -> None:
    d = ("--dir", str(alliance))
    found = {n["name"]: n for n in cli_json("network", "status", *d)["nodes"]}
    lagging = "peer0.secondarya.example.com"
    os.kill(found[lagging]["pid"], signal.SIGKILL)
    layout = NetworkLayout.load(alliance)
    with connect_as(layout, "TertiaryAMSP") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(VISIT)
        for i in range(3):
            contract.submit_transaction("RegisterVisit", f"TA-{i}", PATIENT, "TertiaryAMSP")
    orderers = [n for n in found.values() if n["role"] == "orderer"]
    for node in orderers:
        os.kill(node["pid"], signal.SIGSTOP)  # every ordering node hangs
    try:  # restart the killed peer alone: the others are running, the orderers hang
        (node,) = [n for n in launcher.nodes_of(layout) if n.name == lagging]
        launcher.start_node(node, alliance)
        target = found["peer0.tertiarya.example.com"]["name"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            heights = {
                n["name"]: n["height"]
                for n in json.loads(cli("--json", "network", "status", *d, check=False).stdout)[
                    "nodes"
                ]
            }
            if heights[lagging] == heights[target]:
                break
            time.sleep(0.5)
        assert heights[lagging] == heights[target], heights
    finally:
        for node in orderers:
            os.kill(node["pid"], signal.SIGCONT)


def _peers_hold(alliance: Path, block: int, *, but: str) -> bool:
    """Every peer (but those whose name contains `but`) holds `block`."""
    # exit 1 while a node is still starting: read the document anyway
    status = cli("--json", "network", "status", "--dir", str(alliance), check=False)
    nodes = json.loads(status.stdout)["nodes"]
    heights = [n["height"] for n in nodes if n["role"] == "peer" and but not in n["name"]]
    return all(h is not None and h > block for h in heights)
