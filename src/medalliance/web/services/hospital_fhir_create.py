"""Creating a referral from a hospital system: a BSeR-style transaction Bundle (a Task and its
focal ServiceRequest) POSTed to the FHIR base (/fhir) becomes the same referral application as
the page's form (hospital_referrals.py `apply_for_referral`).

What is read, all of it required unless said: the ServiceRequest's `subject` (`Patient/<id>` of
the hospital's store), `encounter` (the visit: an Encounter with a visit number), `code` (a
department of the alliance's list, urn:medalliance:cs:department), `priority` (routine, urgent,
stat = emergency; default routine), `reasonCode[0].coding[0]` (ICD-10 code and display),
`note[0].text` (the purpose; else the Task's `description`), `supportingInfo` (optional: the
records to send, `Type/id`); the Task's `owner` (the target: an Organization identifier of
urn:medalliance:id:msp, or a reference to such an Organization of the store) and optional
category DOWN (urn:medalliance:cs:referral-direction) for a return referral. Anything else of the
Bundle is ignored: the package is built from the store, as for a person.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medalliance.errors import InvalidArgument
from medalliance.hospital.code_systems import DEPARTMENT_SYSTEM, DIRECTION_SYSTEM, MSP_ID_SYSTEM
from medalliance.hospital.identifiers import VISIT_NUMBER_SYSTEM, identifier_value
from medalliance.web.services.hospital_access import HospitalBackend, hospital_store
from medalliance.web.services.hospital_forms import ReferralForm, parse_form
from medalliance.web.services.hospital_referrals import Started, apply_for_referral
from medalliance.web.staff import Staff

__all__ = ["create_referral"]

_URGENCY = {"routine": "routine", "urgent": "urgent", "asap": "urgent", "stat": "emergency"}


def create_referral(backend: HospitalBackend, staff: Staff, bundle: Mapping[str, Any]) -> Started:
    """Apply for the referral the Bundle describes; `InvalidArgument` naming what is missing."""
    task, request = _parts(bundle)
    store = hospital_store(backend, staff)
    patient = _local_id(request.get("subject"), "Patient", "ServiceRequest.subject")
    encounter_id = _local_id(request.get("encounter"), "Encounter", "ServiceRequest.encounter")
    encounter = store.find("Encounter", encounter_id)
    visit = None if encounter is None else identifier_value(encounter, VISIT_NUMBER_SYSTEM)
    if visit is None:
        raise InvalidArgument("ServiceRequest.encounter must be a registered visit of your store")
    reason = _first_coding(request.get("reasonCode"), "ServiceRequest.reasonCode")
    notes = request.get("note") or [{}]
    purpose = (notes[0] or {}).get("text") if isinstance(notes, list) and notes else None
    form = {
        "patient_id": patient,
        "visit_no": visit,
        "target": _owner(store, task.get("owner")),
        "department": _department(request.get("code")),
        "urgency": _URGENCY.get(str(request.get("priority", "routine")), "?"),
        "diagnosis_code": str(reason.get("code", "")),
        "diagnosis_display": str(reason.get("display", "")),
        "purpose": purpose or task.get("description") or "",
        "records": [_reference(r) for r in request.get("supportingInfo") or ()],
        "direction": _direction(task, request),
    }
    return apply_for_referral(backend, staff, parse_form(ReferralForm, form))


def _parts(bundle: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    if bundle.get("resourceType") != "Bundle" or not isinstance(bundle.get("entry"), list):
        raise InvalidArgument("POST a Bundle holding the referral's Task and ServiceRequest")
    found: dict[str, list[dict[str, Any]]] = {}
    for entry in bundle["entry"]:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            found.setdefault(str(resource.get("resourceType")), []).append(resource)
    tasks, requests = found.get("Task", []), found.get("ServiceRequest", [])
    if len(tasks) != 1 or len(requests) != 1:
        raise InvalidArgument("the Bundle must hold exactly one Task and one ServiceRequest")
    return tasks[0], requests[0]


def _local_id(reference: Any, kind: str, where: str) -> str:
    value = reference.get("reference") if isinstance(reference, dict) else None
    if not isinstance(value, str) or not value.startswith(f"{kind}/"):
        raise InvalidArgument(f"{where} must reference {kind}/<id> of your store")
    return value.split("/", 1)[1]


def _first_coding(concepts: Any, where: str) -> dict[str, Any]:
    if isinstance(concepts, list) and concepts and isinstance(concepts[0], dict):
        codings = concepts[0].get("coding")
        if isinstance(codings, list) and codings and isinstance(codings[0], dict):
            return codings[0]
    raise InvalidArgument(f"{where}[0].coding[0] must give the ICD-10 code and display")


def _department(code: Any) -> str:
    codings = code.get("coding") if isinstance(code, dict) else None
    for coding in codings if isinstance(codings, list) else ():
        if isinstance(coding, dict) and coding.get("system") == DEPARTMENT_SYSTEM:
            return str(coding.get("code", ""))
    raise InvalidArgument(f"ServiceRequest.code must carry a department of {DEPARTMENT_SYSTEM}")


def _owner(store: Any, owner: Any) -> str:
    if isinstance(owner, dict):
        ident = owner.get("identifier")
        if isinstance(ident, dict) and ident.get("system") == MSP_ID_SYSTEM:
            return str(ident.get("value", ""))
        reference = owner.get("reference")
        if isinstance(reference, str) and reference.startswith("Organization/"):
            org = store.find("Organization", reference.split("/", 1)[1])
            msp = None if org is None else identifier_value(org, MSP_ID_SYSTEM)
            if msp:
                return msp
    raise InvalidArgument(f"Task.owner must name the target hospital ({MSP_ID_SYSTEM} identifier)")


def _reference(item: Any) -> str:
    value = item.get("reference") if isinstance(item, dict) else None
    return value if isinstance(value, str) else ""


def _direction(task: Mapping[str, Any], request: Mapping[str, Any]) -> str:
    for concept in [*(request.get("category") or ()), *(task.get("category") or [])]:
        for coding in (concept or {}).get("coding") or () if isinstance(concept, dict) else ():
            if isinstance(coding, dict) and coding.get("system") == DIRECTION_SYSTEM:
                return str(coding.get("code", "UP"))
    return "UP"
