"""The resource contract's side of capacity held with a referral (alliance/slot_hold.py).

`HoldSlot`, `ReleaseHold` and `BookHold` answer the referral contract only (`ctx.called_by`), so
a hold exists exactly when its referral does and every release follows a referral rule (rejection,
cancellation by the origin, a no-show, a lapsed deadline). `GetHold` and `SlotsOf` show holds to
both hospitals and the regulators above them. Inherited by `ResourceContract`.
"""

from __future__ import annotations

import json
from typing import Any

from medalliance.alliance import deadline, slot_hold
from medalliance.alliance.common import (
    check_id,
    load,
    may_see,
    now_iso,
    protect,
    require_may_see,
    scan,
    to_json,
)
from medalliance.contracts import Context, create_composite_key, transaction
from medalliance.errors import ContractError


def _slot_key(resource_id: str, slot: str) -> str:
    return create_composite_key("slot", [resource_id, slot])


def _require_referral_contract(ctx: Context, what: str) -> None:
    if ctx.called_by != "referral":
        raise ContractError(f"a slot is {what} only through the referral contract", 403)


class SlotHolds:
    @transaction
    def HoldSlot(
        self,
        ctx: Context,
        referral_id: str,
        resource_id: str,
        slot: str,
        owner: str,
        holder: str,
        until: str,
    ) -> dict[str, Any]:
        """Hold a free slot of `owner`'s open resource for referral `referral_id` by `holder`;
        `until` is the referral's acceptance deadline (after it, anyone may release)."""
        _require_referral_contract(ctx, "held")
        check_id(resource_id, "resource id")
        resource = load(
            ctx, create_composite_key("resource", [resource_id]), f"resource {resource_id}"
        )
        if resource["hospital"] != owner:
            raise ContractError(
                f"resource {resource_id} belongs to {resource['hospital']}, not the target {owner}",
                400,
            )
        if resource["status"] != "OPEN":
            raise ContractError(f"resource {resource_id} is {resource['status']}", 409)
        care = slot_hold.care_type(resource["kind"], resource_id)
        if slot not in resource["slots"]:
            raise ContractError(f"resource {resource_id} offers no slot {slot!r}", 404)
        taken = ctx.stub.get_state(_slot_key(resource_id, slot))
        if taken is not None:
            raise ContractError(
                f"slot {slot} of {resource_id} is already taken by {json.loads(taken)}", 409
            )
        if ctx.stub.get_state(slot_hold.hold_key(referral_id)) is not None:
            raise ContractError(f"referral {referral_id} already holds a slot", 409)
        now = now_iso(ctx)
        hold = {
            "referralId": referral_id,
            "resourceId": resource_id,
            "slot": slot,
            "kind": resource["kind"],
            "careType": care,
            "owner": owner,
            "holder": holder,
            "until": until,
            "status": "HELD",
            "heldAt": now,
            "history": [slot_hold.history_entry("HELD", now, ctx.client.msp_id, ctx.tx_id)],
        }
        ctx.stub.put_state(_slot_key(resource_id, slot), to_json(f"referral {referral_id}"))
        ctx.stub.put_state(slot_hold.active_key(referral_id), b"1")
        _save(ctx, hold, "SlotHeld")
        protect(ctx, slot_hold.hold_key(referral_id), owner)
        return hold

    @transaction
    def ReleaseHold(self, ctx: Context, referral_id: str, reason: str) -> dict[str, Any]:
        """Give the slot back for `reason` (slot_hold.RELEASE_REASONS); the referral contract has
        checked who may."""
        _require_referral_contract(ctx, "released")
        hold = _load_hold(ctx, referral_id)
        if reason == "REJECTED" and hold["status"] != "HELD":
            return hold  # released before the rejection (cancelled, lapsed): nothing to give back
        now = now_iso(ctx)
        slot_hold.check_release(hold, reason, now)
        if hold["status"] == "BOOKED":
            _end_booking(ctx, hold, now)
        ctx.stub.del_state(_slot_key(hold["resourceId"], hold["slot"]))
        ctx.stub.del_state(slot_hold.active_key(referral_id))
        hold.update(status=reason, releasedAt=now)
        hold["history"].append(slot_hold.history_entry(reason, now, ctx.client.msp_id, ctx.tx_id))
        return _save(ctx, hold, "SlotReleased")

    @transaction
    def BookHold(self, ctx: Context, referral_id: str, visit_no: str) -> dict[str, Any]:
        """The target accepted the referral: the hold becomes a CONFIRMED booking (id = the
        referral id) of the origin, which keeps the slot."""
        _require_referral_contract(ctx, "booked")
        hold = _load_hold(ctx, referral_id)
        if hold["status"] != "HELD":
            return hold  # released before the acceptance: the patient comes without the slot
        booking_key = create_composite_key("booking", [referral_id])
        if ctx.stub.get_state(booking_key) is not None:
            raise ContractError(f"booking {referral_id} already exists", 409)
        now = now_iso(ctx)
        booking = {
            "bookingId": referral_id,
            "resourceId": hold["resourceId"],
            "owner": hold["owner"],
            "requester": hold["holder"],
            "slot": hold["slot"],
            "visitNo": visit_no,
            "status": "CONFIRMED",
            "requestedAt": hold["heldAt"],
            "confirmedAt": now,
            "referralId": referral_id,
        }
        ctx.stub.put_state(booking_key, to_json(booking))
        protect(ctx, booking_key, hold["owner"])
        ctx.stub.put_state(_slot_key(hold["resourceId"], hold["slot"]), to_json(referral_id))
        ctx.stub.del_state(slot_hold.active_key(referral_id))
        hold.update(status="BOOKED", bookingId=referral_id, bookedAt=now)
        hold["history"].append(slot_hold.history_entry("BOOKED", now, ctx.client.msp_id, ctx.tx_id))
        return _save(ctx, hold, "SlotBooked")

    @transaction(evaluate=True)
    def GetHold(self, ctx: Context, referral_id: str) -> dict[str, Any]:
        """The hold of a referral with its history: for both hospitals and their regulators."""
        hold = _load_hold(ctx, referral_id)
        require_may_see(ctx, f"the hold of referral {referral_id}", hold["owner"], hold["holder"])
        return hold

    @transaction(evaluate=True)
    def SlotsOf(self, ctx: Context, resource_id: str) -> list[dict[str, Any]]:
        """Every slot of a resource: FREE, HELD or BOOKED; who holds it (referralId/bookingId)
        only to the owner, the holder (or requester) and the regulators above either."""
        check_id(resource_id, "resource id")
        resource = load(
            ctx, create_composite_key("resource", [resource_id]), f"resource {resource_id}"
        )
        taken = {slot: json.loads(raw) for slot, raw in scan(ctx, "slot", resource_id)}
        found = []
        for slot in resource["slots"]:
            entry: dict[str, Any] = {"slot": slot, "state": "FREE"}
            holder = taken.get(slot)
            if isinstance(holder, str) and holder.startswith("referral "):
                entry["state"] = "HELD"
                hold = _load_hold(ctx, holder.removeprefix("referral "))
                if may_see(ctx, hold["owner"], hold["holder"]):
                    entry.update(referralId=hold["referralId"], holder=hold["holder"])
            elif holder is not None:
                entry["state"] = "BOOKED"
                key = create_composite_key("booking", [holder])
                booking = load(ctx, key, f"booking {holder}")
                if may_see(ctx, booking["owner"], booking["requester"]):
                    entry["bookingId"] = holder
            found.append(entry)
        return found

    @transaction(evaluate=True)
    def LapsedHolds(self, ctx: Context, at: str) -> list[dict[str, Any]]:
        """HELD holds whose referral's acceptance deadline passed before `at` (ISO 8601, as
        `now_iso` writes it): what the sweeper releases. Ids and times only."""
        at = deadline.check_instant(at, "at")
        found = []
        for referral_id, _ in scan(ctx, "activehold"):
            hold = _load_hold(ctx, referral_id)
            if hold["status"] == "HELD" and hold["until"] and hold["until"] < at:
                found.append({k: hold[k] for k in ("referralId", "resourceId", "slot", "until")})
        return sorted(found, key=lambda h: (h["until"], h["referralId"]))


def _load_hold(ctx: Context, referral_id: str) -> dict[str, Any]:
    check_id(referral_id, "referral id")
    return load(ctx, slot_hold.hold_key(referral_id), f"a hold of referral {referral_id}")


def _end_booking(ctx: Context, hold: dict[str, Any], now: str) -> None:
    key = create_composite_key("booking", [hold["bookingId"]])
    booking = load(ctx, key, f"booking {hold['bookingId']}")
    booking.update(status="NO_SHOW", noShowAt=now)
    ctx.stub.put_state(key, to_json(booking))


def _save(ctx: Context, hold: dict[str, Any], event: str) -> dict[str, Any]:
    ctx.stub.put_state(slot_hold.hold_key(hold["referralId"]), to_json(hold))
    fields = ("referralId", "resourceId", "slot", "owner", "holder", "status")
    ctx.stub.set_event(event, to_json({k: hold[k] for k in fields}))
    return hold
