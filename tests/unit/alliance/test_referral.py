"""The paper's referral workflow (fig. 5) through the report, referral, visit, records and
settlement contracts: every rule, every refusal, and what each step leaves on the ledger."""

from __future__ import annotations

import json

import pytest
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import chaincode_event_pb2
from tests.unit.alliance.harness import Alliance

from medalliance.alliance.records import RecordsContract
from medalliance.alliance.referral import REJECTION_REASONS, ReferralContract
from medalliance.alliance.report import REVIEW_REASONS, ReportContract
from medalliance.alliance.settlement import SettlementContract
from medalliance.alliance.visit import VisitContract
from medalliance.contracts.simulation import SimulationResult

PATIENT = "9f86d081884c7d65"
DIGEST = "ab" * 32
A, T, T2, S2 = "SecondaryAMSP", "TertiaryAMSP", "TertiaryBMSP", "SecondaryBMSP"
DISTRICT = "DistrictHCMSP"


@pytest.fixture
def alliance() -> Alliance:
    alliance = Alliance(
        {
            "visit": VisitContract(),
            "report": ReportContract(),
            "referral": ReferralContract(),
            "records": RecordsContract(),
            "settlement": SettlementContract(),
        }
    )
    alliance.ok(A, "doctor", "visit", "RegisterVisit", "V-1", PATIENT, A)
    share(alliance, A, "R-1", [T])  # the clinical package, for the target (and the district)
    return alliance


def share(alliance: Alliance, owner: str, record_id: str, orgs: list[str]) -> None:
    alliance.ok(
        owner, "doctor", "records", "RegisterRecord", record_id, PATIENT, DIGEST, "[]",
        json.dumps(orgs),
    )  # fmt: skip


def apply(alliance: Alliance, app_id: str = "APP-1", target: str = T, visit: str = "V-1") -> None:
    alliance.ok(A, "doctor", "report", "SubmitApplication", app_id, visit, target, "R-1")


def review(alliance: Alliance, app_id: str = "APP-1", decision: str = "APPROVED") -> None:
    code = "NOT_INDICATED" if decision == "REJECTED" else ""
    alliance.ok(DISTRICT, "reviewer", "report", "ReviewApplication", app_id, decision, code, "")


def refer(
    alliance: Alliance, referral_id: str = "REF-1", app_id: str = "APP-1", **kw: str
) -> SimulationResult:
    args = {"visit": "V-1", "origin": A, "target": T, "direction": "UP", "ref": "R-1", **kw}
    return alliance.call(
        kw.get("caller", args["origin"]), kw.get("role", "doctor"), "referral", "Refer",
        referral_id, app_id, args["visit"], args["origin"], args["target"], args["direction"],
        args["ref"],
    )  # fmt: skip


def event_of(result: SimulationResult) -> tuple[str, dict[str, object]]:
    assert result.event is not None
    event = chaincode_event_pb2.ChaincodeEvent.FromString(result.event)
    return event.event_name, json.loads(event.payload)


# --- applications (上报申请) ----------------------------------------------------------------------


def test_an_application_goes_to_the_hospitals_supervising_regulator(alliance: Alliance) -> None:
    result = alliance.call(A, "doctor", "report", "SubmitApplication", "APP-1", "V-1", T, "R-1")
    assert json.loads(result.payload) == {
        "applicationId": "APP-1",
        "visitNo": "V-1",
        "patientRef": PATIENT,
        "hospital": A,
        "targetHospital": T,
        "regulator": DISTRICT,
        "summaryRef": "R-1",
        "status": "SUBMITTED",
        "submittedAt": "2025-11-28T12:00:03.000Z",
        "txId": "tx00003",
        "deadline": "2025-11-30T12:00:03.000Z",  # the default 48 hours to review
        "deadlineRules": 0,
    }
    assert event_of(result) == (
        "ApplicationSubmitted",
        {"applicationId": "APP-1", "hospital": A, "regulator": DISTRICT},
    )


