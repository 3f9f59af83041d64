"""Resource sharing between the alliance's hospitals, and the recognition of their results.

Paper: hospitals share equipment time, expert consultation and beds, and share examination
results so a receiving hospital need not repeat an examination: that is the recognition registry
(alliance/recognition.py, issue 19), whose functions this contract inherits; the report itself
stays sealed in the records contract.

State model: one key per resource, per booking and per (resource, slot), so unrelated
transactions never conflict. A booking writes its slot key when requested: two requests for one
slot both read it absent and write it, so MVCC commits exactly one; requests for different slots
touch disjoint keys. Declining or cancelling
deletes the slot key, which frees the slot. Permissions come from the caller's certificate and
the registry (`ctx.organizations`), never from arguments.
"""

from __future__ import annotations

import json
import re
from typing import Any

from medalliance.alliance.common import (
    call,
    check_choice,
    check_code,
    check_id,
    check_text,
    hospital,
    load,
    now_iso,
    protect,
    require_may_see,
    require_org,
    require_role,
    scan,
    to_json,
)
from medalliance.alliance.recognition import ResultRecognition
from medalliance.alliance.resource_hold import SlotHolds
from medalliance.contracts import Context, Contract, create_composite_key, transaction
from medalliance.errors import ContractError

KINDS = ("EQUIPMENT", "EXPERT", "BED", "OUTPATIENT")
HOSPITAL_ROLES = ("clerk", "doctor")
SLOTS_MAX = 200
_SLOT = re.compile(r"^[0-9T:.-]{1,32}$")
# Why an owner declines a booking (closed list: a free-text reason could describe the patient).
DECLINE_REASONS = ("SLOT_UNAVAILABLE", "EQUIPMENT_UNAVAILABLE", "NOT_SUITABLE", "OTHER")


def _key(object_type: str, *attributes: str) -> str:
    """Keys: resource, booking, slot (resource, slot)."""
    return create_composite_key(object_type, attributes)


