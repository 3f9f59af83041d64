"""Attacks on the alarms a commission keeps: the supervised and the neighbours try to make an
alarm go away.

A hospital raises, closes or deletes an alarm about itself; another district's commission closes
it; a close is replayed. Each must be refused and leave the alarm exactly as it was. The contract
refuses what it is asked (played through the contract harness), and the alarm key's key-level
policy refuses what a member writes past the contract (played on the embedded demo alliance: the
two tertiary hospitals endorse a deletion with their own peers' keys) — and the commission's
alarm runner raises the forgery as an alarm of its own.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import transaction_pb2

from medalliance.alliance.alarm import AlarmContract, alarm_key
from medalliance.alliance.records import RecordsContract
from medalliance.app.alarm_checkpoint import AlarmCheckpoint
from medalliance.app.alarm_runner import AlarmRunner
from medalliance.app.alliance_network import EmbeddedAlliance
from medalliance.database_url import parse_database_url
from medalliance.errors import DuplicateTransaction
from medalliance.identity.cryptogen import load_signer
from medalliance.ledger.tx import (
    new_proposal_response,
    new_signed_proposal,
    new_transaction_payload,
    parse_signed_proposal,
    sign_envelope,
)
from medalliance.node.config import load_network_config
from medalliance.node.embedded import EmbeddedNetwork
from tests.networks import DEMO_ALLIANCE
from tests.unit.alliance.harness import Alliance

CHANNEL = "alliance"
DISTRICT, OTHER, TA, TB, SA = (
    "DistrictHCMSP", "OtherHCMSP", "TertiaryAMSP", "TertiaryBMSP", "SecondaryAMSP",
)  # fmt: skip
PATIENT = "9f86d081884c7d65"
POLICY_FAILURE = transaction_pb2.TxValidationCode.Value("ENDORSEMENT_POLICY_FAILURE")
VALID = transaction_pb2.TxValidationCode.Value("VALID")
ABOUT_TA = json.dumps(["REF-1", TA])


# --- what the contract is asked -------------------------------------------------------------------


@pytest.fixture
def raised() -> Alliance:
    """The district commission has raised ALM-1 about TertiaryA; a note is sealed for each
    commission and for TertiaryA."""
    alliance = Alliance({"alarm": AlarmContract(), "records": RecordsContract()})
    for owner in (DISTRICT, OTHER, TA, SA):
        alliance.ok(owner, "doctor", "records", "RegisterRecord", f"NOTE-{owner}", PATIENT,
                    "ab" * 32, "[]", "[]")  # fmt: skip
    alliance.ok(DISTRICT, "auditor", "alarm", "RaiseAlarm", "ALM-1", "record.access_without_grant",
                "1", "HIGH", ABOUT_TA, json.dumps(["c" * 64]), "")  # fmt: skip
    return alliance


@pytest.mark.parametrize(
    ("msp_id", "role", "function", "args", "status", "message"),
    [
        pytest.param(TA, "doctor", "RaiseAlarm", ["ALM-2", "x", "1", "LOW", ABOUT_TA, "[]", ""],
                     403, "TertiaryAMSP is not a health commission",
                     id="a hospital cannot raise an alarm about itself"),
        pytest.param(TA, "auditor", "RaiseAlarm", ["ALM-2", "x", "1", "LOW", ABOUT_TA, "[]", ""],
                     403, "TertiaryAMSP is not a health commission",
                     id="a hospital user holding an auditor role cannot raise one either"),
        pytest.param(TA, "doctor", "CloseAlarm", ["ALM-1", f"NOTE-{TA}"], 403,
                     "TertiaryAMSP is not a health commission",
                     id="a hospital cannot close an alarm about itself"),
        pytest.param(SA, "clerk", "AcknowledgeAlarm", ["ALM-1", ""], 403,
                     "SecondaryAMSP is not a health commission",
                     id="a hospital cannot acknowledge one"),
        pytest.param(TA, "doctor", "DeleteAlarm", ["ALM-1"], 400, "",
                     id="no function deletes an alarm"),
        pytest.param(TA, "doctor", "RaiseAlarm",
                     ["ALM-1", "x", "1", "LOW", ABOUT_TA, "[]", ""], 403, "not a health commission",
                     id="a hospital cannot overwrite an alarm by raising its id again"),
        pytest.param(OTHER, "auditor", "CloseAlarm", ["ALM-1", f"NOTE-{OTHER}"], 403,
                     "OtherHCMSP cannot close alarm ALM-1: only DistrictHCMSP",
                     id="another district's commission cannot close it"),
        pytest.param(OTHER, "reviewer", "AcknowledgeAlarm", ["ALM-1", ""], 403,
                     "OtherHCMSP cannot acknowledge alarm ALM-1",
                     id="another district's commission cannot acknowledge it"),
        pytest.param(OTHER, "auditor", "GetAlarm", ["ALM-1"], 403,
                     "OtherHCMSP cannot read alarm ALM-1",
                     id="another district's commission cannot read it"),
        pytest.param(DISTRICT, "auditor", "RaiseAlarm",
                     ["ALM-1", "x", "1", "LOW", ABOUT_TA, "[]", ""], 409, "already exists",
                     id="raising the same alarm id again is refused"),
    ],
)  # fmt: skip
def test_the_contract_refuses_and_nothing_changes(
    raised: Alliance,
    msp_id: str,
    role: str,
    function: str,
    args: list[str],
    status: int,
    message: str,
) -> None:
    before = raised.ok(DISTRICT, "auditor", "alarm", "GetAlarm", "ALM-1")
    refused = raised.refused(msp_id, role, "alarm", function, *args)  # asserts no write
    assert refused[0] // 100 == 4
    assert refused[0] == status or function == "DeleteAlarm"
    assert message in refused[1]
    assert raised.ok(DISTRICT, "auditor", "alarm", "GetAlarm", "ALM-1") == before


def test_a_second_close_is_refused_and_the_history_keeps_one_close(raised: Alliance) -> None:
    close = ("alarm", "CloseAlarm", "ALM-1", f"NOTE-{DISTRICT}")
    closed = raised.ok(DISTRICT, "auditor", *close)
    assert raised.refused(DISTRICT, "auditor", *close) == (409, "alarm ALM-1 is already CLOSED")
    assert raised.ok(DISTRICT, "auditor", "alarm", "GetAlarm", "ALM-1") == closed
    assert [h["status"] for h in closed["history"]] == ["OPEN", "CLOSED"]


# --- what a member writes past the contract ------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("alarm-attacks") / "net"
    EmbeddedNetwork.open(load_network_config(DEMO_ALLIANCE), directory).close()
    return directory


@pytest.fixture
def network(template: Path, tmp_path: Path) -> Iterator[EmbeddedNetwork]:
    directory = tmp_path / "net"
    shutil.copytree(template, directory)
    with EmbeddedNetwork.open(load_network_config(DEMO_ALLIANCE), directory) as network:
        auditor = network.client(DISTRICT, "Auditor1")
        done = auditor.submit(CHANNEL, "alarm", "RaiseAlarm", "ALM-1", "record.access_without_grant",
                              "1", "HIGH", ABOUT_TA, json.dumps(["c" * 64]), "")  # fmt: skip
        assert done.valid
        yield network


def alarm_state(network: EmbeddedNetwork) -> dict[str, bytes | None]:
    """ALM-1's committed value on every peer."""
    found = {}
    for peer in network.peers_of(CHANNEL):
        value = peer.channel(CHANNEL).state.get("alarm", alarm_key("ALM-1"))
        found[peer.msp_id] = None if value is None else bytes(value.value)
    return found