@pytest.mark.parametrize(
    ("caller", "role", "args", "status", "message"),
    [
        pytest.param(A, "clerk", ["APP-2", "V-1", T, "R-1"], 403,
                     "role doctor required, caller has clerk", id="only a doctor applies"),
        pytest.param(S2, "doctor", ["APP-2", "V-1", T, "R-1"], 403,
                     "patient of visit V-1 is at SecondaryAMSP, not SecondaryBMSP",
                     id="only the hospital holding the visit applies"),
        pytest.param(A, "doctor", ["APP-2", "V-9", T, "R-1"], 404,
                     "visit V-9 does not exist", id="the visit must exist"),
        pytest.param(A, "doctor", ["APP-2", "V-1", A, "R-1"], 400,
                     "visit V-1 is already at SecondaryAMSP", id="the target is another hospital"),
        pytest.param(A, "doctor", ["APP-2", "V-1", DISTRICT, "R-1"], 400,
                     "DistrictHCMSP is a regulator organisation, not a hospital",
                     id="the target is a hospital"),
        pytest.param(A, "doctor", ["APP-1", "V-1", T, "R-1"], 409,
                     "application APP-1 already exists", id="an application id is unique"),
        pytest.param(A, "doctor", ["APP-2", "V-1", T, "R-9"], 404,
                     "record R-9 does not exist", id="the summary is a registered record"),
        pytest.param(A, "doctor", ["APP-2", "V-1", T], 400,
                     "SubmitApplication takes 4 arguments, got 3", id="the argument count"),
        pytest.param(A, "doctor", ["APP-2", "V-1", T, "急性心梗 PCI", "R-1"], 400,
                     "SubmitApplication takes 4 arguments, got 5",
                     id="no reason argument: the reason is in the sealed summary"),
    ],
)  # fmt: skip
def test_application_refusals(
    alliance: Alliance, caller: str, role: str, args: list[str], status: int, message: str
) -> None:
    apply(alliance)
    assert alliance.refused(caller, role, "report", "SubmitApplication", *args) == (
        status,
        message,
    )


def test_the_summary_must_be_readable_by_the_reviewer(alliance: Alliance) -> None:
    alliance.ok("OtherHCMSP", "auditor", "records", "RegisterRecord", "R-X", PATIENT, DIGEST,
                "[]", "[]")  # fmt: skip
    assert alliance.refused(
        A, "doctor", "report", "SubmitApplication", "APP-2", "V-1", T, "R-X"
    ) == (412, "record R-X is not shared with DistrictHCMSP; it reviews the summary")


def test_the_regulator_approves_or_rejects_once(alliance: Alliance) -> None:
    apply(alliance)
    share(alliance, DISTRICT, "NOTE-1", [A])  # the regulator's sealed note, for the applicant
    result = alliance.call(DISTRICT, "reviewer", "report", "ReviewApplication", "APP-1",
                           "REJECTED", "INCOMPLETE_SUMMARY", "NOTE-1")  # fmt: skip
    reviewed = json.loads(result.payload)
    assert (reviewed["status"], reviewed["reasonCode"], reviewed["noteRef"]) == (
        "REJECTED", "INCOMPLETE_SUMMARY", "NOTE-1"
    )  # fmt: skip
    assert event_of(result) == (
        "ApplicationReviewed",
        {"applicationId": "APP-1", "hospital": A, "decision": "REJECTED"},
    )
    assert alliance.refused(
        DISTRICT, "reviewer", "report", "ReviewApplication", "APP-1", "APPROVED", "", ""
    ) == (409, "application APP-1 is REJECTED")


@pytest.mark.parametrize(
    ("caller", "role", "decision", "status", "message"),
    [
        pytest.param(DISTRICT, "auditor", "APPROVED", 403, "role reviewer required, caller has auditor",
                     id="only a reviewer decides"),
        pytest.param("OtherHCMSP", "reviewer", "APPROVED", 403,
                     "application APP-1 is reviewed by DistrictHCMSP, not OtherHCMSP",
                     id="another district's reviewer cannot decide"),
        pytest.param("CityHCMSP", "reviewer", "APPROVED", 403,
                     "application APP-1 is reviewed by DistrictHCMSP, not CityHCMSP",
                     id="the city does not review for the district"),
        pytest.param(T, "reviewer", "APPROVED", 403,
                     "application APP-1 is reviewed by DistrictHCMSP, not TertiaryAMSP",
                     id="the target hospital cannot approve"),
        pytest.param(DISTRICT, "reviewer", "MAYBE", 400,
                     "decision must be one of APPROVED, REJECTED, not 'MAYBE'",
                     id="a decision is APPROVED or REJECTED"),
    ],
)  # fmt: skip
def test_review_refusals(
    alliance: Alliance, caller: str, role: str, decision: str, status: int, message: str
) -> None:
    apply(alliance)
    assert alliance.refused(
        caller, role, "report", "ReviewApplication", "APP-1", decision, "", ""
    ) == (status, message)


