"""The slot a referral holds, for the hospital's pages and JSON API (alliance/slot_hold.py).

The referral form offers the free slots the alliance's other hospitals hold out for referred
patients (outpatient appointments, examination time, beds) as `RESOURCE:SLOT`; the referral then
holds the chosen one in its own transaction (`ReferWithHold`), so a slot taken meanwhile refuses
the referral with the contract's words and holds nothing. The origin may give the slot back, the
target records a no-show after its time; both read the hold with its history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medalliance.alliance.slot_hold import CARE_TYPES
from medalliance.errors import NotFound
from medalliance.web.i18n import N_
from medalliance.web.services.hospital_access import (
    CLERK_ROLES,
    DOCTOR_ROLES,
    HospitalBackend,
    Staff,
    Written,
    evaluate_json,
    require_hospital_role,
    submit,
)

# the care types the form shows and the resource kind referrals added, translated
CARE_TYPE_LABELS = (N_("inpatient"), N_("examination"), N_("outpatient"), N_("OUTPATIENT"))
HOLD_STATUSES = (N_("HELD"), N_("BOOKED"), N_("CANCELLED"), N_("NO_SHOW"), N_("LAPSED"))

__all__ = [
    "SlotChoice",
    "cancel_hold",
    "hold_of",
    "holdable_slots",
    "no_show",
    "referral_hold",
    "slots_of",
]


@dataclass(frozen=True, slots=True)
class SlotChoice:
    value: str  # RESOURCE:SLOT, the form's and API's `hold_slot`
    hospital: str
    resource_id: str
    kind: str
    care_type: str
    description: str
    slot: str


def holdable_slots(backend: HospitalBackend, staff: Staff) -> list[SlotChoice]:
    """Free slots of other hospitals' open resources a referral may hold, by hospital."""
    require_hospital_role(backend, staff, "list slots to hold", CLERK_ROLES)
    found: list[dict[str, Any]] = evaluate_json(backend, staff, "resource", "ListResources", "")
    return [
        SlotChoice(
            f"{r['resourceId']}:{slot}",
            r["hospital"],
            r["resourceId"],
            r["kind"],
            CARE_TYPES[r["kind"]],
            r["description"],
            slot,
        )
        for r in found
        if r["kind"] in CARE_TYPES and r["hospital"] != staff.msp_id
        for slot in r["freeSlots"]
    ]


def hold_args(hold_slot: str) -> tuple[str, ...]:
    """The contract arguments of a form's `RESOURCE:SLOT` ("" → none)."""
    resource, _, slot = hold_slot.partition(":")
    return (resource, slot) if hold_slot else ()


def slots_of(backend: HospitalBackend, staff: Staff, resource_id: str) -> list[dict[str, Any]]:
    require_hospital_role(backend, staff, "list a resource's slots", CLERK_ROLES)
    found: list[dict[str, Any]] = evaluate_json(backend, staff, "resource", "SlotsOf", resource_id)
    return found


def hold_of(backend: HospitalBackend, staff: Staff, referral_id: str) -> dict[str, Any]:
    require_hospital_role(backend, staff, "read a referral's hold", CLERK_ROLES)
    found: dict[str, Any] = evaluate_json(backend, staff, "resource", "GetHold", referral_id)
    return found


def referral_hold(
    backend: HospitalBackend, staff: Staff, referral_id: str
) -> dict[str, Any] | None:
    """The hold of a referral this hospital is a party to, or None (the page checked it is)."""
    try:
        return hold_of(backend, staff, referral_id)
    except NotFound:
        return None


def cancel_hold(backend: HospitalBackend, staff: Staff, referral_id: str) -> Written:
    require_hospital_role(backend, staff, "give a held slot back", DOCTOR_ROLES)
    done = submit(backend, staff, "referral", "CancelHold", referral_id)
    return Written(done.tx_id, done.block)


def no_show(backend: HospitalBackend, staff: Staff, referral_id: str) -> Written:
    require_hospital_role(backend, staff, "record a no-show", CLERK_ROLES)
    done = submit(backend, staff, "referral", "MarkNoShow", referral_id)
    return Written(done.tx_id, done.block)
