"""FHIR R4 REST for a hospital's own systems (HIS): the CapabilityStatement, read and search of
Patient, Encounter, ServiceRequest and Task in the hospital's own store, and the referral
operations as Task updates.

A HIS integrates without our SDK: it searches its incoming referrals as Tasks (`owner` = its own
organisation, `status=requested`), reads the ServiceRequest and the Patient they point at, and
moves a Task requested → accepted | rejected (with `statusReason`, a code of the referral
contract's closed list, and its text sealed as a note) → completed (with `output`: the feedback
text, sealed as the discharge summary). Each update is the same service call a page makes
(hospital_referrals.py), so the chain decides exactly as for a person; the answer carries the
transaction id and block. Errors are `MedallianceError`s; the route answers them as an
OperationOutcome. Only the caller's hospital's store is read: another hospital's Task is 404.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from collections.abc import Mapping
from typing import Any

from medalliance.errors import InvalidArgument, NotFound
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.code_systems import MSP_ID_SYSTEM, REFERRAL_ID_SYSTEM
from medalliance.hospital.identifiers import identifier_value
from medalliance.web.services.hospital_access import (
    DOCTOR_ROLES,
    HospitalBackend,
    Staff,
    Written,
    hospital_store,
    log_access,
    require_hospital_role,
)
from medalliance.web.services.hospital_forms import CompleteForm, RejectForm, parse_form
from medalliance.web.services.hospital_referrals import (
    accept_referral,
    complete_referral,
    local_referral,
    reject_referral,
)

__all__ = [
    "FHIR_VERSION",
    "SEARCH_PARAMETERS",
    "apply_patch",
    "capability_statement",
    "operation_outcome",
    "read_resource",
    "search_bundle",
    "update_task",
]

FHIR_VERSION = "4.0.1"
READ_ROLES = ("doctor", "clerk")
COUNT_DEFAULT, COUNT_MAX = 20, 100
# type -> {parameter: FHIR search parameter type}; _count and _offset page every search.
SEARCH_PARAMETERS: Mapping[str, Mapping[str, str]] = {
    "Patient": {"_id": "token", "identifier": "token", "name": "string", "gender": "token",
                "birthdate": "date"},
    "Encounter": {"_id": "token", "identifier": "token", "patient": "reference",
                  "status": "token", "date": "date"},
    "ServiceRequest": {"_id": "token", "identifier": "token", "patient": "reference",
                       "status": "token"},
    "Task": {"_id": "token", "identifier": "token", "patient": "reference", "status": "token",
             "owner": "reference", "requester": "reference"},
}  # fmt: skip
_PAGING = ("_count", "_offset")
_PATIENT_DATA = ("Patient", "Encounter", "ServiceRequest")  # views of a patient: access events


def capability_statement(base: str, software_version: str) -> dict[str, Any]:
    """What this server supports, exactly: the four types, their interactions and parameters."""
    resources = []
    for kind, params in SEARCH_PARAMETERS.items():
        interactions = [{"code": "read"}, {"code": "search-type"}]
        if kind == "Task":
            interactions += [{"code": "update"}, {"code": "patch"}]
        resources.append(
            {
                "type": kind,
                "interaction": interactions,
                "searchParam": [
                    {"name": name, "type": kind_of}
                    for name, kind_of in {**params, "_count": "number", "_offset": "number"}.items()
                ],
            }
        )
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-03",
        "kind": "instance",
        "software": {"name": "medalliance", "version": software_version},
        "implementation": {"description": "medalliance hospital FHIR API", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "resource": resources,
                "interaction": [{"code": "transaction"}],
                # GET /fhir/$recognised-results?visit=&code=[&as_of=]: issue 19's recognised
                # results of the visit's patient (web/services/hospital_recognition.py).
                "operation": [
                    {
                        "name": "recognised-results",
                        "definition": "urn:medalliance:OperationDefinition/recognised-results",
                    }
                ],
            }
        ],
    }


def read_resource(
    backend: HospitalBackend, staff: Staff, kind: str, resource_id: str
) -> dict[str, Any]:
    """One resource of the hospital's store; a read of patient data is an access event."""
    require_hospital_role(backend, staff, "read FHIR resources", READ_ROLES)
    _supported(kind)
    store = hospital_store(backend, staff)
    found = store.find(kind, resource_id)
    if found is None:
        raise NotFound(f"no {kind}/{resource_id} at your hospital")
    if kind in _PATIENT_DATA:
        log_access(store, staff, f"{kind}/{resource_id}", "fhir read")
    return found