def test_an_application_is_used_only_by_the_referral_contract(alliance: Alliance) -> None:
    apply(alliance)
    review(alliance)
    assert alliance.refused(
        A, "doctor", "report", "UseApplication", "APP-1", A, "V-1", T, "REF-1"
    ) == (403, "an application is used only by the referral contract")


def test_applications_are_for_the_parties_and_their_regulators(alliance: Alliance) -> None:
    apply(alliance)
    for caller, role in [
        (A, "doctor"),
        (T, "doctor"),
        (DISTRICT, "auditor"),
        ("CityHCMSP", "auditor"),
    ]:
        assert (
            alliance.ok(caller, role, "report", "GetApplication", "APP-1")["status"] == "SUBMITTED"
        )
    for caller, role in [(S2, "doctor"), ("OtherHCMSP", "auditor")]:
        assert alliance.refused(caller, role, "report", "GetApplication", "APP-1") == (
            403,
            f"{caller} is neither a party to application APP-1 nor their regulator",
        )
        assert alliance.ok(caller, role, "report", "ApplicationsForVisit", "V-1") == []
    listed = alliance.ok(DISTRICT, "auditor", "report", "ApplicationsForVisit", "V-1")
    assert [a["applicationId"] for a in listed] == ["APP-1"]  # fmt: skip


# --- the referral -------------------------------------------------------------------------------


def test_an_approved_referral_moves_the_patient_in_one_transaction(alliance: Alliance) -> None:
    apply(alliance)
    review(alliance)
    result = refer(alliance)
    assert result.status == 200, result.message
    referral = json.loads(result.payload)
    assert referral == {
        "referralId": "REF-1",
        "applicationId": "APP-1",
        "visitNo": "V-1",
        "patientRef": PATIENT,
        "fromHospital": A,
        "toHospital": T,
        "direction": "UP",
        "clinicalRef": "R-1",
        "status": "REFERRED",
        "referredAt": "2025-11-28T12:00:05.000Z",
        "deadline": "2025-11-29T12:00:05.000Z",  # the default 24 hours to accept
        "deadlineRules": 0,
        "history": [
            {"status": "REFERRED", "at": "2025-11-28T12:00:05.000Z", "by": A, "txId": "tx00005"}
        ],
    }
    written = rwset_pb2.TxReadWriteSet.FromString(result.rwset)
    assert [ns.namespace for ns in written.ns_rwset] == ["records", "referral", "report", "visit"]
    writes = {
        ns.namespace: sorted(
            w.key.split("\x00")[1] for w in kv_rwset_pb2.KVRWSet.FromString(ns.rwset).writes
        )
        for ns in written.ns_rwset
    }
    assert writes == {
        "records": [],
        "referral": ["activereferral", "hospitalreferral", "hospitalreferral", "referral",
                     "visitreferral"],
        "report": ["application"],
        "visit": ["visit", "visitat", "visitat"],
    }  # fmt: skip
    assert event_of(result) == (
        "ReferralCreated",
        {"referralId": "REF-1", "visitNo": "V-1", "fromHospital": A, "toHospital": T,
         "direction": "UP", "status": "REFERRED", "clinicalRef": "R-1"},
    )  # fmt: skip
    assert alliance.ok(T, "doctor", "visit", "GetVisit", "V-1")["hospital"] == T
    used = alliance.ok(A, "doctor", "report", "GetApplication", "APP-1")
    assert (used["status"], used["referralId"]) == ("USED", "REF-1")


