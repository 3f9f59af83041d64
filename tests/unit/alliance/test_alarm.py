"""The alarms contract: a commission raises, acknowledges and closes alarms; its chain reads them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from tests.unit.alliance.harness import Alliance

from medalliance.alliance.alarm import AlarmContract, alarm_key
from medalliance.alliance.records import RecordsContract
from medalliance.contracts.key_policy import key_policy
from medalliance.ledger.state import VALIDATION_PARAMETER

PATIENT = "9f86d081884c7d65"
DIGEST = "ab" * 32
DISTRICT, OTHER, CITY, T = "DistrictHCMSP", "OtherHCMSP", "CityHCMSP", "TertiaryAMSP"
SUBJECTS = json.dumps(["REF-1", "TertiaryAMSP"])
DISTRICT_PEER = "'DistrictHCMSP.peer'"
TRIGGERS = json.dumps(["a" * 64, "b" * 64])


@pytest.fixture
def alliance() -> Alliance:
    alliance = Alliance({"alarm": AlarmContract(), "records": RecordsContract()})
    for owner, record in ((DISTRICT, "NOTE-1"), (CITY, "NOTE-C"), (OTHER, "NOTE-O")):
        alliance.ok(owner, "auditor", "records", "RegisterRecord", record, PATIENT, DIGEST, "[]",
                    "[]")  # fmt: skip
    return alliance


def raise_alarm(alliance: Alliance, alarm_id: str = "ALM-1", **kw: str) -> dict[str, Any]:
    args = {"rule": "referral.not_accepted", "version": "1", "severity": "HIGH", "escalate": ""}
    args.update(kw)
    found: dict[str, Any] = alliance.ok(
        kw.get("by", DISTRICT), "auditor", "alarm", "RaiseAlarm", alarm_id, args["rule"],
        args["version"], args["severity"], SUBJECTS, TRIGGERS, args["escalate"],
    )  # fmt: skip
    return found


def test_an_alarm_is_raised_open_with_ids_only_and_the_raisers_key_policy(
    alliance: Alliance,
) -> None:
    result = alliance.call(DISTRICT, "auditor", "alarm", "RaiseAlarm", "ALM-1",
                           "referral.not_accepted", "1", "HIGH", SUBJECTS, TRIGGERS, CITY)  # fmt: skip
    alarm = json.loads(result.payload)
    assert {k: v for k, v in alarm.items() if k not in ("history", "raisedAt")} == {
        "alarmId": "ALM-1",
        "ruleId": "referral.not_accepted",
        "ruleVersion": 1,
        "severity": "HIGH",
        "subjects": ["REF-1", "TertiaryAMSP"],
        "triggers": ["a" * 64, "b" * 64],
        "raisedBy": DISTRICT,
        "escalateTo": CITY,
        "status": "OPEN",
    }
    assert [h["status"] for h in alarm["history"]] == ["OPEN"]
    # Only writes endorsed by the raising commission's peer (and a tertiary hospital's) commit.
    policy = f"AND({DISTRICT_PEER}, OutOf(1, 'TertiaryAMSP.peer', 'TertiaryBMSP.peer'))"
    assert key_policies(result.rwset, "alarm") == {alarm_key("ALM-1"): key_policy(policy)}


def key_policies(rwset: bytes, namespace: str) -> dict[str, bytes]:
    """The key-level policies a transaction's read-write set gives keys of `namespace`."""
    found = {}
    for ns in rwset_pb2.TxReadWriteSet.FromString(rwset).ns_rwset:
        if ns.namespace == namespace:
            for write in kv_rwset_pb2.KVRWSet.FromString(ns.rwset).metadata_writes:
                for entry in write.entries:
                    if entry.name == VALIDATION_PARAMETER:
                        found[write.key] = bytes(entry.value)
    return found


def test_acknowledge_then_close_each_is_a_transaction_in_the_history(alliance: Alliance) -> None:
    raise_alarm(alliance)
    acked = alliance.ok(DISTRICT, "reviewer", "alarm", "AcknowledgeAlarm", "ALM-1", "")
    closed = alliance.ok(CITY, "auditor", "alarm", "CloseAlarm", "ALM-1", "NOTE-C")
    assert acked["status"] == "ACKNOWLEDGED"
    assert [(h["status"], h["by"], h["noteRef"]) for h in closed["history"]] == [
        ("OPEN", DISTRICT, ""),
        ("ACKNOWLEDGED", DISTRICT, ""),
        ("CLOSED", CITY, "NOTE-C"),  # the parent commission may act on its district's alarm
    ]
    assert len({h["txId"] for h in closed["history"]}) == 3


