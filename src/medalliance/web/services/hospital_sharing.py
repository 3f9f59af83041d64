"""Resource and result sharing, and settlement, as a hospital's staff do them in the web client.

Resources (resource contract): publish equipment time, expert consultations or beds with their
slots; book another hospital's slot for a visit; the owner confirms or declines. Results are
recognised across hospitals (web/services/hospital_recognition.py). Settlement (settlement contract,
the clerks'): the benefit-sharing agreements with other hospitals, an agreement's statement and
the hospital's balance of a month. The contracts take ids and codes only.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import StringConstraints

from medalliance.alliance.resource import DECLINE_REASONS, KINDS
from medalliance.alliance.settlement_terms import terms_lines
from medalliance.errors import ContractError
from medalliance.node.config import HOSPITAL_TYPES
from medalliance.web.services.hospital_access import (
    CLERK_ROLES,
    SETTLEMENT_ROLES,
    HospitalBackend,
    Staff,
    Written,
    evaluate_json,
    hospital_store,
    require_hospital_role,
    submit,
)
from medalliance.web.services.hospital_forms import ChainId, Form, FormInvalid

__all__ = [
    "Agreement",
    "AgreementForm",
    "BookingForm",
    "Created",
    "ResourceForm",
    "accept_agreement",
    "agreements",
    "balance",
    "decide_booking",
    "my_bookings",
    "open_resources",
    "propose_agreement",
    "publish_resource",
    "request_booking",
    "statement",
]

BOOKING_KIND = "web.booking"  # bookings this hospital requested or was asked for
PERIOD = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")  # a settlement month, YYYY-MM
Slot = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9T:.-]{1,32}$")]


class ResourceForm(Form):
    kind: Literal["EQUIPMENT", "EXPERT", "BED", "OUTPATIENT"]
    description: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]  # fmt: skip
    slots: list[Slot]


class BookingForm(Form):
    resource_id: ChainId
    slot: Slot
    visit_no: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^([A-Za-z0-9._-]{1,64})?$")] = ""  # fmt: skip


class AgreementForm(Form):
    partner: ChainId
    up_cents: int = 0  # an upward referral's fee, paid by the target
    down_cents: int = 0  # a downward referral's fee, paid by the origin
    terms: dict[str, Any] | None = None  # full terms (v2, docs/alliance.md) instead of the fees


@dataclass(frozen=True, slots=True)
class Created:
    id: str
    tx_id: str
    block: int


@dataclass(frozen=True, slots=True)
class Agreement:
    agreement_id: str
    partner: str
    status: str
    terms: str


def open_resources(backend: HospitalBackend, staff: Staff, kind: str = "") -> list[dict[str, Any]]:
    """The alliance's open resources (of `kind`), each with its free slots."""
    require_hospital_role(backend, staff, "list shared resources", CLERK_ROLES)
    if kind and kind not in KINDS:
        raise FormInvalid({"kind": f"choose one of {', '.join(KINDS)}"})
    found: list[dict[str, Any]] = evaluate_json(backend, staff, "resource", "ListResources", kind)
    return found


def publish_resource(backend: HospitalBackend, staff: Staff, form: ResourceForm) -> Created:
    require_hospital_role(backend, staff, "publish a resource", CLERK_ROLES)
    resource_id = f"RES-{secrets.token_hex(5).upper()}"
    done = submit(backend, staff, "resource", "PublishResource", resource_id, staff.msp_id,
                  form.kind, form.description, json.dumps(form.slots))  # fmt: skip
    return Created(resource_id, done.tx_id, done.block)


def request_booking(backend: HospitalBackend, staff: Staff, form: BookingForm) -> Created:
    require_hospital_role(backend, staff, "book a resource", CLERK_ROLES)
    booking_id = f"BK-{secrets.token_hex(5).upper()}"
    done = submit(backend, staff, "resource", "RequestBooking", booking_id, form.resource_id,
                  staff.msp_id, form.slot, form.visit_no)  # fmt: skip
    hospital_store(backend, staff).set_record(BOOKING_KIND, booking_id, {"side": "requested"})
    return Created(booking_id, done.tx_id, done.block)