@pytest.mark.parametrize(
    ("decision", "message"),
    [("REJECTED", "application APP-1 is REJECTED"), (None, "application APP-1 is SUBMITTED")],
    ids=["a rejected application", "an application not yet reviewed"],
)
def test_no_referral_without_approval(
    alliance: Alliance, decision: str | None, message: str
) -> None:
    apply(alliance)
    if decision:
        review(alliance, decision=decision)
    result = refer(alliance)
    assert (result.status, result.message) == (409, message)
    assert alliance.ok(A, "doctor", "visit", "GetVisit", "V-1")["hospital"] == A


def test_one_approval_serves_one_referral(alliance: Alliance) -> None:
    apply(alliance)
    review(alliance)
    assert refer(alliance).status == 200
    alliance.ok(T, "doctor", "referral", "RejectReferral", "REF-1", "NO_BED", "")
    result = refer(alliance, "REF-2")
    assert (result.status, result.message) == (
        409,
        "application APP-1 was already used by referral REF-1",
    )


@pytest.mark.parametrize(
    ("kw", "app_id", "status", "message"),
    [
        pytest.param({"role": "clerk"}, "APP-1", 403, "role doctor required, caller has clerk",
                     id="only a doctor refers"),
        pytest.param({"caller": T}, "APP-1", 403,
                     "caller of TertiaryAMSP cannot refer a patient for SecondaryAMSP",
                     id="only the origin hospital refers"),
        pytest.param({"origin": S2, "caller": S2}, "APP-1", 409,
                     "patient of visit V-1 is at SecondaryAMSP, not SecondaryBMSP",
                     id="the patient must be at the origin"),
        pytest.param({"visit": "V-9"}, "APP-1", 404, "visit V-9 does not exist",
                     id="the visit must exist"),
        pytest.param({"target": T2}, "APP-1", 409,
                     "application APP-1 approves a referral to TertiaryAMSP, not to TertiaryBMSP",
                     id="the approval names the target"),
        pytest.param({}, "", 412, "a UP referral from SecondaryAMSP needs an approved application",
                     id="an upward referral needs an application"),
        pytest.param({}, "APP-9", 404, "application APP-9 does not exist",
                     id="the application must exist"),
        pytest.param({"direction": "SIDEWAYS"}, "APP-1", 400,
                     "direction must be one of UP, DOWN, not 'SIDEWAYS'", id="direction is UP or DOWN"),
        pytest.param({"direction": "DOWN"}, "APP-1", 400,
                     "a DOWN referral goes to a lower-level hospital; TertiaryAMSP is not below SecondaryAMSP",
                     id="down goes to a lower level"),
        pytest.param({"target": S2}, "APP-1", 400,
                     "an UP referral goes to a higher-level hospital; SecondaryBMSP is not above SecondaryAMSP",
                     id="up goes to a higher level"),
        pytest.param({"target": A}, "APP-1", 400,
                     "a referral needs two hospitals; both are SecondaryAMSP", id="two hospitals"),
        pytest.param({"ref": "R-9"}, "APP-1", 404, "record R-9 does not exist",
                     id="the clinical package must be registered"),
        pytest.param({"ref": "bad ref"}, "APP-1", 400,
                     "clinicalRef 'bad ref' may use letters, digits and ._- (1-64)",
                     id="a malformed reference"),
    ],
)  # fmt: skip
def test_referral_refusals(
    alliance: Alliance, kw: dict[str, str], app_id: str, status: int, message: str
) -> None:
    apply(alliance)
    review(alliance)
    before = dict(alliance.state.data)
    result = refer(alliance, app_id=app_id, **kw)
    assert (result.status, result.message, result.rwset) == (status, message, b"")
    assert alliance.state.data == before


def test_the_clinical_package_must_be_shared_with_the_target(alliance: Alliance) -> None:
    share(alliance, A, "R-2", [T2])
    apply(alliance)
    review(alliance)
    result = refer(alliance, ref="R-2")
    assert (result.status, result.message) == (
        412,
        "record R-2 is not shared with TertiaryAMSP; share it first",
    )


def test_the_argument_count_is_checked(alliance: Alliance) -> None:
    assert alliance.refused(A, "doctor", "referral", "Refer", "REF-1", "APP-1", "V-1") == (
        400,
        "Refer takes 7 arguments, got 3",
    )


