"""Recognition of examination results (检查检验结果互认) as a hospital's staff use it (issue 19).

A doctor registers a result the hospital performed (the chosen DiagnosticReport or Observation of
the store, sealed for the hospital and its regulator, named by its record id: the resource
contract's `RecordResult`); before ordering, staff ask what is recognised for the patient of a
visit they hold ("already done?"), take a recognised result over (`RequestResult`: the performing
hospital then grants the record) or order again with a reason code (`OrderDespiteRecognised`).
The contracts take ids, codes and dates only.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from typing import Annotated, Any

from pydantic import StringConstraints

from medalliance.alliance.recognition import DUPLICATE_REASONS
from medalliance.app.referral_packages import bundle_bytes, seal_and_share
from medalliance.hospital.code_systems import LOINC_SYSTEM
from medalliance.node.embedded import utc_now
from medalliance.web.i18n import N_
from medalliance.web.services.hospital_access import (
    CLERK_ROLES,
    DOCTOR_ROLES,
    HospitalBackend,
    NotAtThisHospital,
    Staff,
    Written,
    evaluate_json,
    hospital_store,
    log_access,
    require_hospital_role,
    submit,
)
from medalliance.web.services.hospital_forms import ChainId, Form, FormInvalid
from medalliance.web.services.hospital_sharing import Created

__all__ = [
    "DuplicateForm",
    "RecordResultForm",
    "RequestForm",
    "order_duplicate",
    "recognised_bundle",
    "recognised_for_visit",
    "record_result",
    "request_result",
]

ExamCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9A-Z][A-Z0-9._-]{1,31}$|^[0-9]{1,7}-[0-9]$")]  # fmt: skip


class RecordResultForm(Form):
    visit_no: ChainId  # a visit of the patient at this hospital: gives the pseudonym
    record: Annotated[str, StringConstraints(pattern=r"^(DiagnosticReport|Observation)/[A-Za-z0-9.-]{1,64}$")]  # fmt: skip
    code: ExamCode
    performed_on: dt.date


class RequestForm(Form):
    visit_no: ChainId


class DuplicateForm(Form):
    visit_no: ChainId
    code: ExamCode
    reason_code: str


def record_result(backend: HospitalBackend, staff: Staff, form: RecordResultForm) -> Created:
    """Seal the store's report for this hospital (and its regulator) and register it."""
    require_hospital_role(backend, staff, "record a result", DOCTOR_ROLES)
    visit = _own_visit(backend, staff, form.visit_no)
    store = hospital_store(backend, staff)
    kind, _, rid = form.record.partition("/")
    resource = store.find(kind, rid)
    if resource is None:
        raise NotAtThisHospital(f"record {form.record}")
    log_access(store, staff, form.record, "recorded for recognition")
    run = secrets.token_hex(5).upper()
    result_id, record_id = f"RES-{run}", f"RR-{run}"
    bundle = {"resourceType": "Bundle", "type": "collection",
              "timestamp": utc_now().isoformat(timespec="seconds"),
              "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": resource}]}  # fmt: skip
    seal_and_share(backend.network, staff.msp_id, staff.identity, [], record_id,
                   visit["patientRef"], bundle_bytes(bundle))  # fmt: skip
    done = submit(backend, staff, "resource", "RecordResult", result_id, visit["patientRef"],
                  form.code, form.performed_on.isoformat(), record_id, staff.msp_id)  # fmt: skip
    return Created(result_id, done.tx_id, done.block)


def recognised_for_visit(
    backend: HospitalBackend, staff: Staff, visit_no: str, code: str, as_of: str
) -> list[dict[str, Any]]:
    """ "Already done?" for the patient of a visit this hospital holds."""
    require_hospital_role(backend, staff, "ask for recognised results", CLERK_ROLES)
    visit = _own_visit(backend, staff, visit_no)
    day = as_of or dt.datetime.now(dt.UTC).date().isoformat()
    found: list[dict[str, Any]] = evaluate_json(
        backend, staff, "resource", "RecognisedResults", visit["patientRef"], code, day, visit_no
    )
    return found


RESULT_SYSTEM = "urn:medalliance:id:result"
EXAM_CODE_SYSTEM = "urn:medalliance:exam-code"  # the alliance's own catalogue codes
HOSPITAL_SYSTEM = "urn:medalliance:id:msp"
_EXTENSION = "urn:medalliance:extension:recognition-"


def recognised_bundle(
    backend: HospitalBackend, staff: Staff, visit_no: str, code: str, as_of: str, base: str
) -> dict[str, Any]:
    """The recognised results as a FHIR searchset Bundle of DiagnosticReport summaries: the code,
    date, performing hospital, quality level, validity and the sealed record's id (the report
    itself is fetched through the privacy module, never served here)."""
    found = recognised_for_visit(backend, staff, visit_no, code, as_of)
    system = LOINC_SYSTEM if (code[:1].isascii() and code[:1].isdigit()) else EXAM_CODE_SYSTEM
    entries = [
        {
            "fullUrl": f"{base}/DiagnosticReport/{r['resultId']}",
            "resource": {
                "resourceType": "DiagnosticReport",
                "id": r["resultId"],
                "identifier": [{"system": RESULT_SYSTEM, "value": r["resultId"]}],
                "status": "final",
                "code": {"coding": [{"system": system, "code": r["code"]}]},
                "effectiveDateTime": r["performedOn"],
                "performer": [{"identifier": {"system": HOSPITAL_SYSTEM, "value": r["hospital"]}}],
                "extension": [
                    {"url": f"{_EXTENSION}level", "valueCode": r["level"]},
                    {"url": f"{_EXTENSION}valid-until", "valueDate": r["validUntil"]},
                    {"url": f"{_EXTENSION}record", "valueString": r["recordId"]},
                ],
            },
            "search": {"mode": "match"},
        }
        for r in found
    ]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}


def request_result(
    backend: HospitalBackend, staff: Staff, result_id: str, form: RequestForm
) -> Written:
    require_hospital_role(backend, staff, "request a recognised result", CLERK_ROLES)
    done = submit(backend, staff, "resource", "RequestResult", result_id, form.visit_no)
    return Written(done.tx_id, done.block)


def order_duplicate(backend: HospitalBackend, staff: Staff, form: DuplicateForm) -> Created:
    """Order again although a result is recognised; the reason code goes on the chain."""
    require_hospital_role(backend, staff, "order a duplicate examination", DOCTOR_ROLES)
    if form.reason_code not in DUPLICATE_REASONS or form.reason_code == "OTHER":
        # OTHER needs a sealed note; the web client offers the coded reasons only.
        coded = [r for r in DUPLICATE_REASONS if r != "OTHER"]
        raise FormInvalid({"reason_code": f"choose one of {', '.join(coded)}"})
    order_id = f"ORD-{secrets.token_hex(5).upper()}"
    done = submit(backend, staff, "resource", "OrderDespiteRecognised", order_id, form.visit_no,
                  form.code, form.reason_code, "")  # fmt: skip
    return Created(order_id, done.tx_id, done.block)


def _own_visit(backend: HospitalBackend, staff: Staff, visit_no: str) -> dict[str, Any]:
    visit: dict[str, Any] = evaluate_json(backend, staff, "visit", "GetVisit", visit_no)
    if visit["hospital"] != staff.msp_id:
        raise FormInvalid({"visit_no": N_("the patient of this visit is not at your hospital")})
    return visit
