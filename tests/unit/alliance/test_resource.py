"""Resource sharing: bookings hold slots; one slot is one key."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import chaincode_event_pb2
from tests.unit.alliance.harness import Alliance

from medalliance.alliance.records import RecordsContract
from medalliance.alliance.resource import DECLINE_REASONS, ResourceContract
from medalliance.alliance.visit import VisitContract
from medalliance.contracts import Context, Contract, create_composite_key, transaction
from medalliance.contracts.simulation import SimulationResult
from medalliance.ledger.mvcc import MVCC_READ_CONFLICT, VALID, MvccTx, check_block

PATIENT = "9f86d081884c7d65"
OTHER_PATIENT = "2c26b46b68ffc68f"
DIGEST = hashlib.sha256(b"sealed CT report").hexdigest()
NINE, TEN, ELEVEN, NOON = (f"2026-12-01T{h}:00" for h in ("09", "10", "11", "12"))
NOT_OFFERED = "2026-12-02T09:00"


def at(n: int) -> str:
    """The timestamp of the alliance's n-th call (the harness clock steps one second a call)."""
    return f"2025-11-28T12:00:{n:02d}.000Z"


class Referral(Contract):
    """A stand-in for the referral contract, the only caller that may move a visit."""

    name = "referral"

    @transaction
    def Move(self, ctx: Context, visit_no: str, to_hospital: str) -> str:
        return ctx.stub.invoke_chaincode("visit", ["TransferVisit", visit_no, to_hospital]).decode()


@pytest.fixture
def alliance() -> Alliance:
    """RES-1 of TertiaryA with BK-1 (SecondaryA, 09:00, REQUESTED) and BK-2 (SecondaryB, 10:00,
    CONFIRMED); visit V-1 at SecondaryA. Results: tests/unit/alliance/test_recognition.py."""
    a = Alliance(
        {
            "resource": ResourceContract(),
            "visit": VisitContract(),
            "records": RecordsContract(),
            "referral": Referral(),
        }
    )
    slots = json.dumps([ELEVEN, NINE, NOON, TEN])
    a.ok("TertiaryAMSP", "clerk", "resource", "PublishResource", "RES-1", "TertiaryAMSP", "EQUIPMENT", "CT scanner, 64-slice", slots)  # fmt: skip
    a.ok("SecondaryAMSP", "doctor", "visit", "RegisterVisit", "V-1", PATIENT, "SecondaryAMSP")
    a.ok("SecondaryAMSP", "doctor", "records", "RegisterRecord", "R-1", PATIENT, DIGEST, "[]", '["TertiaryAMSP"]')  # fmt: skip
    a.ok("SecondaryAMSP", "doctor", "records", "RegisterRecord", "R-2", OTHER_PATIENT, DIGEST, "[]", '["TertiaryAMSP"]')  # fmt: skip
    a.ok("TertiaryBMSP", "doctor", "records", "RegisterRecord", "R-3", PATIENT, DIGEST, "[]", "[]")
    a.ok("SecondaryAMSP", "clerk", "resource", "RequestBooking", "BK-1", "RES-1", "SecondaryAMSP", NINE, "V-1")  # fmt: skip
    a.ok("SecondaryBMSP", "clerk", "resource", "RequestBooking", "BK-2", "RES-1", "SecondaryBMSP", TEN, "")  # fmt: skip
    a.ok("TertiaryAMSP", "doctor", "resource", "ConfirmBooking", "BK-2")
    a.ok("TertiaryAMSP", "doctor", "resource", "GetResource", "RES-1")  # keeps later calls' times
    assert a.count == 9
    return a


def event(result: SimulationResult) -> tuple[str, Any]:
    assert result.status == 200, result.message
    assert result.event is not None
    parsed = chaincode_event_pb2.ChaincodeEvent.FromString(result.event)
    return parsed.event_name, json.loads(parsed.payload)