def test_the_target_accepts_and_completes(alliance: Alliance) -> None:
    apply(alliance)
    review(alliance)
    refer(alliance)
    assert alliance.refused(A, "doctor", "referral", "AcceptReferral", "REF-1") == (
        403, "caller of SecondaryAMSP cannot accept referral REF-1 for TertiaryAMSP"
    )  # fmt: skip
    share(alliance, T, "FB-1", [A])  # the sealed feedback, for the origin (and the district)
    assert alliance.refused(T, "doctor", "referral", "CompleteReferral", "REF-1", "FB-1") == (
        409, "referral REF-1 is REFERRED"
    )  # fmt: skip
    alliance.ok(T, "doctor", "referral", "AcceptReferral", "REF-1")
    done = alliance.ok(T, "doctor", "referral", "CompleteReferral", "REF-1", "FB-1")
    assert (done["status"], done["feedbackRef"]) == ("COMPLETED", "FB-1")
    assert "outcome" not in done
    assert done["settlement"] == {"executed": False, "reason": "no active agreement"}
    assert [h["status"] for h in done["history"]] == ["REFERRED", "ACCEPTED", "COMPLETED"]
    assert alliance.refused(T, "doctor", "referral", "RejectReferral", "REF-1", "NO_BED", "") == (
        409, "referral REF-1 is COMPLETED"
    )  # fmt: skip


def test_a_rejected_referral_returns_the_patient(alliance: Alliance) -> None:
    apply(alliance)
    review(alliance)
    refer(alliance)
    result = alliance.call(T, "doctor", "referral", "RejectReferral", "REF-1", "NO_BED", "")
    rejected = json.loads(result.payload)
    assert (rejected["status"], rejected["reasonCode"], rejected["noteRef"]) == (
        "REJECTED", "NO_BED", ""
    )  # fmt: skip
    assert event_of(result)[0] == "ReferralRejected"
    assert alliance.ok(A, "doctor", "visit", "GetVisit", "V-1")["hospital"] == A
    assert [v["visitNo"] for v in alliance.ok(A, "doctor", "visit", "PatientsAt", A)] == ["V-1"]


def test_a_visit_with_a_referral_in_progress_is_not_referred_again(alliance: Alliance) -> None:
    apply(alliance)
    review(alliance)
    refer(alliance)
    share(alliance, T, "R-3", [S2])
    result = refer(alliance, "REF-2", "", origin=T, target=S2, direction="DOWN", ref="R-3")
    assert (result.status, result.message) == (409, "visit V-1 has referral REF-1 in progress")


def test_a_downward_referral_needs_no_application_unless_the_regulator_says_so(
    alliance: Alliance,
) -> None:
    apply(alliance)
    review(alliance)
    refer(alliance)
    alliance.ok(T, "doctor", "referral", "AcceptReferral", "REF-1")
    share(alliance, T, "FB-1", [A])
    alliance.ok(T, "doctor", "referral", "CompleteReferral", "REF-1", "FB-1")
    share(alliance, T, "R-3", [A])
    assert alliance.ok(T, "doctor", "report", "DownwardRule", T)["rule"] == "NO_APPROVAL"
    alliance.ok(DISTRICT, "reviewer", "report", "SetDownwardRule", "APPROVAL_REQUIRED")
    down = {"origin": T, "target": A, "direction": "DOWN", "ref": "R-3"}
    result = refer(alliance, "REF-2", "", **down)
    assert (result.status, result.message) == (
        412,
        "a DOWN referral from TertiaryAMSP needs an approved application",
    )
    alliance.ok(DISTRICT, "reviewer", "report", "SetDownwardRule", "NO_APPROVAL")
    back = json.loads(refer(alliance, "REF-2", "", **down).payload)
    assert (back["direction"], back["applicationId"], back["status"]) == ("DOWN", "", "REFERRED")
    assert alliance.ok(A, "doctor", "visit", "GetVisit", "V-1")["hospital"] == A