class ResourceContract(SlotHolds, ResultRecognition, Contract):
    name = "resource"

    @transaction
    def PublishResource(
        self,
        ctx: Context,
        resource_id: str,
        hospital_msp: str,
        kind: str,
        description: str,
        slots: str,
    ) -> dict[str, Any]:
        """Offer a resource's slots to the alliance; refused if the id is taken (409)."""
        require_role(ctx, *HOSPITAL_ROLES)
        check_id(resource_id, "resource id")
        check_choice(kind, "kind", KINDS)
        check_text(description, "description")  # a catalogue entry, never about a patient
        labels = _slot_labels(slots)
        hospital(ctx, hospital_msp)
        require_org(ctx, hospital_msp, "publish a resource")
        if ctx.stub.get_state(_key("resource", resource_id)) is not None:
            raise ContractError(f"resource {resource_id} already exists", 409)
        resource = {
            "resourceId": resource_id,
            "hospital": hospital_msp,
            "kind": kind,
            "description": description,
            "slots": labels,
            "status": "OPEN",
            "publishedAt": now_iso(ctx),
            "txId": ctx.tx_id,
        }
        ctx.stub.put_state(_key("resource", resource_id), to_json(resource))
        ctx.stub.set_event("ResourcePublished", _pick(resource, "resourceId", "hospital", "kind"))
        return resource

    @transaction
    def WithdrawResource(self, ctx: Context, resource_id: str) -> dict[str, Any]:
        """No new bookings; existing bookings stay, pending ones may still be declined."""
        require_role(ctx, *HOSPITAL_ROLES)
        resource = _load(ctx, "resource", resource_id)
        _require_owner(ctx, resource_id, resource["hospital"])
        _require_open(resource)
        resource.update(status="WITHDRAWN", withdrawnAt=now_iso(ctx))
        ctx.stub.put_state(_key("resource", resource_id), to_json(resource))
        ctx.stub.set_event("ResourceWithdrawn", _pick(resource, "resourceId", "hospital"))
        return resource

    @transaction
    def RequestBooking(
        self,
        ctx: Context,
        booking_id: str,
        resource_id: str,
        requester: str,
        slot: str,
        visit_no: str,
    ) -> dict[str, Any]:
        """Hold a free slot of another hospital's open resource until the owner decides."""
        require_role(ctx, *HOSPITAL_ROLES)
        check_id(booking_id, "booking id")
        _check_slot(slot)
        if visit_no:
            check_id(visit_no, "visit number")
        hospital(ctx, requester)
        require_org(ctx, requester, "request a booking")
        resource = _load(ctx, "resource", resource_id)
        if resource["hospital"] == requester:
            raise ContractError(f"{requester} cannot book its own resource {resource_id}", 400)
        _require_open(resource)
        if slot not in resource["slots"]:
            raise ContractError(f"resource {resource_id} offers no slot {slot}", 404)
        holder = ctx.stub.get_state(_key("slot", resource_id, slot))
        if holder is not None:
            raise ContractError(
                f"slot {slot} of {resource_id} is already booked by {json.loads(holder)}", 409
            )
        if ctx.stub.get_state(_key("booking", booking_id)) is not None:
            raise ContractError(f"booking {booking_id} already exists", 409)
        if visit_no:
            _require_visit_at(ctx, visit_no, requester)
        booking = {
            "bookingId": booking_id,
            "resourceId": resource_id,
            "owner": resource["hospital"],
            "requester": requester,
            "slot": slot,
            "visitNo": visit_no,
            "status": "REQUESTED",
            "requestedAt": now_iso(ctx),
        }
        ctx.stub.put_state(_key("booking", booking_id), to_json(booking))
        protect(ctx, _key("booking", booking_id), resource["hospital"])
        ctx.stub.put_state(_key("slot", resource_id, slot), to_json(booking_id))
        ctx.stub.set_event("BookingRequested", _booking_event(booking))
        return booking

    @transaction
    def ConfirmBooking(self, ctx: Context, booking_id: str) -> dict[str, Any]:
        """The owner accepts a requested booking (not once the resource is withdrawn)."""
        booking = _decide(ctx, booking_id)
        _require_open(_load(ctx, "resource", booking["resourceId"]))
        booking.update(status="CONFIRMED", confirmedAt=now_iso(ctx))
        return _save(ctx, booking, "BookingConfirmed")

    @transaction
    def DeclineBooking(self, ctx: Context, booking_id: str, reason_code: str) -> dict[str, Any]:
        """The owner refuses a requested booking (a code of `DECLINE_REASONS`); its slot is free
        again."""
        booking = _decide(ctx, booking_id)
        check_code(reason_code, "reasonCode", DECLINE_REASONS)
        booking.update(status="DECLINED", declinedAt=now_iso(ctx), reasonCode=reason_code)
        ctx.stub.del_state(_key("slot", booking["resourceId"], booking["slot"]))
        return _save(ctx, booking, "BookingDeclined")

    @transaction
    def CancelBooking(self, ctx: Context, booking_id: str) -> dict[str, Any]:
        """The requester withdraws a requested or confirmed booking; its slot is free again."""
        require_role(ctx, *HOSPITAL_ROLES)
        booking = _load(ctx, "booking", booking_id)
        if booking["requester"] != ctx.client.msp_id:
            raise ContractError(
                f"booking {booking_id} was requested by {booking['requester']}, "
                f"not {ctx.client.msp_id}",
                403,
            )
        _require_status(booking, "REQUESTED", "CONFIRMED")
        booking.update(status="CANCELLED", cancelledAt=now_iso(ctx))
        ctx.stub.del_state(_key("slot", booking["resourceId"], booking["slot"]))
        return _save(ctx, booking, "BookingCancelled")

    @transaction(evaluate=True)
    def GetResource(self, ctx: Context, resource_id: str) -> dict[str, Any]:
        return _load(ctx, "resource", resource_id)

    @transaction(evaluate=True)
    def GetBooking(self, ctx: Context, booking_id: str) -> dict[str, Any]:
        """Only for the two hospitals and the regulators above either."""
        booking = _load(ctx, "booking", booking_id)
        require_may_see(ctx, f"booking {booking_id}", booking["owner"], booking["requester"])
        return booking

    @transaction(evaluate=True)
    def ListResources(self, ctx: Context, kind: str) -> list[dict[str, Any]]:
        """Open resources (of `kind`, or all for ""), each with `freeSlots`, by resource id."""
        if kind:
            check_choice(kind, "kind", KINDS)
        found = []
        for _, raw in scan(ctx, "resource"):
            resource: dict[str, Any] = json.loads(raw)
            if resource["status"] != "OPEN" or kind not in ("", resource["kind"]):
                continue
            taken = {slot for slot, _ in scan(ctx, "slot", resource["resourceId"])}
            resource["freeSlots"] = [s for s in resource["slots"] if s not in taken]
            found.append(resource)
        return sorted(found, key=lambda r: str(r["resourceId"]))


