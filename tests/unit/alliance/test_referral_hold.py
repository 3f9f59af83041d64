"""Capacity held with a referral (issue 19): ReferWithHold holds a slot of the target in the
referral's transaction, both or neither; every release path; the hostile member's attempts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import chaincode_event_pb2
from tests.unit.alliance.harness import START_MS, Alliance

from medalliance.alliance.records import RecordsContract
from medalliance.alliance.referral import ReferralContract
from medalliance.alliance.report import ReportContract
from medalliance.alliance.resource import ResourceContract
from medalliance.alliance.settlement import SettlementContract
from medalliance.alliance.visit import VisitContract
from medalliance.contracts import Context, Contract, transaction
from medalliance.contracts.simulation import SimulationResult
from medalliance.ledger.mvcc import MVCC_READ_CONFLICT, VALID, MvccTx, check_block

PATIENT, OTHER = "9f86d081884c7d65", "2c26b46b68ffc68f"
DIGEST = "ab" * 32
A, B, T, T2 = "SecondaryAMSP", "SecondaryBMSP", "TertiaryAMSP", "TertiaryBMSP"
DISTRICT, FAR = "DistrictHCMSP", "OtherHCMSP"
NINE, TEN = "2025-11-29T09:00", "2025-11-29T10:00"
HOUR_MS = 3_600_000


class Intruder(Contract):
    """Any other contract: it may not hold or release slots."""

    name = "intruder"

    @transaction
    def Hold(self, ctx: Context, referral_id: str, resource_id: str, slot: str) -> str:
        args = ["HoldSlot", referral_id, resource_id, slot, T, A, ""]
        return ctx.stub.invoke_chaincode("resource", args).decode()


@pytest.fixture
def alliance() -> Alliance:
    """Visits V-1 (SecondaryA) and V-2 (SecondaryB), each with an approved UP application to
    TertiaryA and a package shared with it; TertiaryA offers a CT (EQUIPMENT), a bed and an
    EXPERT; TertiaryB a bed."""
    a = Alliance(
        {
            "visit": VisitContract(),
            "report": ReportContract(),
            "referral": ReferralContract(),
            "records": RecordsContract(),
            "settlement": SettlementContract(),
            "resource": ResourceContract(),
            "intruder": Intruder(),
        }
    )
    for origin, visit, patient, app, rec in (
        (A, "V-1", PATIENT, "APP-1", "R-1"),
        (B, "V-2", OTHER, "APP-2", "R-2"),
    ):
        a.ok(origin, "doctor", "visit", "RegisterVisit", visit, patient, origin)
        a.ok(
            origin,
            "doctor",
            "records",
            "RegisterRecord",
            rec,
            patient,
            DIGEST,
            "[]",
            json.dumps([T]),
        )
        a.ok(origin, "doctor", "report", "SubmitApplication", app, visit, T, rec)
        a.ok(DISTRICT, "reviewer", "report", "ReviewApplication", app, "APPROVED", "", "")
    slots = json.dumps([NINE, TEN])
    for owner, rid, kind in (
        (T, "CT-1", "EQUIPMENT"),
        (T, "BED-1", "BED"),
        (T, "EXP-1", "EXPERT"),
        (T2, "BED-2", "BED"),
        (T, "OP-1", "OUTPATIENT"),
    ):
        a.ok(
            owner,
            "clerk",
            "resource",
            "PublishResource",
            rid,
            owner,
            kind,
            f"{kind} of {owner}",
            slots,
        )
    return a  # fmt: skip


def refer(
    a: Alliance, rid: str = "REF-1", resource: str = "CT-1", slot: str = NINE, **kw: str
) -> SimulationResult:
    origin, visit, app, rec = (
        (B, "V-2", "APP-2", "R-2") if kw.get("second") else (A, "V-1", "APP-1", "R-1")
    )
    return a.call(
        kw.get("caller", origin), "doctor", "referral", "ReferWithHold", rid, app, visit, origin,
        kw.get("target", T), "UP", rec, resource, slot, commit=kw.get("commit", "1") == "1",
    )  # fmt: skip


def hold(a: Alliance, rid: str = "REF-1", who: str = A) -> dict[str, Any]:
    result: dict[str, Any] = a.ok(who, "doctor", "resource", "GetHold", rid)
    return result


def slots(a: Alliance, resource: str = "CT-1", who: str = T) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = a.ok(who, "doctor", "resource", "SlotsOf", resource)
    return result


def statuses(h: dict[str, Any]) -> list[str]:
    return [e["status"] for e in h["history"]]


@pytest.mark.parametrize(
    ("resource", "care"),
    [("CT-1", "examination"), ("BED-1", "inpatient"), ("OP-1", "outpatient")],
)
def test_a_referral_holds_a_slot_and_records_its_care_type(
    alliance: Alliance, resource: str, care: str
) -> None:
    result = refer(alliance, resource=resource)
    assert result.status == 200, result.message
    referral = json.loads(result.payload)
    assert referral["careType"] == care
    assert referral["hold"] == {"resourceId": resource, "slot": NINE}
    assert alliance.ok(T, "doctor", "referral", "GetReferral", "REF-1")["careType"] == care
    h = hold(alliance)
    assert (h["status"], h["owner"], h["holder"], h["until"]) == (
        "HELD",
        T,
        A,
        referral["deadline"],
    )
    assert slots(alliance, resource)[0] == {
        "slot": NINE,
        "state": "HELD",
        "referralId": "REF-1",
        "holder": A,
    }
    free = alliance.ok(B, "doctor", "resource", "ListResources", "")
    assert next(r for r in free if r["resourceId"] == resource)["freeSlots"] == [TEN]  # fmt: skip


def test_the_hold_is_seen_by_both_parties_and_their_regulators_only(alliance: Alliance) -> None:
    assert refer(alliance).status == 200
    for who in (A, T):
        assert hold(alliance, who=who)["status"] == "HELD"
    assert alliance.ok(DISTRICT, "auditor", "resource", "GetHold", "REF-1")["status"] == "HELD"
    for who in (B, T2, FAR):
        assert alliance.refused(who, "doctor", "resource", "GetHold", "REF-1")[0] == 403
    # a stranger sees that the slot is taken, not by whom
    assert slots(alliance, who=B)[0] == {"slot": NINE, "state": "HELD"}


def test_a_refused_referral_leaves_no_hold(alliance: Alliance) -> None:
    alliance.ok(A, "doctor", "referral", "Refer", "REF-0", "APP-1", "V-1", A, T, "UP", "R-1")
    # the visit has a referral in progress: ReferWithHold is refused, and nothing is written
    status, message = alliance.refused(A, "doctor", "referral", "ReferWithHold", "REF-1", "", "V-1", A, T, "UP", "R-1", "CT-1", NINE)  # fmt: skip
    assert (status, message) == (409, f"patient of visit V-1 is at {T}, not {A}")
    assert slots(alliance)[0]["state"] == "FREE"


@pytest.mark.parametrize(
    ("resource", "slot", "code", "message"),
    [
        ("CT-1", "2025-12-24T09:00", 404, "resource CT-1 offers no slot '2025-12-24T09:00'"),
        ("BED-2", NINE, 400, f"resource BED-2 belongs to {T2}, not the target {T}"),
        ("EXP-1", NINE, 400, "resource EXP-1 is an EXPERT resource; a referral holds only BED, EQUIPMENT, OUTPATIENT slots"),
        ("NONE", NINE, 404, "resource NONE does not exist"),
    ],
)  # fmt: skip
def test_a_refused_hold_leaves_no_referral(
    alliance: Alliance, resource: str, slot: str, code: int, message: str
) -> None:
    args = ("ReferWithHold", "REF-1", "APP-1", "V-1", A, T, "UP", "R-1", resource, slot)
    assert alliance.refused(A, "doctor", "referral", *args) == (code, message)
    assert alliance.refused(A, "doctor", "referral", "GetReferral", "REF-1")[0] == 404
    # the application is unused and the visit still at the origin: a plain referral works
    alliance.ok(A, "doctor", "referral", "Refer", "REF-1", "APP-1", "V-1", A, T, "UP", "R-1")


def test_an_already_held_slot_cannot_be_held_again(alliance: Alliance) -> None:
    assert refer(alliance).status == 200
    args = ("ReferWithHold", "REF-2", "APP-2", "V-2", B, T, "UP", "R-2", "CT-1", NINE)
    assert alliance.refused(B, "doctor", "referral", *args) == (409, "slot 2025-11-29T09:00 of CT-1 is already taken by referral REF-1")  # fmt: skip
    booking = ("RequestBooking", "BK-1", "CT-1", B, NINE, "")
    assert alliance.refused(B, "clerk", "resource", *booking)[0] == 409


def test_a_withdrawn_resource_cannot_be_held(alliance: Alliance) -> None:
    alliance.ok(T, "clerk", "resource", "WithdrawResource", "CT-1")
    args = ("ReferWithHold", "REF-1", "APP-1", "V-1", A, T, "UP", "R-1", "CT-1", NINE)
    assert alliance.refused(A, "doctor", "referral", *args) == (409, "resource CT-1 is WITHDRAWN")


def test_only_the_referral_contract_holds_or_releases(alliance: Alliance) -> None:
    args = ("REF-9", "CT-1", NINE, T, A, "")
    assert alliance.refused(A, "doctor", "intruder", "Hold", *args[:3])[0] == 403
    for function, extra in (
        ("HoldSlot", args),
        ("ReleaseHold", ("REF-1", "CANCELLED")),
        ("BookHold", ("REF-1", "V-1")),
    ):
        code, message = alliance.refused(T, "doctor", "resource", function, *extra)
        assert (code, "only through the referral contract" in message) == (403, True)


def test_two_referrals_racing_for_one_slot_commit_one(alliance: Alliance) -> None:
    first = refer(alliance, commit="0")
    rival = refer(alliance, "REF-2", second="1", commit="0")
    other = refer(alliance, "REF-3", slot=TEN, second="1", commit="0")
    txs = [MvccTx(n, _rwset(r), valid_so_far=True) for n, r in enumerate((first, rival))]
    assert check_block(alliance.state, txs) == [VALID, MVCC_READ_CONFLICT]
    txs = [MvccTx(n, _rwset(r), valid_so_far=True) for n, r in enumerate((first, other))]
    assert check_block(alliance.state, txs) == [VALID, VALID]


def _rwset(result: SimulationResult) -> tuple[tuple[str, kv_rwset_pb2.KVRWSet], ...]:
    assert result.status == 200, result.message
    tx = rwset_pb2.TxReadWriteSet.FromString(result.rwset)
    return tuple((ns.namespace, kv_rwset_pb2.KVRWSet.FromString(ns.rwset)) for ns in tx.ns_rwset)


# --- releases ------------------------------------------------------------------------------------


def test_rejection_releases_the_slot(alliance: Alliance) -> None:
    assert refer(alliance).status == 200
    alliance.ok(T, "doctor", "referral", "RejectReferral", "REF-1", "NO_BED", "")
    h = hold(alliance)
    assert (h["status"], statuses(h)) == ("REJECTED", ["HELD", "REJECTED"])
    assert slots(alliance)[0] == {"slot": NINE, "state": "FREE"}


def test_the_origin_cancels_its_hold_and_the_referral_goes_on(alliance: Alliance) -> None:
    assert refer(alliance).status == 200
    assert alliance.refused(T, "doctor", "referral", "CancelHold", "REF-1")[0] == 403
    assert alliance.refused(B, "doctor", "referral", "CancelHold", "REF-1")[0] == 403
    result = alliance.call(A, "doctor", "referral", "CancelHold", "REF-1")
    assert json.loads(result.payload)["status"] == "CANCELLED"
    assert slots(alliance)[0]["state"] == "FREE"
    assert alliance.refused(A, "doctor", "referral", "CancelHold", "REF-1")[0] == 409  # replay
    # accepting or rejecting later books nothing and releases nothing twice
    alliance.ok(T, "doctor", "referral", "AcceptReferral", "REF-1")
    assert statuses(hold(alliance)) == ["HELD", "CANCELLED"]
    assert alliance.refused(T, "doctor", "resource", "GetBooking", "REF-1")[0] == 404


def test_acceptance_books_the_slot_and_a_no_show_after_its_time_frees_it(
    alliance: Alliance,
) -> None:
    assert refer(alliance).status == 200
    alliance.ok(T, "doctor", "referral", "AcceptReferral", "REF-1")
    booking = alliance.ok(A, "clerk", "resource", "GetBooking", "REF-1")
    assert (booking["status"], booking["requester"], booking["visitNo"]) == ("CONFIRMED", A, "V-1")
    assert slots(alliance)[0] == {"slot": NINE, "state": "BOOKED", "bookingId": "REF-1"}
    assert slots(alliance, who=A)[0]["bookingId"] == "REF-1"  # the requester sees it too
    assert "bookingId" not in slots(alliance, who=B)[0]
    # before 09:00 the next day no one can have missed it; the origin and a third never can
    assert alliance.refused(T, "clerk", "referral", "MarkNoShow", "REF-1") == (409, "slot 2025-11-29T09:00 starts 2025-11-29T09:00:00.000Z; a no-show is recorded after it")  # fmt: skip
    alliance.clock_ms = START_MS + 22 * HOUR_MS
    for who in (A, T2):
        assert alliance.refused(who, "doctor", "referral", "MarkNoShow", "REF-1")[0] == 403
    alliance.ok(T, "clerk", "referral", "MarkNoShow", "REF-1")
    h = hold(alliance)
    assert statuses(h) == ["HELD", "BOOKED", "NO_SHOW"]
    assert alliance.ok(A, "clerk", "resource", "GetBooking", "REF-1")["status"] == "NO_SHOW"
    assert slots(alliance)[0]["state"] == "FREE"
    assert alliance.refused(T, "clerk", "referral", "MarkNoShow", "REF-1")[0] == 409  # replay


def test_any_member_releases_a_hold_left_past_the_acceptance_deadline(alliance: Alliance) -> None:
    assert refer(alliance).status == 200
    deadline = hold(alliance)["until"]
    assert alliance.refused(T2, "doctor", "referral", "ReleaseLapsedHold", "REF-1")[0] == 409
    assert alliance.ok(A, "doctor", "resource", "LapsedHolds", "2025-11-29T11:00:00Z") == []
    alliance.clock_ms = START_MS + 25 * HOUR_MS
    late = [{"referralId": "REF-1", "resourceId": "CT-1", "slot": NINE, "until": deadline}]
    assert alliance.ok(A, "doctor", "resource", "LapsedHolds", "2025-11-29T13:00:00Z") == late
    alliance.ok(T2, "doctor", "referral", "ReleaseLapsedHold", "REF-1")
    assert statuses(hold(alliance)) == ["HELD", "LAPSED"]
    assert alliance.ok(A, "doctor", "resource", "LapsedHolds", "2025-11-29T13:00:00Z") == []
    assert alliance.refused(T2, "doctor", "referral", "ReleaseLapsedHold", "REF-1")[0] == 409
    # the target may still take the patient, without the slot
    alliance.ok(T, "doctor", "referral", "RejectReferral", "REF-1", "NO_BED", "")
    assert statuses(hold(alliance)) == ["HELD", "LAPSED"]


def test_a_referral_without_hold_has_none_to_release(alliance: Alliance) -> None:
    alliance.ok(A, "doctor", "referral", "Refer", "REF-1", "APP-1", "V-1", A, T, "UP", "R-1")
    assert alliance.refused(A, "doctor", "referral", "CancelHold", "REF-1") == (
        404,
        "referral REF-1 holds no slot",
    )
    alliance.ok(T, "doctor", "referral", "AcceptReferral", "REF-1")  # fmt: skip


def test_the_connectors_event_names_the_held_slot_and_each_release_is_announced(
    alliance: Alliance,
) -> None:
    name, created = event_of(refer(alliance))
    assert name == "ReferralCreated"
    assert created == {
        "referralId": "REF-1", "visitNo": "V-1", "fromHospital": A, "toHospital": T,
        "direction": "UP", "status": "REFERRED", "clinicalRef": "R-1", "resourceId": "CT-1",
        "slot": NINE, "careType": "examination",
    }  # fmt: skip
    name, released = event_of(alliance.call(A, "doctor", "referral", "CancelHold", "REF-1"))
    assert (name, released["status"], released["holder"]) == ("HoldReleased", "CANCELLED", A)


def event_of(result: SimulationResult) -> tuple[str, dict[str, Any]]:
    assert result.status == 200, result.message
    assert result.event is not None
    event = chaincode_event_pb2.ChaincodeEvent.FromString(result.event)
    return event.event_name, json.loads(event.payload)


def test_a_third_hospital_learns_nothing_of_a_hold_it_may_not_release(alliance: Alliance) -> None:
    assert refer(alliance).status == 200
    alliance.ok(T, "doctor", "referral", "AcceptReferral", "REF-1")
    # the same refusal whatever the referral's state or hold: not theirs
    for function in ("CancelHold", "MarkNoShow"):
        for referral_id in ("REF-1", "REF-404"):
            code, _ = alliance.refused(T2, "doctor", "referral", function, referral_id)
            assert code == (403 if referral_id == "REF-1" else 404)
    assert alliance.refused(B, "doctor", "referral", "CancelHold", "REF-1") == (
        403, f"caller of {B} cannot release the slot held by referral REF-1 for {A}"
    )  # fmt: skip


def test_the_held_slots_care_type_picks_the_agreements_fee(alliance: Alliance) -> None:
    fees = {"outpatient": {"amountCents": 5000, "payer": "target"},
            "inpatient": {"amountCents": 20000, "payer": "target"}}  # fmt: skip
    terms = json.dumps({"version": 2, "fees": {"UP": fees}})
    alliance.ok(A, "clerk", "settlement", "ProposeAgreement", "AG-1", T, terms)
    alliance.ok(T, "clerk", "settlement", "AcceptAgreement", "AG-1")
    assert refer(alliance, resource="BED-1").status == 200
    alliance.ok(T, "doctor", "referral", "AcceptReferral", "REF-1")
    alliance.ok(T, "doctor", "records", "RegisterRecord", "FB-1", PATIENT, DIGEST, "[]", json.dumps([A]))  # fmt: skip
    done = alliance.ok(T, "doctor", "referral", "CompleteReferral", "REF-1", "FB-1")
    assert (done["careType"], done["settlement"]["amountCents"]) == ("inpatient", 20000)