def test_only_a_regulator_reviewer_sets_the_downward_rule(alliance: Alliance) -> None:
    assert alliance.refused(T, "reviewer", "report", "SetDownwardRule", "NO_APPROVAL") == (
        403, "TertiaryAMSP is not a regulator"
    )  # fmt: skip
    assert alliance.refused(DISTRICT, "reviewer", "report", "SetDownwardRule", "SOMETIMES") == (
        400, "rule must be one of APPROVAL_REQUIRED, NO_APPROVAL, not 'SOMETIMES'"
    )  # fmt: skip


def test_referrals_are_listed_by_hospital_and_traced_by_visit(alliance: Alliance) -> None:
    apply(alliance)
    review(alliance)
    refer(alliance)
    incoming = alliance.ok(T, "clerk", "referral", "ReferralsByHospital", T, "incoming", "REFERRED")
    assert [r["referralId"] for r in incoming] == ["REF-1"]
    assert (
        alliance.ok(T, "clerk", "referral", "ReferralsByHospital", T, "incoming", "ACCEPTED") == []
    )
    outgoing = alliance.ok(
        DISTRICT, "auditor", "referral", "ReferralsByHospital", A, "outgoing", ""
    )
    assert [r["referralId"] for r in outgoing] == ["REF-1"]
    assert alliance.refused(S2, "doctor", "referral", "ReferralsByHospital", A, "outgoing", "") == (
        403,
        "SecondaryBMSP is neither a party to the referrals of SecondaryAMSP nor their regulator",
    )
    assert (
        alliance.refused(A, "doctor", "referral", "ReferralsByHospital", A, "sideways", "")[0]
        == 400
    )
    trace = alliance.ok("CityHCMSP", "auditor", "referral", "ReferralHistory", "V-1")
    assert [(r["referralId"], r["status"]) for r in trace] == [("REF-1", "REFERRED")]
    assert alliance.ok("OtherHCMSP", "auditor", "referral", "ReferralHistory", "V-1") == []
    assert alliance.refused("OtherHCMSP", "auditor", "referral", "GetReferral", "REF-1")[0] == 403  # fmt: skip


def test_referrals_of_different_patients_write_disjoint_keys(alliance: Alliance) -> None:
    alliance.ok(A, "doctor", "visit", "RegisterVisit", "V-2", PATIENT, A)
    for app_id, visit in [("APP-1", "V-1"), ("APP-2", "V-2")]:
        apply(alliance, app_id, visit=visit)
        review(alliance, app_id)
    first = refer(alliance, "REF-1", "APP-1", visit="V-1")
    second = alliance.call(A, "doctor", "referral", "Refer", "REF-2", "APP-2", "V-2", A, T, "UP",
                           "R-1", commit=False)  # fmt: skip
    assert first.status == second.status == 200
    assert not (written_keys(first) & written_keys(second))
    assert not (written_keys(first) & read_keys(second))


def test_two_referrals_of_one_patient_collide_on_the_visit(alliance: Alliance) -> None:
    share(alliance, A, "R-2", [T2])
    for app_id, target in [("APP-1", T), ("APP-2", T2)]:
        apply(alliance, app_id, target)
        review(alliance, app_id)
    first = alliance.call(A, "doctor", "referral", "Refer", "REF-1", "APP-1", "V-1", A, T, "UP",
                          "R-1", commit=False)  # fmt: skip
    second = alliance.call(A, "doctor", "referral", "Refer", "REF-2", "APP-2", "V-1", A, T2, "UP",
                           "R-2", commit=False)  # fmt: skip
    assert first.status == second.status == 200
    # both read and write the visit: MVCC lets the first in a block commit, not the second
    assert ("visit", "\x00visit\x00V-1\x00") in written_keys(first) & read_keys(second)


def written_keys(result: SimulationResult) -> set[tuple[str, str]]:
    return {(ns, k) for ns, kv in _kv(result) for k in (w.key for w in kv.writes)}


def read_keys(result: SimulationResult) -> set[tuple[str, str]]:
    return {(ns, k) for ns, kv in _kv(result) for k in (r.key for r in kv.reads)}


def _kv(result: SimulationResult) -> list[tuple[str, kv_rwset_pb2.KVRWSet]]:
    txrw = rwset_pb2.TxReadWriteSet.FromString(result.rwset)
    return [(ns.namespace, kv_rwset_pb2.KVRWSet.FromString(ns.rwset)) for ns in txrw.ns_rwset]


