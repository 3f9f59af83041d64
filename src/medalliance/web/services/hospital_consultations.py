"""Remote consultation (远程会诊) as a hospital's doctors run it in the web client.

A shell over app/consultations.py (the CLI calls the same functions): request a consultation
for a visit of this hospital with the records to grant, answer one asked of this hospital
(accept, decline with a coded reason, schedule, report), read the verified report and close.
The contract checks every rule again; these functions check the role first and parse the forms.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from medalliance.alliance.consultation import DECLINE_REASONS
from medalliance.app import consultations
from medalliance.app.consultations import ConsultationRequest
from medalliance.web.services.hospital_access import (
    DOCTOR_ROLES,
    HospitalBackend,
    Staff,
    Written,
    require_hospital_role,
    submit,
)
from medalliance.web.services.hospital_forms import ChainId, Form, Text

__all__ = [
    "DECLINE_REASONS",
    "ConsultationForm",
    "DecideForm",
    "OpenedReport",
    "ReportForm",
    "Requested",
    "decide",
    "listed",
    "open_report",
    "report",
    "request",
]

Instant = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9T:.+Z-]{10,40}$")]


class ConsultationForm(Form):
    visit_no: ChainId
    consultant: ChainId  # the consultant hospital's MSP id
    record_ids: list[ChainId] = Field(min_length=1, max_length=20)
    question: Text
    department: ChainId = "03"
    hours: int = Field(default=48, ge=1, le=24 * 30)


class DecideForm(Form):
    action: Literal["accept", "decline", "schedule", "close"]
    reason_code: str = ""  # decline: one of DECLINE_REASONS (the contract checks it)
    at: Instant | None = None  # schedule: ISO 8601 with a zone


class ReportForm(Form):
    text: Text


@dataclass(frozen=True, slots=True)
class Requested:
    id: str
    tx_id: str
    block: int


@dataclass(frozen=True, slots=True)
class OpenedReport:
    consultation_id: str
    signed_by: str
    text: str


_FUNCTIONS = {
    "accept": "AcceptConsultation",
    "decline": "DeclineConsultation",
    "schedule": "ScheduleConsultation",
    "close": "CloseConsultation",
}


def request(backend: HospitalBackend, staff: Staff, form: ConsultationForm) -> Requested:
    """Ask `form.consultant` about a visit of this hospital, granting the named records."""
    require_hospital_role(backend, staff, "request a consultation", DOCTOR_ROLES)
    consultation_id = f"CON-{secrets.token_hex(5).upper()}"
    draft = ConsultationRequest(
        consultation_id, form.visit_no, form.consultant, form.department, tuple(form.record_ids),
        consultations.deadline_in(form.hours), question=form.question,
    )  # fmt: skip
    done = consultations.request(backend.network, staff.msp_id, staff.identity, draft)
    return Requested(consultation_id, done.tx_id, done.block)


def decide(
    backend: HospitalBackend, staff: Staff, consultation_id: str, form: DecideForm
) -> Written:
    """Accept, decline, schedule (the consultant) or close (the requester) a consultation."""
    require_hospital_role(backend, staff, f"{form.action} a consultation", DOCTOR_ROLES)
    args = {"decline": [form.reason_code], "schedule": [form.at or ""]}.get(form.action, [])
    done = submit(backend, staff, consultations.CONTRACT, _FUNCTIONS[form.action],
                  consultation_id, *args)  # fmt: skip
    return Written(done.tx_id, done.block)


def report(
    backend: HospitalBackend, staff: Staff, consultation_id: str, form: ReportForm
) -> Written:
    """The consultant's report: sealed for the requester and regulators, its digest signed."""
    require_hospital_role(backend, staff, "report on a consultation", DOCTOR_ROLES)
    done = consultations.submit_report(
        backend.network, staff.msp_id, staff.identity, consultation_id, form.text
    )
    return Written(done.tx_id, done.block)


def open_report(backend: HospitalBackend, staff: Staff, consultation_id: str) -> OpenedReport:
    """The verified report (the decryption is logged on the ledger)."""
    require_hospital_role(backend, staff, "read a consultation report", DOCTOR_ROLES)
    verified = consultations.verify_report(
        backend.network, staff.msp_id, staff.identity, consultation_id
    )
    return OpenedReport(verified.consultation_id, verified.signed_by, verified.text)


def listed(backend: HospitalBackend, staff: Staff) -> list[dict[str, Any]]:
    """The consultations this hospital requested or was asked for, newest first."""
    require_hospital_role(backend, staff, "list consultations", DOCTOR_ROLES)
    return consultations.listed(backend.network, staff.msp_id, staff.identity, staff.msp_id)