def payload(result: SimulationResult) -> Any:
    assert result.status == 200, result.message
    return json.loads(result.payload)


def role_of(msp_id: str) -> str:
    """Regulators' users are auditors, hospitals' doctors: visibility never depends on it."""
    return "auditor" if msp_id.endswith("HCMSP") else "doctor"


def res1(**changes: object) -> dict[str, Any]:
    return {
        "resourceId": "RES-1",
        "hospital": "TertiaryAMSP",
        "kind": "EQUIPMENT",
        "description": "CT scanner, 64-slice",
        "slots": [NINE, TEN, ELEVEN, NOON],
        "status": "OPEN",
        "publishedAt": at(1),
        "txId": "tx00001",
        **changes,
    }


# --- resources -------------------------------------------------------------------------------


def test_a_published_resource_is_stored_sorted_and_announced(alliance: Alliance) -> None:
    slots = json.dumps([ELEVEN, NINE])
    published = alliance.call("TertiaryBMSP", "doctor", "resource", "PublishResource", "RES-2", "TertiaryBMSP", "EXPERT", "Cardiology consultation", slots)  # fmt: skip
    expected = {
        "resourceId": "RES-2",
        "hospital": "TertiaryBMSP",
        "kind": "EXPERT",
        "description": "Cardiology consultation",
        "slots": [NINE, ELEVEN],
        "status": "OPEN",
        "publishedAt": at(10),
        "txId": "tx00010",
    }
    assert payload(published) == expected
    assert event(published) == (
        "ResourcePublished",
        {"resourceId": "RES-2", "hospital": "TertiaryBMSP", "kind": "EXPERT"},
    )
    assert alliance.ok("OtherHCMSP", "auditor", "resource", "GetResource", "RES-2") == expected


def test_open_resources_are_listed_with_their_free_slots(alliance: Alliance) -> None:
    alliance.ok("TertiaryBMSP", "clerk", "resource", "PublishResource", "RES-0", "TertiaryBMSP", "BED", "Ward 3", f'["{NINE}"]')  # fmt: skip
    alliance.ok("SecondaryCMSP", "clerk", "resource", "PublishResource", "RES-3", "SecondaryCMSP", "BED", "Ward 1", f'["{TEN}"]')  # fmt: skip
    alliance.ok("SecondaryCMSP", "clerk", "resource", "WithdrawResource", "RES-3")
    ward3 = alliance.ok("OtherHCMSP", "auditor", "resource", "GetResource", "RES-0")
    everything = alliance.ok("SecondaryBMSP", "clerk", "resource", "ListResources", "")
    assert everything == [
        {**ward3, "freeSlots": [NINE]},
        {**res1(), "freeSlots": [ELEVEN, NOON]},  # BK-1 holds 09:00 while requested
    ]
    assert alliance.ok("SecondaryBMSP", "clerk", "resource", "ListResources", "BED") == [
        {**ward3, "freeSlots": [NINE]}
    ]
    assert alliance.ok("SecondaryBMSP", "clerk", "resource", "ListResources", "EXPERT") == []


def test_a_withdrawn_resource_keeps_its_bookings_and_takes_no_new_ones(alliance: Alliance) -> None:
    withdrawn = alliance.call("TertiaryAMSP", "clerk", "resource", "WithdrawResource", "RES-1")
    assert payload(withdrawn) == res1(status="WITHDRAWN", withdrawnAt=at(10))
    assert event(withdrawn) == (
        "ResourceWithdrawn",
        {"resourceId": "RES-1", "hospital": "TertiaryAMSP"},
    )
    booking = alliance.ok("SecondaryBMSP", "clerk", "resource", "GetBooking", "BK-2")
    assert booking["status"] == "CONFIRMED"
    assert alliance.ok("SecondaryBMSP", "clerk", "resource", "ListResources", "") == []
    closed = (409, "resource RES-1 is WITHDRAWN")
    assert alliance.refused("SecondaryBMSP", "clerk", "resource", *REQUEST, ELEVEN, "") == closed
    assert alliance.refused("TertiaryAMSP", "clerk", "resource", "ConfirmBooking", "BK-1") == closed
    assert alliance.refused("TertiaryAMSP", "clerk", "resource", "WithdrawResource", "RES-1") == (
        closed
    )
    declined = alliance.ok(
        "TertiaryAMSP", "clerk", "resource", "DeclineBooking", "BK-1", "SLOT_UNAVAILABLE"
    )
    assert declined["status"] == "DECLINED"