# --- no clinical text on the ledger (docs/privacy.md §5) -----------------------------------------

CODE_HINT = "; free text goes into a sealed note (a records entry), never onto the ledger"
REVIEW_CODES = "reasonCode must be one of " + ", ".join(REVIEW_REASONS) + CODE_HINT
REJECT_CODES = "reasonCode must be one of " + ", ".join(REJECTION_REASONS) + CODE_HINT


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        pytest.param(["REJECTED", "", ""], 400, REVIEW_CODES, id="a rejection names its reason code"),
        pytest.param(["REJECTED", "患者拒绝转诊, insufficient indication", ""], 400, REVIEW_CODES,
                     id="free text where a code belongs is refused and not echoed"),
        pytest.param(["REJECTED", "not_indicated", ""], 400, REVIEW_CODES,
                     id="a code matches exactly"),
        pytest.param(["REJECTED", "NOT_INDICATED ", ""], 400, REVIEW_CODES,
                     id="a code matches in full"),
        pytest.param(["APPROVED", "NOT_INDICATED", ""], 400,
                     'an APPROVED decision takes no reasonCode; pass ""', id="an approval has no code"),
        pytest.param(["REJECTED", "OTHER", ""], 400,
                     "reasonCode OTHER needs a noteRef: seal a note saying why",
                     id="OTHER needs a sealed note"),
        pytest.param(["REJECTED", "OTHER", "NOTE-9"], 404, "record NOTE-9 does not exist",
                     id="the note is a registered record"),
        pytest.param(["REJECTED", "OTHER", "NOTE-X"], 400,
                     "noteRef NOTE-X is a record of another patient",
                     id="the note is of the application's patient"),
        pytest.param(["REJECTED", "OTHER", "NOTE-T"], 412,
                     "noteRef NOTE-T is not shared with SecondaryAMSP; seal it for SecondaryAMSP first",
                     id="the applicant can open the note"),
    ],
)  # fmt: skip
def test_a_review_carries_a_code_and_a_sealed_note_never_text(
    alliance: Alliance, args: list[str], status: int, message: str
) -> None:
    apply(alliance)
    alliance.ok(DISTRICT, "reviewer", "records", "RegisterRecord", "NOTE-X", "ab" * 8, DIGEST,
                "[]", f'["{A}"]')  # fmt: skip
    share(alliance, T, "NOTE-T", [])  # readable by T and the district, not the applicant
    assert alliance.refused(DISTRICT, "reviewer", "report", "ReviewApplication", "APP-1",
                            *args) == (status, message)  # fmt: skip
    assert alliance.ok(A, "doctor", "report", "GetApplication", "APP-1")["status"] == "SUBMITTED"


@pytest.mark.parametrize(
    ("function", "args", "status", "message"),
    [
        pytest.param("RejectReferral", ["no ICU bed tonight", ""], 400, REJECT_CODES,
                     id="a referral is rejected with a code, not free text"),
        pytest.param("RejectReferral", ["OTHER", ""], 400,
                     "reasonCode OTHER needs a noteRef: seal a note saying why",
                     id="OTHER needs a sealed note"),
        pytest.param("RejectReferral", ["OTHER", "FB-T"], 412,
                     "noteRef FB-T is not shared with SecondaryAMSP; seal it for SecondaryAMSP first",
                     id="the origin can open the rejection note"),
        pytest.param("CompleteReferral", ["discharged, stable"], 400,
                     "feedbackRef must be a record id (letters, digits and ._-, 1-64): seal the "
                     "text with the privacy module and pass the record's id",
                     id="an outcome is a sealed document, not text"),
        pytest.param("CompleteReferral", ["FB-9"], 404, "record FB-9 does not exist",
                     id="the feedback is a registered record"),
        pytest.param("CompleteReferral", ["FB-T"], 412,
                     "feedbackRef FB-T is not shared with SecondaryAMSP; seal it for SecondaryAMSP first",
                     id="the origin can open the feedback"),
        pytest.param("CompleteReferral", ["FB-X"], 400,
                     "feedbackRef FB-X is a record of another patient",
                     id="the feedback is of the referral's patient"),
    ],
)  # fmt: skip
def test_a_target_decides_with_codes_and_sealed_documents(
    alliance: Alliance, function: str, args: list[str], status: int, message: str
) -> None:
    apply(alliance)
    review(alliance)
    refer(alliance)
    if function == "CompleteReferral":
        alliance.ok(T, "doctor", "referral", "AcceptReferral", "REF-1")
    share(alliance, T, "FB-T", [])
    alliance.ok(T, "doctor", "records", "RegisterRecord", "FB-X", "ab" * 8, DIGEST, "[]",
                f'["{A}"]')  # fmt: skip
    before = alliance.ok(T, "doctor", "referral", "GetReferral", "REF-1")
    assert alliance.refused(T, "doctor", "referral", function, "REF-1", *args) == (status, message)
    assert alliance.ok(T, "doctor", "referral", "GetReferral", "REF-1") == before


