"""Remote consultation: record access granted for its duration, settled when closed."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from tests.unit.alliance.harness import Alliance
from tests.unit.alliance.test_alarm import key_policies
from tests.unit.alliance.test_referral import DISTRICT, PATIENT, share

from medalliance.alliance.consultation import ConsultationContract, consultation_key
from medalliance.alliance.records import RecordsContract
from medalliance.alliance.settlement import SettlementContract
from medalliance.alliance.visit import VisitContract
from medalliance.contracts.key_policy import key_policy

A, T, OTHER = "SecondaryAMSP", "TertiaryAMSP", "TertiaryBMSP"
QUESTION, REPORT = "a" * 64, "b" * 64
SIGNATURE = base64.b64encode(b"\x30" * 70).decode()
DEADLINE = "2025-11-28T13:00:00Z"  # an hour after the harness's first transaction


@pytest.fixture
def alliance() -> Alliance:
    alliance = Alliance(
        {
            "visit": VisitContract(),
            "records": RecordsContract(),
            "settlement": SettlementContract(),
            "consultation": ConsultationContract(),
        }
    )
    alliance.ok(A, "doctor", "visit", "RegisterVisit", "V-1", PATIENT, A)
    share(alliance, A, "R-1", [])
    share(alliance, A, "R-2", [])
    return alliance


def request(alliance: Alliance, *, records: tuple[str, ...] = ("R-1", "R-2"), **kw: str) -> Any:
    args = {"id": "C-1", "visit": "V-1", "consultant": T, "deadline": DEADLINE, **kw}
    return alliance.call(
        kw.get("caller", A), kw.get("role", "doctor"), "consultation", "RequestConsultation",
        args["id"], args["visit"], args["consultant"], "03", QUESTION, json.dumps(list(records)),
        args["deadline"],
    )  # fmt: skip


def authorised(alliance: Alliance, record_id: str) -> list[str]:
    found: list[str] = alliance.ok(A, "doctor", "records", "GetRecord", record_id)["authorised"]
    return found


def reported(alliance: Alliance, *, requested: bool = False) -> None:
    if not requested:
        assert request(alliance).status == 200
    alliance.ok(T, "doctor", "consultation", "AcceptConsultation", "C-1")
    alliance.ok(T, "doctor", "consultation", "ScheduleConsultation", "C-1", "2025-11-28T12:30:00Z")
    alliance.ok(T, "doctor", "consultation", "SubmitReport", "C-1", REPORT, SIGNATURE)


def test_a_consultation_grants_access_for_its_duration_and_closes_settled(
    alliance: Alliance,
) -> None:
    assert T not in authorised(alliance, "R-1")
    result = request(alliance)
    assert result.status == 200, result.message
    assert json.loads(result.payload)["status"] == "REQUESTED"
    assert T in authorised(alliance, "R-1")
    assert T in authorised(alliance, "R-2")
    reported(alliance, requested=True)
    closed = alliance.ok(A, "doctor", "consultation", "CloseConsultation", "C-1")
    assert closed["status"] == "CLOSED"
    assert closed["settlement"] == {"executed": False, "reason": "no active agreement"}
    assert closed["reportDigest"] == REPORT
    assert closed["reportSignature"] == SIGNATURE
    assert T not in authorised(alliance, "R-1")
    assert T not in authorised(alliance, "R-2")
    log = alliance.ok(A, "doctor", "records", "AccessLog", "R-1")
    assert [(e["action"], e["target"]) for e in log] == [("grant", T), ("revoke", T)]
    # every party and the regulator read it; listing by hospital and by visit finds it
    for reader, role in ((A, "doctor"), (T, "doctor"), (DISTRICT, "auditor")):
        found = alliance.ok(reader, role, "consultation", "GetConsultation", "C-1")
        assert found["status"] == "CLOSED"
    assert [c["consultationId"] for c in alliance.ok(T, "doctor", "consultation", "ByHospital", T)] == ["C-1"]  # fmt: skip
    assert [c["consultationId"] for c in alliance.ok(A, "doctor", "consultation", "ForVisit", "V-1")] == ["C-1"]  # fmt: skip


def test_closing_charges_the_agreements_consultation_fee(alliance: Alliance) -> None:
    terms = {"version": 2, "consultation": {"amountCents": 15000, "payer": "requester"}}
    alliance.ok(A, "clerk", "settlement", "ProposeAgreement", "AG-1", T, json.dumps(terms))
    alliance.ok(T, "clerk", "settlement", "AcceptAgreement", "AG-1")
    reported(alliance)
    closed = alliance.ok(A, "doctor", "consultation", "CloseConsultation", "C-1")
    settled = closed["settlement"]
    assert settled["executed"] is True
    assert (settled["payer"], settled["payee"], settled["amountCents"]) == (A, T, 15000)
    statement = alliance.ok(T, "clerk", "settlement", "Statement", "AG-1", settled["period"])
    assert [e["consultationId"] for e in statement["entries"]] == ["C-1"]


def test_a_record_the_consultant_already_read_is_neither_granted_nor_revoked(
    alliance: Alliance,
) -> None:
    share(alliance, A, "R-3", [T])
    assert json.loads(request(alliance, records=("R-1", "R-3")).payload)["granted"] == ["R-1"]
    alliance.ok(T, "doctor", "consultation", "DeclineConsultation", "C-1", "NO_CAPACITY")
    assert T not in authorised(alliance, "R-1")
    assert T in authorised(alliance, "R-3")


def test_a_grant_with_the_consultants_wrapped_key_commits_it(alliance: Alliance) -> None:
    result = alliance.call(
        A, "doctor", "consultation", "RequestConsultation", "C-1", "V-1", T, "03", QUESTION,
        json.dumps({"R-1": "d" * 64}), DEADLINE,
    )  # fmt: skip
    assert result.status == 200, result.message
    assert alliance.ok(A, "doctor", "records", "GetVersion", "R-1", "1")["keys"][T] == "d" * 64
    assert alliance.ok(A, "doctor", "records", "IsAuthorised", "R-1", T) is True


def test_a_record_is_granted_by_one_open_consultation_at_a_time(alliance: Alliance) -> None:
    request(alliance, records=("R-1",))
    second = request(alliance, id="C-2", records=("R-1",))
    assert (second.status, second.message) == (
        409,
        "record R-1 is granted to TertiaryAMSP by another open consultation; close that one first",
    )
    alliance.ok(T, "doctor", "consultation", "DeclineConsultation", "C-1", "NO_CAPACITY")
    assert request(alliance, id="C-2", records=("R-1",)).status == 200


def test_declining_revokes_the_grants(alliance: Alliance) -> None:
    request(alliance)
    declined = alliance.ok(
        T, "doctor", "consultation", "DeclineConsultation", "C-1", "OUT_OF_SCOPE"
    )
    assert declined["status"] == "DECLINED"
    assert T not in authorised(alliance, "R-1")
    assert alliance.refused(T, "doctor", "consultation", "AcceptConsultation", "C-1") == (
        409, "consultation C-1 is DECLINED"
    )  # fmt: skip


def test_a_passed_deadline_expires_it_and_revokes(alliance: Alliance) -> None:
    request(alliance)
    alliance.ok(T, "doctor", "consultation", "AcceptConsultation", "C-1")
    assert alliance.refused(A, "doctor", "consultation", "ExpireConsultation", "C-1") == (
        409, f"consultation C-1 is due by {DEADLINE.replace('Z', '.000Z')}"
    )  # fmt: skip
    alliance.clock_ms += 2 * 3600 * 1000
    assert alliance.refused(T, "doctor", "consultation", "SubmitReport", "C-1", REPORT,
                            SIGNATURE)[0] == 409  # fmt: skip
    expired = alliance.ok(DISTRICT, "reviewer", "consultation", "ExpireConsultation", "C-1")
    assert expired["status"] == "EXPIRED"
    assert T not in authorised(alliance, "R-1")
    assert alliance.refused(A, "doctor", "consultation", "ExpireConsultation", "C-1")[0] == 409


@pytest.mark.parametrize(
    ("kw", "records", "status", "message"),
    [
        pytest.param(
            {"caller": OTHER},
            ("R-1",),
            403,
            "patient of visit V-1 is at SecondaryAMSP, not TertiaryBMSP",
            id="only the hospital holding the visit requests",
        ),
        pytest.param(
            {"role": "clerk"},
            ("R-1",),
            403,
            "role doctor required, caller has clerk",
            id="a doctor requests",
        ),
        pytest.param(
            {"consultant": A},
            ("R-1",),
            400,
            "a consultation asks another hospital, not the requester",
            id="not the requester itself",
        ),
        pytest.param(
            {"consultant": DISTRICT},
            ("R-1",),
            400,
            "DistrictHCMSP is a regulator organisation, not a hospital",
            id="the consultant is a hospital",
        ),
        pytest.param(
            {},
            ("R-X",),
            403,
            "record R-X is not a record of visit V-1's patient owned by SecondaryAMSP",
            id="only records of the visit's patient",
        ),
        pytest.param(
            {},
            ("R-T",),
            403,
            "record R-T is not a record of visit V-1's patient owned by SecondaryAMSP",
            id="only the requester's own records",
        ),
        pytest.param(
            {},
            ("R-1", "R-1"),
            400,
            "recordIds must be a JSON array of 1 to 20 distinct record ids, or an object "
            "of record id -> the consultant's wrapped-key commitment",
            id="records listed once",
        ),
        pytest.param(
            {"deadline": "2025-11-28T11:00:00Z"},
            ("R-1",),
            400,
            "the deadline must be after the request",
            id="a deadline ahead",
        ),
    ],
)
def test_request_rules(
    alliance: Alliance, kw: dict[str, str], records: tuple[str, ...], status: int, message: str
) -> None:
    alliance.ok(A, "doctor", "records", "RegisterRecord", "R-X", "0" * 16, "c" * 64, "[]", "[]")
    share(alliance, T, "R-T", [A])
    before = dict(alliance.state.data)
    result = request(alliance, records=records, **kw)
    assert (result.status, result.message) == (status, message)
    assert result.rwset == b""
    assert alliance.state.data == before


@pytest.mark.parametrize(
    ("msp_id", "function", "args", "message"),
    [
        pytest.param(OTHER, "AcceptConsultation", (), "caller of TertiaryBMSP cannot accept consultation C-1 for TertiaryAMSP",
                     id="a third hospital cannot accept"),
        pytest.param(OTHER, "GetConsultation", (), "TertiaryBMSP is neither a party to consultation C-1 nor their regulator",
                     id="a third hospital cannot read it"),
        pytest.param(A, "AcceptConsultation", (), "caller of SecondaryAMSP cannot accept consultation C-1 for TertiaryAMSP",
                     id="the requester cannot accept for the consultant"),
        pytest.param(A, "SubmitReport", (REPORT, SIGNATURE), "caller of SecondaryAMSP cannot report on consultation C-1 for TertiaryAMSP",
                     id="a report by the requester"),
        pytest.param(OTHER, "SubmitReport", (REPORT, SIGNATURE), "caller of TertiaryBMSP cannot report on consultation C-1 for TertiaryAMSP",
                     id="a report by a third hospital"),
        pytest.param(T, "CloseConsultation", (), "caller of TertiaryAMSP cannot close consultation C-1 for SecondaryAMSP",
                     id="the consultant cannot close"),
        pytest.param(OTHER, "ByHospital", (T,), "TertiaryBMSP is neither a party to the consultations of TertiaryAMSP nor their regulator",
                     id="a third hospital cannot list another's"),
    ],
)  # fmt: skip
def test_hostile_members_are_refused(
    alliance: Alliance, msp_id: str, function: str, args: tuple[str, ...], message: str
) -> None:
    request(alliance)
    alliance.ok(T, "doctor", "consultation", "AcceptConsultation", "C-1")
    if function == "CloseConsultation":
        alliance.ok(T, "doctor", "consultation", "SubmitReport", "C-1", REPORT, SIGNATURE)
    target = args[0] if function == "ByHospital" else "C-1"
    rest = args[1:] if function == "ByHospital" else args
    assert alliance.refused(msp_id, "doctor", "consultation", function, target, *rest) == (
        403, message
    )  # fmt: skip
    assert alliance.ok(OTHER, "doctor", "consultation", "ForVisit", "V-1") == []


def test_a_third_hospital_gets_no_access_and_cannot_revoke_directly(alliance: Alliance) -> None:
    request(alliance)
    assert OTHER not in authorised(alliance, "R-1")
    # the consultant cannot use the consultation's revocation right outside the contract
    assert alliance.refused(T, "doctor", "records", "Revoke", "R-1", T)[0] == 403
    assert alliance.refused(OTHER, "doctor", "records", "Revoke", "R-1", T)[0] == 403


def test_a_replayed_close_is_refused(alliance: Alliance) -> None:
    reported(alliance)
    alliance.ok(A, "doctor", "consultation", "CloseConsultation", "C-1")
    assert alliance.refused(A, "doctor", "consultation", "CloseConsultation", "C-1") == (
        409, "consultation C-1 is CLOSED"
    )  # fmt: skip
    assert request(alliance).status == 409  # the id cannot be reused either


def test_settlement_executes_only_for_the_consultation_contract(alliance: Alliance) -> None:
    status, _ = alliance.refused(A, "clerk", "settlement", "ExecuteConsultation", "C-1", A, T)
    assert status == 403


@pytest.mark.parametrize(
    ("function", "args", "message"),
    [
        pytest.param(
            "SubmitReport",
            (REPORT, "not base64!"),
            "signature must be base64 of the consultant's signature (1-256 bytes)",
            id="a signature in base64",
        ),
        pytest.param(
            "SubmitReport",
            ("REPORT", SIGNATURE),
            "reportDigest must be a SHA-256 (64 lower-case hex)",
            id="a digest",
        ),
        pytest.param(
            "ScheduleConsultation",
            ("2025-11-29T12:00:00Z",),
            "the consultation must take place after now and by its deadline "
            "2025-11-28T13:00:00.000Z",
            id="scheduled by the deadline",
        ),
        pytest.param(
            "DeclineConsultation",
            ("the patient is too ill",),
            "reason must be one of NO_CAPACITY, OUT_OF_SCOPE, INSUFFICIENT_DATA, OTHER; "
            "free text goes into a sealed note (a records entry), never onto the ledger",
            id="a coded reason, never free text",
        ),
    ],
)
def test_consultant_input_rules(
    alliance: Alliance, function: str, args: tuple[str, ...], message: str
) -> None:
    request(alliance)
    alliance.ok(T, "doctor", "consultation", "AcceptConsultation", "C-1")
    assert alliance.refused(T, "doctor", "consultation", function, "C-1", *args) == (400, message)


def test_the_consultation_key_needs_both_hospitals_endorsement(alliance: Alliance) -> None:
    """SecondaryA asks TertiaryA: the key's policy names the district (SecondaryA's proxy) AND
    TertiaryA, so the consultant with any other organisation (e.g. TertiaryB) cannot write a
    close, nor the requester's side a report."""
    result = request(alliance)
    assert key_policies(result.rwset, "consultation") == {
        consultation_key("C-1"): key_policy("AND('DistrictHCMSP.peer', 'TertiaryAMSP.peer')")
    }