# --- bookings --------------------------------------------------------------------------------


def test_a_booking_is_requested_confirmed_and_cancelled(alliance: Alliance) -> None:
    requested = alliance.call("SecondaryBMSP", "clerk", "resource", "RequestBooking", "BK-3", "RES-1", "SecondaryBMSP", ELEVEN, "")  # fmt: skip
    booking = {
        "bookingId": "BK-3",
        "resourceId": "RES-1",
        "owner": "TertiaryAMSP",
        "requester": "SecondaryBMSP",
        "slot": ELEVEN,
        "visitNo": "",
        "status": "REQUESTED",
        "requestedAt": at(10),
    }
    announced = {k: booking[k] for k in ("bookingId", "resourceId", "owner", "requester", "slot")}
    assert payload(requested) == booking
    assert event(requested) == ("BookingRequested", announced)
    confirmed = alliance.call("TertiaryAMSP", "clerk", "resource", "ConfirmBooking", "BK-3")
    booking.update(status="CONFIRMED", confirmedAt=at(11))
    assert payload(confirmed) == booking
    assert event(confirmed) == ("BookingConfirmed", announced)
    cancelled = alliance.call("SecondaryBMSP", "doctor", "resource", "CancelBooking", "BK-3")
    booking.update(status="CANCELLED", cancelledAt=at(12))
    assert payload(cancelled) == booking
    assert event(cancelled) == ("BookingCancelled", announced)
    assert alliance.ok("DistrictHCMSP", "auditor", "resource", "GetBooking", "BK-3") == booking
    free = alliance.ok("SecondaryBMSP", "clerk", "resource", "ListResources", "EQUIPMENT")
    assert free[0]["freeSlots"] == [ELEVEN, NOON]
    again = alliance.ok("SecondaryAMSP", "clerk", "resource", "RequestBooking", "BK-4", "RES-1", "SecondaryAMSP", ELEVEN, "")  # fmt: skip
    assert again["status"] == "REQUESTED"
    assert alliance.refused("SecondaryBMSP", "clerk", "resource", "CancelBooking", "BK-3") == (
        409,
        "booking BK-3 is CANCELLED",
    )


def test_a_declined_booking_frees_its_slot(alliance: Alliance) -> None:
    declined = alliance.call("TertiaryAMSP", "doctor", "resource", "DeclineBooking", "BK-1", "EQUIPMENT_UNAVAILABLE")  # fmt: skip
    assert payload(declined) == {
        "bookingId": "BK-1",
        "resourceId": "RES-1",
        "owner": "TertiaryAMSP",
        "requester": "SecondaryAMSP",
        "slot": NINE,
        "visitNo": "V-1",
        "status": "DECLINED",
        "requestedAt": at(6),
        "declinedAt": at(10),
        "reasonCode": "EQUIPMENT_UNAVAILABLE",
    }
    assert event(declined) == (
        "BookingDeclined",
        {
            "bookingId": "BK-1",
            "resourceId": "RES-1",
            "owner": "TertiaryAMSP",
            "requester": "SecondaryAMSP",
            "slot": NINE,
        },
    )
    taken = alliance.ok("SecondaryBMSP", "clerk", "resource", "RequestBooking", "BK-3", "RES-1", "SecondaryBMSP", NINE, "")  # fmt: skip
    assert taken["slot"] == NINE