def my_bookings(backend: HospitalBackend, staff: Staff) -> list[dict[str, Any]]:
    """The bookings this hospital requested through the web client, with their chain status."""
    require_hospital_role(backend, staff, "list bookings", CLERK_ROLES)
    rows = []
    for booking_id, _ in hospital_store(backend, staff).records(BOOKING_KIND):
        try:
            rows.append(evaluate_json(backend, staff, "resource", "GetBooking", booking_id))
        except ContractError:
            continue
    return rows


def decide_booking(
    backend: HospitalBackend, staff: Staff, booking_id: str, confirm: bool,
    reason_code: str = "",
) -> Written:  # fmt: skip
    """The owner confirms or declines (a code of `DECLINE_REASONS`) a requested booking."""
    require_hospital_role(backend, staff, "decide a booking", CLERK_ROLES)
    if not confirm and reason_code not in DECLINE_REASONS:
        raise FormInvalid({"reason_code": f"choose one of {', '.join(DECLINE_REASONS)}"})
    if confirm:
        done = submit(backend, staff, "resource", "ConfirmBooking", booking_id)
    else:
        done = submit(backend, staff, "resource", "DeclineBooking", booking_id, reason_code)
    return Written(done.tx_id, done.block)


def agreements(backend: HospitalBackend, staff: Staff) -> list[Agreement]:
    """This hospital's benefit-sharing agreements (ids `AG-<proposer>-<partner>`, as the demo and
    this client propose them), one per partner hospital at most."""
    require_hospital_role(backend, staff, "list agreements", CLERK_ROLES)
    found = []
    for org in backend.network.layout.config.organizations:
        if org.type not in HOSPITAL_TYPES or org.msp_id == staff.msp_id:
            continue
        for agreement_id in (f"AG-{staff.msp_id}-{org.msp_id}", f"AG-{org.msp_id}-{staff.msp_id}"):
            try:
                doc = evaluate_json(backend, staff, "settlement", "GetAgreement", agreement_id)
            except ContractError:
                continue
            terms = "; ".join(terms_lines(doc["terms"]))
            found.append(Agreement(agreement_id, org.msp_id, str(doc["status"]), terms))
    return found


def propose_agreement(backend: HospitalBackend, staff: Staff, form: AgreementForm) -> Created:
    require_hospital_role(backend, staff, "propose an agreement", SETTLEMENT_ROLES)
    agreement_id = f"AG-{staff.msp_id}-{form.partner}"
    terms = form.terms or {"UP": {"amountCents": form.up_cents, "payer": "target"},
                           "DOWN": {"amountCents": form.down_cents, "payer": "origin"}}  # fmt: skip
    done = submit(backend, staff, "settlement", "ProposeAgreement", agreement_id, form.partner,
                  json.dumps(terms))  # fmt: skip
    return Created(agreement_id, done.tx_id, done.block)


def accept_agreement(backend: HospitalBackend, staff: Staff, agreement_id: str) -> Written:
    require_hospital_role(backend, staff, "accept an agreement", SETTLEMENT_ROLES)
    done = submit(backend, staff, "settlement", "AcceptAgreement", agreement_id)
    return Written(done.tx_id, done.block)


def statement(
    backend: HospitalBackend, staff: Staff, agreement_id: str, period: str
) -> dict[str, Any]:
    """An agreement's entries of a month (YYYY-MM) and each hospital's net, in cents."""
    require_hospital_role(backend, staff, "read a settlement statement", CLERK_ROLES)
    found: dict[str, Any] = evaluate_json(
        backend, staff, "settlement", "Statement", agreement_id, period
    )
    return found


def balance(backend: HospitalBackend, staff: Staff, period: str) -> dict[str, Any]:
    """The hospital's receivable, payable and net over its agreements in a month, in cents."""
    require_hospital_role(backend, staff, "read the balance", CLERK_ROLES)
    found: dict[str, Any] = evaluate_json(
        backend, staff, "settlement", "Balance", staff.msp_id, period
    )
    return found