def test_alarms_by_status_for_the_commission_and_those_above(alliance: Alliance) -> None:
    raise_alarm(alliance, "ALM-1")
    raise_alarm(alliance, "ALM-2", severity="LOW")
    raise_alarm(alliance, "ALM-O", by=OTHER)
    alliance.ok(DISTRICT, "auditor", "alarm", "CloseAlarm", "ALM-2", "NOTE-1")

    def ids(msp_id: str, status: str) -> list[str]:
        found = alliance.ok(msp_id, "auditor", "alarm", "AlarmsByStatus", status)
        return [a["alarmId"] for a in found]

    assert ids(DISTRICT, "OPEN") == ["ALM-1"]
    assert ids(DISTRICT, "CLOSED") == ["ALM-2"]
    assert ids(DISTRICT, "") == ["ALM-1", "ALM-2"]
    assert ids(OTHER, "") == ["ALM-O"]
    assert ids(CITY, "OPEN") == ["ALM-1", "ALM-O"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["ALM-9", "Bad Rule", "1", "HIGH", SUBJECTS, TRIGGERS, ""],
            "ruleId must",
            id="a rule id is a lower-case name",
        ),
        pytest.param(
            ["ALM-9", "r.x", "v1", "HIGH", SUBJECTS, TRIGGERS, ""],
            "ruleVersion must",
            id="a rule version is a number",
        ),
        pytest.param(
            ["ALM-9", "r.x", "1", "URGENT", SUBJECTS, TRIGGERS, ""],
            "severity must",
            id="a severity comes from the list",
        ),
        pytest.param(
            ["ALM-9", "r.x", "1", "HIGH", "[]", TRIGGERS, ""],
            "subjects must name 1",
            id="an alarm is about something",
        ),
        pytest.param(
            ["ALM-9", "r.x", "1", "HIGH", '["patient has cancer"]', TRIGGERS, ""],
            "subjects must be a record id",
            id="clinical text as a subject is refused",
        ),
        pytest.param(
            ["ALM-9", "r.x", "1", "HIGH", json.dumps(["S"] * 40), TRIGGERS, ""],
            "subjects must name 1 to 32",
            id="too many subjects are refused",
        ),
        pytest.param(
            ["ALM-9", "r.x", "1", "HIGH", SUBJECTS, "x" * 100_000, ""],
            "at most 8192",
            id="a huge trigger list is refused before it is parsed",
        ),
        pytest.param(
            ["ALM-9", "r.x", "1", "HIGH", SUBJECTS, '{"a": 1}', ""],
            "JSON array",
            id="triggers are a JSON array",
        ),
        pytest.param(
            ["ALM-9", "r.x", "1", "HIGH", SUBJECTS, TRIGGERS, OTHER],
            "escalateTo must",
            id="escalation goes only to a regulator above",
        ),
    ],
)
def test_malformed_alarms_are_refused_and_nothing_is_written(
    alliance: Alliance, args: list[str], message: str
) -> None:
    status, text = alliance.refused(DISTRICT, "auditor", "alarm", "RaiseAlarm", *args)
    assert status == 400
    assert message in text
    assert "cancer" not in text


@pytest.mark.parametrize(
    ("function", "args", "status", "message"),
    [
        pytest.param(
            "CloseAlarm",
            ["ALM-1", ""],
            400,
            "noteRef must be a record id",
            id="closing needs a note",
        ),
        pytest.param(
            "CloseAlarm",
            ["ALM-1", "the patient was fine"],
            400,
            "noteRef must be",
            id="a note is sealed, never typed in",
        ),
        pytest.param(
            "CloseAlarm",
            ["ALM-1", "NOTE-O"],
            412,
            "is not shared with DistrictHCMSP",
            id="a note the commission cannot open is refused",
        ),
        pytest.param(
            "CloseAlarm",
            ["ALM-1", "NOTE-404"],
            404,
            "record NOTE-404 does not exist",
            id="a note that does not exist is refused",
        ),
        pytest.param(
            "AcknowledgeAlarm",
            ["ALM-404", ""],
            404,
            "alarm ALM-404 does not exist",
            id="an unknown alarm is refused",
        ),
    ],
)
def test_handling_needs_a_sealed_note_and_an_existing_alarm(
    alliance: Alliance, function: str, args: list[str], status: int, message: str
) -> None:
    raise_alarm(alliance)
    refused = alliance.refused(DISTRICT, "auditor", "alarm", function, *args)
    assert refused[0] == status
    assert message in refused[1]
    assert "fine" not in refused[1]


def test_an_acknowledged_alarm_is_not_acknowledged_again(alliance: Alliance) -> None:
    raise_alarm(alliance)
    alliance.ok(DISTRICT, "auditor", "alarm", "AcknowledgeAlarm", "ALM-1", "NOTE-1")
    assert alliance.refused(DISTRICT, "auditor", "alarm", "AcknowledgeAlarm", "ALM-1", "") == (
        409,
        "alarm ALM-1 is ACKNOWLEDGED",
    )