@pytest.mark.parametrize(
    ("caller", "visible"),
    [
        pytest.param("TertiaryAMSP", True, id="the owner sees the booking"),
        pytest.param("SecondaryAMSP", True, id="the requester sees the booking"),
        pytest.param("DistrictHCMSP", True, id="their district regulator sees the booking"),
        pytest.param("CityHCMSP", True, id="the city regulator above them sees the booking"),
        pytest.param("OtherHCMSP", False, id="another district's regulator does not"),
        pytest.param("TertiaryBMSP", False, id="an uninvolved hospital does not"),
    ],
)
def test_a_booking_is_seen_by_its_parties_and_their_regulators(
    alliance: Alliance, caller: str, visible: bool
) -> None:
    if visible:
        booking = alliance.ok(caller, role_of(caller), "resource", "GetBooking", "BK-1")
        assert (booking["bookingId"], booking["visitNo"]) == ("BK-1", "V-1")
    else:
        assert alliance.refused(caller, role_of(caller), "resource", "GetBooking", "BK-1") == (
            403,
            f"{caller} is neither a party to booking BK-1 nor their regulator",
        )


# --- results ---------------------------------------------------------------------------------


# --- refusals --------------------------------------------------------------------------------

PUBLISH = ["PublishResource", "RES-2", "TertiaryAMSP", "BED", "Ward 5"]
REQUEST = ["RequestBooking", "BK-3", "RES-1", "SecondaryBMSP"]
DECLINE_CODES = ", ".join(DECLINE_REASONS)