def test_a_rejection_note_is_sealed_for_the_origin(alliance: Alliance) -> None:
    apply(alliance)
    review(alliance)
    refer(alliance)
    share(alliance, T, "NOTE-1", [A])
    rejected = alliance.ok(T, "doctor", "referral", "RejectReferral", "REF-1", "OTHER", "NOTE-1")
    assert (rejected["reasonCode"], rejected["noteRef"]) == ("OTHER", "NOTE-1")


# --- an approval is bound to the applicant, the visit and the target ------------------------------


def test_another_hospitals_referral_cannot_consume_an_approval(alliance: Alliance) -> None:
    """A's approved application for V-1 to T is not a pass for whoever holds V-1 later: V-1
    goes up to T2 and down to S2, and S2 cannot refer it up to T on A's approval."""
    apply(alliance, "APP-1", T)
    review(alliance, "APP-1")
    share(alliance, A, "R-2", [T2])
    apply(alliance, "APP-2", T2)
    review(alliance, "APP-2")
    assert refer(alliance, "REF-1", "APP-2", target=T2, ref="R-2").status == 200
    alliance.ok(T2, "doctor", "referral", "AcceptReferral", "REF-1")
    share(alliance, T2, "FB-1", [A])
    alliance.ok(T2, "doctor", "referral", "CompleteReferral", "REF-1", "FB-1")
    share(alliance, T2, "R-3", [S2, T])
    down = {"origin": T2, "target": S2, "direction": "DOWN", "ref": "R-3"}
    assert refer(alliance, "REF-2", "", **down).status == 200
    alliance.ok(S2, "doctor", "referral", "AcceptReferral", "REF-2")
    share(alliance, S2, "FB-2", [T2])
    alliance.ok(S2, "doctor", "referral", "CompleteReferral", "REF-2", "FB-2")
    before = dict(alliance.state.data)
    result = refer(alliance, "REF-3", "APP-1", origin=S2, target=T, ref="R-3")
    assert (result.status, result.message, result.rwset) == (
        403,
        "application APP-1 was made by another hospital, not SecondaryBMSP; a referral needs "
        "the origin's own approved application",
        b"",
    )
    assert alliance.state.data == before
    assert alliance.ok(A, "doctor", "report", "GetApplication", "APP-1")["status"] == "APPROVED"
    assert alliance.ok(S2, "doctor", "visit", "GetVisit", "V-1")["hospital"] == S2
    # Refused first, so a used or rejected application of another hospital is not revealed.
    used = refer(alliance, "REF-4", "APP-2", origin=S2, target=T2, ref="R-3")  # APP-2 is USED
    assert used.message.startswith("application APP-2 was made by another hospital, not ")


def test_an_approval_is_for_its_own_visit(alliance: Alliance) -> None:
    alliance.ok(A, "doctor", "visit", "RegisterVisit", "V-2", PATIENT, A)
    apply(alliance, "APP-1", T, visit="V-1")
    review(alliance, "APP-1")
    before = dict(alliance.state.data)
    result = refer(alliance, "REF-1", "APP-1", visit="V-2")
    assert (result.status, result.message) == (
        409,
        "application APP-1 is for visit V-1, not visit V-2",
    )
    assert alliance.state.data == before