def search_bundle(
    backend: HospitalBackend,
    staff: Staff,
    kind: str,
    params: Mapping[str, str],
    base: str,
) -> dict[str, Any]:
    """A searchset Bundle of the matches (by id), `total` and self/next/previous links; an
    unknown parameter or a bad value is `InvalidArgument` naming what is supported."""
    require_hospital_role(backend, staff, "search FHIR resources", READ_ROLES)
    _supported(kind)
    unknown = sorted(set(params) - set(SEARCH_PARAMETERS[kind]) - set(_PAGING))
    if unknown:
        raise InvalidArgument(
            f"{kind} search does not support {', '.join(unknown)}; supported: "
            f"{', '.join([*SEARCH_PARAMETERS[kind], *_PAGING])}"
        )
    count = _number(params, "_count", COUNT_DEFAULT, 1, COUNT_MAX)
    offset = _number(params, "_offset", 0, 0, 10**9)
    store = hospital_store(backend, staff)
    filters = {k: v for k, v in params.items() if k not in _PAGING}
    for role in ("owner", "requester"):  # an MSP id means the store's Organizations of it
        if role in params:
            filters[role] = ",".join(sorted(_organizations(store, params[role])))
    if any(role in params and not filters[role] for role in ("owner", "requester")):
        total, page = 0, []  # no Organization of that MSP id in the store: nothing can match
    else:
        total = store.search_count(kind, filters)
        page = store.search(kind, {**filters, "_count": str(count), "_offset": str(offset)})
    if kind in _PATIENT_DATA:
        log_access(store, staff, f"{kind}?search", "fhir search")
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": _links(base, kind, params, offset, count, total),
        "entry": [
            {"fullUrl": f"{base}/{kind}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in page
        ],
    }


def update_task(
    backend: HospitalBackend, staff: Staff, task_id: str, wanted: Mapping[str, Any]
) -> tuple[dict[str, Any], Written]:
    """Move an incoming referral's Task to `wanted["status"]` (a PUT body, or the current Task
    with a patch applied): accepted; rejected with `statusReason`; completed with `output`.
    The Task afterwards, and where the step committed."""
    require_hospital_role(backend, staff, "update a referral Task", DOCTOR_ROLES)
    store = hospital_store(backend, staff)
    task = store.find("Task", task_id)
    referral_id = None if task is None else identifier_value(task, REFERRAL_ID_SYSTEM)
    if task is None or referral_id is None:
        raise NotFound(f"no referral Task/{task_id} at your hospital")
    local_referral(backend, staff, referral_id, side="incoming")
    if wanted.get("resourceType") != "Task" or wanted.get("id", task_id) != task_id:
        raise InvalidArgument(f"the body must be Task/{task_id}")
    status = wanted.get("status")
    if status == "accepted":
        written = accept_referral(backend, staff, referral_id)
    elif status == "rejected":
        written = reject_referral(backend, staff, referral_id, _reject_form(wanted))
    elif status == "completed":
        completed = complete_referral(backend, staff, referral_id, _complete_form(wanted))
        written = Written(completed.tx_id, completed.block)
    else:
        raise InvalidArgument(
            "Task.status may change to accepted or rejected (from requested) or completed "
            "(from accepted); other changes are not supported"
        )
    return store.get("Task", task_id), written