@pytest.mark.parametrize(
    ("caller", "role", "args", "status", "message"),
    [
        pytest.param("DistrictHCMSP", "auditor", [*PUBLISH, f'["{NINE}"]'], 403, "role clerk or doctor required, caller has auditor", id="a regulator cannot publish a resource"),
        pytest.param("SecondaryAMSP", "clerk", [*PUBLISH, f'["{NINE}"]'], 403, "caller of SecondaryAMSP cannot publish a resource for TertiaryAMSP", id="a hospital publishes only its own resources"),
        pytest.param("DistrictHCMSP", "clerk", ["PublishResource", "RES-2", "DistrictHCMSP", "BED", "Ward 5", f'["{NINE}"]'], 400, "DistrictHCMSP is a regulator organisation, not a hospital", id="only hospitals publish resources"),
        pytest.param("TertiaryAMSP", "clerk", ["PublishResource", "RES-2", "NowhereMSP", "BED", "Ward 5", f'["{NINE}"]'], 404, "NowhereMSP is not a member of channel alliance", id="the hospital must be a channel member"),
        pytest.param("TertiaryAMSP", "clerk", ["PublishResource", "RES-1", "TertiaryAMSP", "BED", "Ward 5", f'["{NINE}"]'], 409, "resource RES-1 already exists", id="resource ids are unique"),
        pytest.param("TertiaryAMSP", "clerk", ["PublishResource", "RES 2", "TertiaryAMSP", "BED", "Ward 5", f'["{NINE}"]'], 400, "resource id 'RES 2' may use letters, digits and ._- (1-64)", id="a resource id has no spaces"),
        pytest.param("TertiaryAMSP", "clerk", ["PublishResource", "RES-2", "TertiaryAMSP", "CAR", "Ward 5", f'["{NINE}"]'], 400, "kind must be one of EQUIPMENT, EXPERT, BED, OUTPATIENT, not 'CAR'", id="the kind is equipment, expert, bed or outpatient"),
        pytest.param("TertiaryAMSP", "clerk", ["PublishResource", "RES-2", "TertiaryAMSP", "BED", " ", f'["{NINE}"]'], 400, "description must not be empty", id="a resource is described"),
        pytest.param("TertiaryAMSP", "clerk", [*PUBLISH, "[]"], 400, "slots must be a JSON array of 1 to 200 slot labels", id="a resource offers at least one slot"),
        pytest.param("TertiaryAMSP", "clerk", [*PUBLISH, json.dumps([f"2026-12-01T{m // 60:02d}:{m % 60:02d}" for m in range(201)])], 400, "slots must be a JSON array of 1 to 200 slot labels", id="a resource offers at most 200 slots"),
        pytest.param("TertiaryAMSP", "clerk", [*PUBLISH, f'["{NINE}",'], 400, "slots must be a JSON array of 1 to 200 slot labels", id="slots that are not JSON are refused"),
        pytest.param("TertiaryAMSP", "clerk", [*PUBLISH, "[900]"], 400, "slots must be a JSON array of 1 to 200 slot labels", id="slot labels are strings"),
        pytest.param("TertiaryAMSP", "clerk", [*PUBLISH, '["monday"]'], 400, "slot 'monday' may use digits and T:.- (1-32)", id="slot labels are times"),
        pytest.param("TertiaryAMSP", "clerk", [*PUBLISH, json.dumps([NINE, TEN, NINE])], 400, f"slots list {NINE} more than once", id="slot labels are distinct"),
        pytest.param("SecondaryAMSP", "clerk", ["WithdrawResource", "RES-1"], 403, "resource RES-1 belongs to TertiaryAMSP, not SecondaryAMSP", id="only the owner withdraws a resource"),
        pytest.param("TertiaryAMSP", "clerk", ["WithdrawResource", "RES-9"], 404, "resource RES-9 does not exist", id="withdrawing an unknown resource"),
        pytest.param("SecondaryBMSP", "reviewer", [*REQUEST, ELEVEN, ""], 403, "role clerk or doctor required, caller has reviewer", id="a reviewer cannot book"),
        pytest.param("SecondaryAMSP", "clerk", [*REQUEST, ELEVEN, ""], 403, "caller of SecondaryAMSP cannot request a booking for SecondaryBMSP", id="a hospital books only for itself"),
        pytest.param("DistrictHCMSP", "clerk", ["RequestBooking", "BK-3", "RES-1", "DistrictHCMSP", ELEVEN, ""], 400, "DistrictHCMSP is a regulator organisation, not a hospital", id="only hospitals book"),
        pytest.param("TertiaryAMSP", "clerk", ["RequestBooking", "BK-3", "RES-1", "TertiaryAMSP", ELEVEN, ""], 400, "TertiaryAMSP cannot book its own resource RES-1", id="a hospital cannot book its own resource"),
        pytest.param("SecondaryBMSP", "clerk", [*REQUEST, NINE, ""], 409, f"slot {NINE} of RES-1 is already booked by BK-1", id="a requested slot is taken"),
        pytest.param("SecondaryAMSP", "clerk", ["RequestBooking", "BK-3", "RES-1", "SecondaryAMSP", TEN, ""], 409, f"slot {TEN} of RES-1 is already booked by BK-2", id="a confirmed slot is taken"),
        pytest.param("SecondaryBMSP", "clerk", [*REQUEST, NOT_OFFERED, ""], 404, f"resource RES-1 offers no slot {NOT_OFFERED}", id="only offered slots are booked"),
        pytest.param("SecondaryBMSP", "clerk", [*REQUEST, "9am", ""], 400, "slot '9am' may use digits and T:.- (1-32)", id="a slot label is checked"),
        pytest.param("SecondaryBMSP", "clerk", ["RequestBooking", "BK-1", "RES-1", "SecondaryBMSP", ELEVEN, ""], 409, "booking BK-1 already exists", id="booking ids are unique"),
        pytest.param("SecondaryBMSP", "clerk", ["RequestBooking", "BK-3", "RES-9", "SecondaryBMSP", ELEVEN, ""], 404, "resource RES-9 does not exist", id="booking an unknown resource"),
        pytest.param("SecondaryBMSP", "clerk", [*REQUEST, ELEVEN, "V-1"], 403, "patient of visit V-1 is at SecondaryAMSP, not SecondaryBMSP", id="a booking names only a visit of the requester"),
        pytest.param("SecondaryBMSP", "clerk", [*REQUEST, ELEVEN, "V-9"], 404, "visit V-9 does not exist", id="a booking names only an existing visit"),
        pytest.param("SecondaryBMSP", "clerk", [*REQUEST, ELEVEN, "V 1"], 400, "visit number 'V 1' may use letters, digits and ._- (1-64)", id="a visit number is checked"),
        pytest.param("TertiaryAMSP", "auditor", ["ConfirmBooking", "BK-1"], 403, "role clerk or doctor required, caller has auditor", id="an auditor cannot confirm"),
        pytest.param("SecondaryAMSP", "clerk", ["ConfirmBooking", "BK-1"], 403, "resource RES-1 belongs to TertiaryAMSP, not SecondaryAMSP", id="the requester cannot confirm its own booking"),
        pytest.param("TertiaryAMSP", "clerk", ["ConfirmBooking", "BK-2"], 409, "booking BK-2 is CONFIRMED", id="a booking is confirmed once"),
        pytest.param("TertiaryAMSP", "clerk", ["ConfirmBooking", "BK-9"], 404, "booking BK-9 does not exist", id="confirming an unknown booking"),
        pytest.param("TertiaryAMSP", "clerk", ["DeclineBooking", "BK-2", "OTHER"], 409, "booking BK-2 is CONFIRMED", id="a confirmed booking cannot be declined"),
        pytest.param("TertiaryAMSP", "clerk", ["DeclineBooking", "BK-1", ""], 400, f"reasonCode must be one of {DECLINE_CODES}; free text goes into a sealed note (a records entry), never onto the ledger", id="a decline gives its reason code"),
        pytest.param("TertiaryAMSP", "clerk", ["DeclineBooking", "BK-1", "患者有心脏起搏器"], 400, f"reasonCode must be one of {DECLINE_CODES}; free text goes into a sealed note (a records entry), never onto the ledger", id="a free-text decline reason is refused and not echoed"),
        pytest.param("SecondaryBMSP", "clerk", ["DeclineBooking", "BK-1", "NOT_SUITABLE"], 403, "resource RES-1 belongs to TertiaryAMSP, not SecondaryBMSP", id="only the owner declines"),
        pytest.param("TertiaryAMSP", "clerk", ["CancelBooking", "BK-1"], 403, "booking BK-1 was requested by SecondaryAMSP, not TertiaryAMSP", id="only the requester cancels"),
        pytest.param("DistrictHCMSP", "reviewer", ["CancelBooking", "BK-1"], 403, "role clerk or doctor required, caller has reviewer", id="a regulator cannot cancel"),
        pytest.param("TertiaryAMSP", "clerk", ["GetBooking", "BK-9"], 404, "booking BK-9 does not exist", id="reading an unknown booking"),
        pytest.param("TertiaryAMSP", "clerk", ["GetResource", "RES-9"], 404, "resource RES-9 does not exist", id="reading an unknown resource"),
        pytest.param("TertiaryAMSP", "clerk", ["ListResources", "CAR"], 400, "kind must be one of EQUIPMENT, EXPERT, BED, OUTPATIENT, not 'CAR'", id="listing an unknown kind"),
        pytest.param("SecondaryAMSP", "doctor", ["PublishResource", "RES-2", "SecondaryAMSP", "BED", "Ward 5"], 400, "PublishResource takes 5 arguments, got 4", id="a missing argument is counted"),
        pytest.param("SecondaryAMSP", "doctor", ["GetBooking"], 400, "GetBooking takes 1 arguments, got 0", id="no argument is counted"),
        pytest.param("SecondaryAMSP", "doctor", ["ListResources", "", "BED"], 400, "ListResources takes 1 arguments, got 2", id="an extra argument is counted"),
    ],
)  # fmt: skip
def test_refusals_say_why_and_write_nothing(
    alliance: Alliance, caller: str, role: str, args: list[str], status: int, message: str
) -> None:
    assert alliance.refused(caller, role, "resource", *args) == (status, message)