def _slot_labels(text: str) -> list[str]:
    try:
        labels = json.loads(text)
    except ValueError:
        labels = None
    if not (
        isinstance(labels, list)
        and 1 <= len(labels) <= SLOTS_MAX
        and all(isinstance(s, str) for s in labels)
    ):
        raise ContractError(f"slots must be a JSON array of 1 to {SLOTS_MAX} slot labels", 400)
    for label in labels:
        _check_slot(label)
    if len(set(labels)) != len(labels):
        twice = sorted({s for s in labels if labels.count(s) > 1})
        raise ContractError(f"slots list {', '.join(twice)} more than once", 400)
    return sorted(labels)


def _check_slot(label: str) -> None:
    if not _SLOT.match(label):
        raise ContractError(f"slot {label!r} may use digits and T:.- (1-32)", 400)


def _require_visit_at(ctx: Context, visit_no: str, msp_id: str) -> dict[str, Any]:
    """The visit (from the visit contract: 404 if unknown), held by `msp_id` (403 if not)."""
    visit: dict[str, Any] = call(ctx, "visit", "GetVisit", visit_no)
    if visit["hospital"] != msp_id:
        raise ContractError(
            f"patient of visit {visit_no} is at {visit['hospital']}, not {msp_id}", 403
        )
    return visit


def _load(ctx: Context, object_type: str, object_id: str) -> dict[str, Any]:
    """The resource or booking `object_id`; 400 for a malformed id, 404 if absent."""
    check_id(object_id, f"{object_type} id")
    return load(ctx, _key(object_type, object_id), f"{object_type} {object_id}")


def _require_owner(ctx: Context, resource_id: str, owner: str) -> None:
    if owner != ctx.client.msp_id:
        raise ContractError(
            f"resource {resource_id} belongs to {owner}, not {ctx.client.msp_id}", 403
        )


def _require_open(resource: dict[str, Any]) -> None:
    if resource["status"] != "OPEN":
        raise ContractError(f"resource {resource['resourceId']} is {resource['status']}", 409)


def _require_status(booking: dict[str, Any], *statuses: str) -> None:
    if booking["status"] not in statuses:
        raise ContractError(f"booking {booking['bookingId']} is {booking['status']}", 409)


def _decide(ctx: Context, booking_id: str) -> dict[str, Any]:
    """A REQUESTED booking, loaded for a decision by the owner hospital."""
    require_role(ctx, *HOSPITAL_ROLES)
    booking = _load(ctx, "booking", booking_id)
    _require_owner(ctx, booking["resourceId"], booking["owner"])
    _require_status(booking, "REQUESTED")
    return booking


def _save(ctx: Context, booking: dict[str, Any], event: str) -> dict[str, Any]:
    ctx.stub.put_state(_key("booking", booking["bookingId"]), to_json(booking))
    ctx.stub.set_event(event, _booking_event(booking))
    return booking


def _booking_event(booking: dict[str, Any]) -> bytes:
    return _pick(booking, "bookingId", "resourceId", "owner", "requester", "slot")


def _pick(record: dict[str, Any], *fields: str) -> bytes:
    """An event's payload: these fields of the record."""
    return to_json({name: record[name] for name in fields})