def test_two_hospitals_endorsing_a_deletion_of_an_alarm_about_one_of_them_do_not_commit(
    network: EmbeddedNetwork, tmp_path: Path
) -> None:
    before = alarm_state(network)
    client = network.signer(TA, "User1")
    signed, tx_id = new_signed_proposal(
        client, channel_id=CHANNEL, chaincode="alarm", args=[b"DeleteAlarm", b"ALM-1"],
        nonce=os.urandom(24), timestamp_ms=int(network.now().timestamp() * 1000),
    )  # fmt: skip
    kv = kv_rwset_pb2.KVRWSet()
    kv.writes.add(key=alarm_key("ALM-1"), is_delete=True)
    rwset = rwset_pb2.TxReadWriteSet(
        data_model=rwset_pb2.TxReadWriteSet.DataModel.Value("KV"),
        ns_rwset=[rwset_pb2.NsReadWriteSet(namespace="alarm", rwset=kv.SerializeToString())],
    ).SerializeToString()
    proposal = parse_signed_proposal(signed)
    responses = [
        new_proposal_response(
            proposal, load_signer(network.layout.peer_dir(org, "peer0") / "msp", org),
            chaincode_version="1.0", status=200, message="", payload=b"", rwset=rwset, event=None,
        )
        for org in (TA, TB)  # two endorsing hospitals; the key's policy needs the commission
    ]  # fmt: skip
    network.broadcast(CHANNEL, sign_envelope(new_transaction_payload(proposal, responses), client))
    network.cut_blocks(CHANNEL)
    assert network.client(TA).status(CHANNEL, tx_id).code == POLICY_FAILURE
    assert alarm_state(network) == before
    assert None not in before.values()
    # The commission's runner notices the forgery itself: a write the policies refused.
    alliance = EmbeddedAlliance(network, CHANNEL)
    store = AlarmCheckpoint(parse_database_url(str(tmp_path / "alarms.db")), CHANNEL)
    try:
        report = AlarmRunner(alliance, DISTRICT, "Auditor1", store).run()
    finally:
        store.close()
        alliance.close()
    assert [(r.rule_id, r.subjects) for r in report.raised] == [
        ("tx.endorsement_failure", (tx_id, TA))
    ]


def test_a_replayed_close_commits_once(network: EmbeddedNetwork) -> None:
    auditor = network.client(DISTRICT, "Auditor1")
    note = auditor.submit(CHANNEL, "records", "RegisterRecord", "NOTE-1", PATIENT, "ab" * 32, "[]",
                          "[]")  # fmt: skip
    assert note.valid
    closed = auditor.submit(CHANNEL, "alarm", "CloseAlarm", "ALM-1", "NOTE-1")
    assert closed.valid
    after_close = alarm_state(network)
    ledger = network.peers_of(CHANNEL)[0].channel(CHANNEL)
    location = ledger.store.tx_location(closed.tx_id)
    assert location is not None
    envelope = bytes(ledger.store.get_block(location.block_num).data.data[location.tx_num])
    height = ledger.height
    with pytest.raises(DuplicateTransaction, match="was already submitted"):
        network.broadcast(CHANNEL, envelope)  # the same signed close, sent again
    network.cut_blocks(CHANNEL)
    assert alarm_state(network) == after_close
    assert ledger.height == height
    history = json.loads(after_close[DISTRICT] or b"{}")["history"]
    assert [h["status"] for h in history] == ["OPEN", "CLOSED"]
    assert network.client(DISTRICT).status(CHANNEL, closed.tx_id).code == VALID