# --- concurrency -----------------------------------------------------------------------------


def rwset(result: SimulationResult) -> tuple[tuple[str, kv_rwset_pb2.KVRWSet], ...]:
    assert result.status == 200, result.message
    tx = rwset_pb2.TxReadWriteSet.FromString(result.rwset)
    return tuple((ns.namespace, kv_rwset_pb2.KVRWSet.FromString(ns.rwset)) for ns in tx.ns_rwset)


def writes(result: SimulationResult) -> set[tuple[str, str]]:
    return {(ns, w.key) for ns, rw in rwset(result) for w in rw.writes}


def slot_key(slot: str) -> tuple[str, str]:
    return ("resource", create_composite_key("slot", ["RES-1", slot]))


@pytest.mark.parametrize(
    ("first", "second", "codes"),
    [
        pytest.param(("SecondaryAMSP", "clerk", "RequestBooking", "BK-3", "RES-1", "SecondaryAMSP", ELEVEN, ""), ("SecondaryBMSP", "clerk", "RequestBooking", "BK-4", "RES-1", "SecondaryBMSP", ELEVEN, ""), [VALID, MVCC_READ_CONFLICT], id="two requests for one slot: only the first commits"),
        pytest.param(("SecondaryAMSP", "clerk", "RequestBooking", "BK-3", "RES-1", "SecondaryAMSP", ELEVEN, ""), ("SecondaryBMSP", "clerk", "RequestBooking", "BK-4", "RES-1", "SecondaryBMSP", NOON, ""), [VALID, VALID], id="requests for different slots both commit"),
        pytest.param(("TertiaryAMSP", "clerk", "ConfirmBooking", "BK-1"), ("SecondaryBMSP", "clerk", "RequestBooking", "BK-4", "RES-1", "SecondaryBMSP", NOON, ""), [VALID, VALID], id="a confirmation and a request for another slot both commit"),
        pytest.param(("TertiaryAMSP", "clerk", "WithdrawResource", "RES-1"), ("SecondaryBMSP", "clerk", "RequestBooking", "BK-4", "RES-1", "SecondaryBMSP", NOON, ""), [VALID, MVCC_READ_CONFLICT], id="a request racing a withdrawal does not commit"),
    ],
)  # fmt: skip
def test_only_transactions_on_the_same_thing_conflict(
    alliance: Alliance, first: tuple[str, ...], second: tuple[str, ...], codes: list[int]
) -> None:
    simulated = [
        alliance.call(msp, role, "resource", *args, commit=False)
        for msp, role, *args in (first, second)
    ]
    txs = [MvccTx(n, rwset(r), valid_so_far=True) for n, r in enumerate(simulated)]
    assert check_block(alliance.state, txs) == codes


def test_one_slot_is_one_key_and_different_slots_are_disjoint(alliance: Alliance) -> None:
    def request(booking_id: str, requester: str, slot: str) -> SimulationResult:
        args = ("RequestBooking", booking_id, "RES-1", requester, slot, "")
        return alliance.call(requester, "clerk", "resource", *args, commit=False)

    first = request("BK-3", "SecondaryAMSP", ELEVEN)
    rival = request("BK-4", "SecondaryBMSP", ELEVEN)
    other = request("BK-5", "SecondaryBMSP", NOON)
    assert writes(first) & writes(rival) == {slot_key(ELEVEN)}
    assert writes(first) & writes(other) == set()
    alliance.state.commit(first)
    assert alliance.refused("SecondaryBMSP", "clerk", "resource", "RequestBooking", "BK-4", "RES-1", "SecondaryBMSP", ELEVEN, "") == (409, f"slot {ELEVEN} of RES-1 is already booked by BK-3")  # fmt: skip
