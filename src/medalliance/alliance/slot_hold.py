"""Capacity held with a referral: the pure rules (keys, care types, release reasons, slot times).

A referral may hold one slot of the target hospital's resource in the transaction that records
it (`referral.ReferWithHold` calling `resource.HoldSlot`). The hold writes the same per-(resource,
slot) key a booking writes, so two referrals — or a referral and a booking — racing for one slot
both read it absent and write it: MVCC commits one and invalidates the other
(MVCC_READ_CONFLICT). The hold itself is one key per referral; `activehold` indexes the holds
still HELD so a sweeper finds lapsed ones without reading every hold.

This module holds no contract and no I/O: resource_hold.py (the resource side) and
referral_hold.py (the referral side) apply these rules.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from medalliance.contracts import create_composite_key
from medalliance.errors import ContractError

# The care a held slot stands for, recorded on the referral as `careType`. An EXPERT slot is a
# consultation, not capacity taken by a referred patient: it is not held with a referral.
CARE_TYPES: dict[str, str] = {
    "BED": "inpatient",
    "EQUIPMENT": "examination",
    "OUTPATIENT": "outpatient",
}
# Why a HELD slot was given back; NO_SHOW also ends a BOOKED hold (the patient did not come).
RELEASE_REASONS = ("REJECTED", "CANCELLED", "NO_SHOW", "LAPSED")
STATUSES = ("HELD", "BOOKED", *RELEASE_REASONS)


def hold_key(referral_id: str) -> str:
    return create_composite_key("hold", [referral_id])


def active_key(referral_id: str) -> str:
    return create_composite_key("activehold", [referral_id])


def care_type(kind: str, resource_id: str) -> str:
    found = CARE_TYPES.get(kind)
    if found is None:
        raise ContractError(
            f"resource {resource_id} is an {kind} resource; a referral holds only "
            f"{', '.join(CARE_TYPES)} slots",
            400,
        )
    return found


def slot_time(slot: str) -> str | None:
    """The slot's start as `now_iso`'s form (UTC, a label without a zone is UTC), or None for a
    label that is not a time (a bed number): such a slot has no time to be missed."""
    try:
        when = dt.datetime.fromisoformat(slot)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_release(hold: dict[str, Any], reason: str, now: str) -> None:
    """`reason` may end `hold` now (409 otherwise): a HELD hold for any reason; a BOOKED one only
    for a no-show; a no-show only once the slot's time has passed."""
    if reason not in RELEASE_REASONS:
        raise ContractError(f"release reason must be one of {', '.join(RELEASE_REASONS)}", 400)
    allowed = ("HELD", "BOOKED") if reason == "NO_SHOW" else ("HELD",)
    if hold["status"] not in allowed:
        raise ContractError(
            f"the hold of referral {hold['referralId']} is {hold['status']}; "
            f"{reason} needs {' or '.join(allowed)}",
            409,
        )
    if reason == "NO_SHOW":
        start = slot_time(hold["slot"])
        if start is None:
            raise ContractError(f"slot {hold['slot']} is not a time; no no-show to record", 409)
        if now <= start:
            raise ContractError(
                f"slot {hold['slot']} starts {start}; a no-show is recorded after it", 409
            )


def history_entry(status: str, now: str, by: str, tx_id: str) -> dict[str, str]:
    return {"status": status, "at": now, "by": by, "txId": tx_id}