def apply_patch(task: Mapping[str, Any], operations: Any) -> dict[str, Any]:
    """A JSON Patch (RFC 6902) of `add`/`replace` operations on /status, /statusReason and
    /output applied to a copy of `task`; anything else is `InvalidArgument`."""
    if not isinstance(operations, list) or not operations:
        raise InvalidArgument("a PATCH body is a JSON Patch array of operations")
    patched = dict(task)
    for op in operations:
        if not isinstance(op, dict) or op.get("op") not in ("add", "replace"):
            raise InvalidArgument("only add and replace operations are supported")
        path = op.get("path")
        if path not in ("/status", "/statusReason", "/output", "/businessStatus"):
            raise InvalidArgument("a Task patch may set /status, /statusReason and /output only")
        patched[str(path)[1:]] = op.get("value")
    return patched


def operation_outcome(
    code: str, message: str, fields: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """An OperationOutcome of one error (or one issue per field)."""
    issues = [
        {"severity": "error", "code": code, "diagnostics": why, "expression": [name]}
        for name, why in (fields or {}).items()
    ] or [{"severity": "error", "code": code, "diagnostics": message}]
    return {"resourceType": "OperationOutcome", "issue": issues}


def _reject_form(task: Mapping[str, Any]) -> RejectForm:
    reason = task.get("statusReason") or {}
    codings = reason.get("coding") if isinstance(reason, dict) else None
    code = codings[0].get("code", "") if isinstance(codings, list) and codings else ""
    text = reason.get("text", "") if isinstance(reason, dict) else ""
    return parse_form(RejectForm, {"reason_code": code, "note": text})


def _complete_form(task: Mapping[str, Any]) -> CompleteForm:
    """The feedback text of the Task's first output: valueString, or a text/plain attachment."""
    outputs = task.get("output")
    value = outputs[0] if isinstance(outputs, list) and outputs else {}
    text = value.get("valueString") if isinstance(value, dict) else None
    attachment = value.get("valueAttachment") if isinstance(value, dict) else None
    if text is None and isinstance(attachment, dict) and "data" in attachment:
        try:
            text = base64.b64decode(str(attachment["data"]), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidArgument("Task.output[0].valueAttachment.data is not base64 UTF-8 text") from None  # fmt: skip
    if not text:
        raise InvalidArgument("a completed Task needs output[0].valueString: the feedback text")
    title = attachment.get("title", "出院小结") if isinstance(attachment, dict) else "出院小结"
    return parse_form(CompleteForm, {"feedback": text, "title": title})


def _supported(kind: str) -> None:
    if kind not in SEARCH_PARAMETERS:
        raise NotFound(
            f"resource type {kind} is not served here; see /fhir/metadata "
            f"({', '.join(SEARCH_PARAMETERS)})"
        )


def _number(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise InvalidArgument(f"{name} must be a whole number")
    return max(low, min(int(raw), high))


def _organizations(store: ClinicalStore, value: str) -> set[str]:
    """The references an `owner`/`requester` value means: `Organization/<id>`, or an MSP id
    (the alliance's identifier of the Organization, `[system|]value`)."""
    if value.startswith("Organization/"):
        return {value}
    msp = value.split("|", 1)[1] if "|" in value else value
    found = store.search("Organization", {"identifier": f"{MSP_ID_SYSTEM}|{msp}"})
    return {f"Organization/{o['id']}" for o in found}


def _links(
    base: str, kind: str, params: Mapping[str, str], offset: int, count: int, total: int
) -> list[dict[str, str]]:
    def url(at: int) -> str:
        query = {k: v for k, v in params.items() if k not in _PAGING}
        query.update(_count=str(count), _offset=str(at))
        return f"{base}/{kind}?{urllib.parse.urlencode(sorted(query.items()))}"

    links = [{"relation": "self", "url": url(offset)}]
    if offset + count < total:
        links.append({"relation": "next", "url": url(offset + count)})
    if offset > 0:
        links.append({"relation": "previous", "url": url(max(0, offset - count))})
    return links
