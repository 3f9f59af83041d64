"""The visit registry (就诊号): unique visits, pseudonymous patients, moves only by the holder."""

from __future__ import annotations

import json

import pytest
from fabric_protos.peer import chaincode_event_pb2
from tests.conftest import Org
from tests.unit.contracts.fakes import DictState, tx_context

from medalliance.alliance.visit import VisitContract
from medalliance.contracts.simulation import SimulationResult, simulate
from medalliance.identity.msp import MspManager

PATIENT = "9f86d081884c7d65"  # a pseudonym: 16 hex characters


class Ledger:
    def __init__(self, orgs: dict[str, Org], msps: MspManager) -> None:
        self.orgs, self.msps, self.state = orgs, msps, DictState()

    def call(self, msp_id: str, *args: str, tx_id: str = "tx1") -> SimulationResult:
        tx = tx_context(self.orgs[msp_id], self.msps, tx_id=tx_id)
        result = simulate(VisitContract(), "visit", [a.encode() for a in args], self.state, tx)
        if result.status == 200:
            self.state.commit(result)
        return result


@pytest.fixture
def ledger(org1: Org, org2: Org, msps: MspManager) -> Ledger:
    return Ledger({"Org1MSP": org1, "Org2MSP": org2}, msps)


def test_a_registered_visit_is_stored_and_announced(ledger: Ledger) -> None:
    result = ledger.call("Org1MSP", "RegisterVisit", "V-1", PATIENT, "Org1MSP")
    assert result.status == 200, result.message
    record = json.loads(ledger.call("Org2MSP", "GetVisit", "V-1").payload)
    assert record == {
        "visitNo": "V-1",
        "patientRef": PATIENT,
        "hospital": "Org1MSP",
        "registeredAt": "2025-11-28T12:00:00.123Z",
        "registeredBy": "Org1MSP",
    }
    assert result.event is not None
    event = chaincode_event_pb2.ChaincodeEvent.FromString(result.event)
    assert (event.event_name, json.loads(event.payload)) == (
        "VisitRegistered",
        {"visitNo": "V-1", "hospital": "Org1MSP"},
    )


@pytest.mark.parametrize(
    ("caller", "args", "status", "message"),
    [
        pytest.param(
            "Org2MSP",
            ["V-2", PATIENT, "Org1MSP"],
            403,
            "caller of Org2MSP cannot register a visit at Org1MSP",
            id="a hospital registers visits only for itself",
        ),
        pytest.param(
            "Org1MSP",
            ["V-1", PATIENT, "Org1MSP"],
            409,
            "visit V-1 already exists",
            id="a visit number is unique",
        ),
        pytest.param(
            "Org1MSP",
            ["V-2", "Zhang San 110101199003071234", "Org1MSP"],
            400,
            "patientRef must be a pseudonym",
            id="a raw patient identity is refused",
        ),
        pytest.param(
            "Org1MSP",
            ["V-2", "abc123", "Org1MSP"],
            400,
            "patientRef must be a pseudonym",
            id="a too short pseudonym is refused",
        ),
        pytest.param(
            "Org1MSP",
            ["V 2", PATIENT, "Org1MSP"],
            400,
            "visit number",
            id="a visit number with spaces is refused",
        ),
        pytest.param(
            "Org1MSP",
            ["V-2", PATIENT],
            400,
            "RegisterVisit takes 3 arguments, got 2",
            id="the argument count is checked",
        ),
    ],
)
def test_registration_rules(
    ledger: Ledger, caller: str, args: list[str], status: int, message: str
) -> None:
    ledger.call("Org1MSP", "RegisterVisit", "V-1", PATIENT, "Org1MSP")
    result = ledger.call(caller, "RegisterVisit", *args)
    assert (result.status, result.rwset) == (status, b"")
    assert message in result.message


def test_an_unknown_visit_does_not_exist(ledger: Ledger) -> None:
    result = ledger.call("Org1MSP", "GetVisit", "V-9")
    assert (result.status, result.message) == (404, "visit V-9 does not exist")


def test_visits_at_a_hospital_are_sorted_by_visit_number(ledger: Ledger) -> None:
    for visit_no, msp_id in [("V-3", "Org1MSP"), ("V-1", "Org1MSP"), ("V-2", "Org2MSP")]:
        assert ledger.call(msp_id, "RegisterVisit", visit_no, PATIENT, msp_id).status == 200
    visits = json.loads(ledger.call("Org2MSP", "VisitsAt", "Org1MSP").payload)
    assert [v["visitNo"] for v in visits] == ["V-1", "V-3"]


@pytest.mark.parametrize(
    ("caller", "target", "status", "message"),
    [
        pytest.param("Org1MSP", "Org2MSP", 200, "", id="the holding hospital refers the patient"),
        pytest.param(
            "Org2MSP",
            "Org2MSP",
            403,
            "patient of visit V-3 is at Org1MSP, not Org2MSP",
            id="another hospital cannot take the patient",
        ),
        pytest.param(
            "Org1MSP",
            "Org1MSP",
            409,
            "visit V-3 is already at Org1MSP",
            id="a visit does not move to where it is",
        ),
        pytest.param(
            "Org1MSP",
            "Org9MSP",
            404,
            "Org9MSP is not a member of channel alliance",
            id="a visit moves only to a channel member",
        ),
    ],
)
def test_transfer_rules(
    ledger: Ledger, caller: str, target: str, status: int, message: str
) -> None:
    ledger.call("Org1MSP", "RegisterVisit", "V-3", PATIENT, "Org1MSP")
    result = ledger.call(caller, "TransferVisit", "V-3", target)
    assert (result.status, result.message) == (status, message)
    held_by = json.loads(ledger.call("Org1MSP", "GetVisit", "V-3").payload)["hospital"]
    assert held_by == (target if status == 200 else "Org1MSP")


def test_the_old_hospital_cannot_move_a_referred_visit(ledger: Ledger) -> None:
    ledger.call("Org1MSP", "RegisterVisit", "V-3", PATIENT, "Org1MSP")
    assert ledger.call("Org1MSP", "TransferVisit", "V-3", "Org2MSP").status == 200
    again = ledger.call("Org1MSP", "TransferVisit", "V-3", "Org2MSP")
    assert (again.status, again.message) == (403, "patient of visit V-3 is at Org2MSP, not Org1MSP")


def test_queries_cannot_write(ledger: Ledger) -> None:
    ledger.call("Org1MSP", "RegisterVisit", "V-1", PATIENT, "Org1MSP")
    result = ledger.call("Org1MSP", "GetVisit", "V-1")
    assert result.status == 200
    assert b"VisitRegistered" not in result.rwset
