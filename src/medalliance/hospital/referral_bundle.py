"""The referral package as a FHIR R4 Bundle after HL7 BSeR (Bidirectional Services eReferral):
building the referral and feedback Bundles, and reading a received one. Pure: no I/O, no clock,
no randomness; ids derive from the referral id, so one request always builds the same Bundle.

A referral Bundle (type `collection`, docs/fhir.md says why) holds a Task (intent order, status
requested, requester = the referring organisation, owner = the receiving one) focused on a
ServiceRequest (the referral: department, priority, ICD-10 reasons, supporting information), the
Patient reduced to what the receiver needs, the two Organizations, and the resources the doctor
selected. The feedback Bundle carries the Task's new status and a DocumentReference (feedback or
discharge summary, 出院小结) back to the origin. The privacy module seals either Bundle whole.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from medalliance.errors import InvalidArgument
from medalliance.hospital.bundle_checks import (
    InvalidBundle,
    reference_index,
    references,
    resolve,
    validate_resource,
)
from medalliance.hospital.bundle_parts import (
    INSTANT_HINT,
    collection_bundle,
    fhir_text,
    id_problems,
    identifier,
    is_instant,
    organization,
    resource_id,
    urn,
)
from medalliance.hospital.code_systems import (
    DEPARTMENTS,
    DIRECTION_SYSTEM,
    DIRECTIONS,
    ICD10_SYSTEM,
    PRIORITIES,
    REFERRAL_CATEGORY,
    REFERRAL_ID_SYSTEM,
    REFERRAL_STATUS_SYSTEM,
    TASK_CODE_SYSTEM,
    coding,
    department_coding,
)
from medalliance.hospital.feedback_bundle import build_feedback_bundle
from medalliance.hospital.identifiers import (
    ID_TYPE_OF_SYSTEM,
    PSEUDONYM_SYSTEM,
    VISIT_NUMBER_SYSTEM,
    identifier_value,
    patient_identity,
)
from medalliance.hospital.referral_reading import ReferralPackage, read_referral_bundle

__all__ = [
    "SUPPORTING_TYPES",
    "InvalidBundle",
    "ReferralPackage",
    "ReferralRequest",
    "build_feedback_bundle",
    "build_referral_bundle",
    "read_referral_bundle",
]

# What a doctor may select to travel with a referral: the patient's own clinical record. Never
# another Patient, nor the workflow resources this module writes itself.
SUPPORTING_TYPES = frozenset(
    {
        "AllergyIntolerance", "CarePlan", "Condition", "DiagnosticReport", "DocumentReference",
        "Encounter", "FamilyMemberHistory", "ImagingStudy", "Immunization", "Media",
        "MedicationRequest", "MedicationStatement", "Observation", "Organization", "Practitioner",
        "PractitionerRole", "Procedure", "Specimen",
    }
)  # fmt: skip
# What the receiver needs of the Patient (minimum necessary): identity to re-derive the pseudonym.
_PATIENT_ELEMENTS = ("name", "gender", "birthDate")
# A supporting resource's elements naming whose record it is (Condition.subject, ...).
_SUBJECT_ELEMENTS = (".subject", ".patient", ".for")
_ICD10 = re.compile(r"[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?")


@dataclass(frozen=True, slots=True)
class ReferralRequest:
    """What the referring doctor decided; the clinical parts travel only inside the sealed Bundle."""

    referral_id: str  # the chain's referral id (Task.identifier and ServiceRequest.identifier)
    visit_number: str  # 就诊号, a VISIT_NUMBER_SYSTEM identifier
    patient_ref: str  # the pseudonym (PSEUDONYM_SYSTEM identifier on the Patient)
    from_org: str  # MSP id of the referring hospital (requester)
    to_org: str  # MSP id of the receiving hospital (owner)
    direction: str  # "UP" | "DOWN" (a downward or return referral carries a discharge document)
    priority: str  # routine | urgent | asap | stat
    diagnoses: tuple[tuple[str, str], ...] = field(repr=False)  # (ICD-10 code, display)
    department: str  # a code of code_systems.DEPARTMENTS
    purpose: str = field(repr=False)  # free text, stays inside the sealed Bundle
    authored_on: str  # ISO datetime with a time zone


def build_referral_bundle(
    request: ReferralRequest,
    patient: Mapping[str, Any],
    supporting: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The referral Bundle of `request` for `patient` with the `supporting` resources selected.

    The Patient keeps only its name, gender, birth date, the identifier the pseudonym derives
    from and the pseudonym; references among the given resources are rewritten to their entries,
    references to anything not selected are reduced to a display text. The inputs are not
    changed. Raises InvalidArgument (a bad request field, a resource that is not valid FHIR R4,
    one of another patient, or of a type that may not travel) naming the field, never its value.
    """
    _check_request(request)
    reduced = _reduced_patient(patient, request.patient_ref)
    selected = _checked_supporting(supporting, request.direction)
    rid = request.referral_id
    patient_url = urn(rid, "patient")
    items: list[tuple[str, dict[str, Any]]] = [(patient_url, reduced)]
    for position, resource in enumerate(selected):
        local = f"{resource['resourceType']}/{resource['id']}" if "id" in resource else None
        items.append((urn(rid, local or f"supporting/{position}"), resource))
    _rewrite_references(items)
    (requester_url, requester), (owner_url, owner) = (
        organization(request.from_org),
        organization(request.to_org),
    )
    encounter = _encounter_of_visit(items, request.visit_number)
    service_request = _service_request(request, patient_url, requester_url, owner_url, items)
    task = _referral_task(request, patient_url, requester_url, owner_url)
    if encounter is not None:
        service_request["encounter"] = task["encounter"] = {"reference": encounter}
    generated = [
        (urn(rid, "task"), task),
        (urn(rid, "service-request"), service_request),
        items[0],
        (requester_url, requester),
        (owner_url, owner),
    ]
    return collection_bundle(rid, "referral", request.authored_on, [*generated, *items[1:]])


# --- building --------------------------------------------------------------------------------------


def _check_request(request: ReferralRequest) -> None:
    r = request
    problems = id_problems(
        referral_id=r.referral_id, visit_number=r.visit_number, patient_ref=r.patient_ref,
        from_org=r.from_org, to_org=r.to_org,
    )  # fmt: skip
    if r.from_org == r.to_org:
        problems.append("from_org and to_org must be different organisations")
    if r.direction not in DIRECTIONS:
        problems.append(f"direction must be one of {', '.join(DIRECTIONS)}")
    if r.priority not in PRIORITIES:
        problems.append(f"priority must be one of {', '.join(PRIORITIES)}")
    if r.department not in DEPARTMENTS:
        problems.append("department is not a code of the alliance's department table (code_systems.DEPARTMENTS)")  # fmt: skip
    if not r.diagnoses:
        problems.append("diagnoses: a referral needs at least one ICD-10 diagnosis")
    for position, (code, display) in enumerate(r.diagnoses):
        if not _ICD10.fullmatch(code) or not display:
            problems.append(f"diagnoses[{position}] needs an ICD-10 code like I10 or E11.9 and a display")  # fmt: skip
    if not is_instant(r.authored_on):
        problems.append(f"authored_on must be {INSTANT_HINT}")
    if problems:
        raise InvalidArgument("invalid referral: " + "; ".join(problems))


def _reduced_patient(patient: Mapping[str, Any], patient_ref: str) -> dict[str, Any]:
    if not isinstance(patient, Mapping) or patient.get("resourceType") != "Patient":
        raise InvalidArgument("patient must be a FHIR Patient resource")
    validate_resource(patient, "patient")
    identity = patient_identity(patient)
    if identity is None:
        raise InvalidArgument(
            "patient has no resident ID, passport or medical card identifier; the receiver "
            "needs one to derive the pseudonym (hospital/identifiers.py)"
        )
    known = identifier_value(patient, PSEUDONYM_SYSTEM)
    if known is not None and known != patient_ref:
        raise InvalidArgument("patient's pseudonym identifier is not the referral's patient_ref")
    system = next(s for s, id_type in ID_TYPE_OF_SYSTEM.items() if id_type == identity[0])
    kept = identifier(system, identity[1])
    reduced: dict[str, Any] = {"resourceType": "Patient"}
    if isinstance(patient.get("id"), str):
        reduced["id"] = patient["id"]
    reduced["identifier"] = [kept, identifier(PSEUDONYM_SYSTEM, patient_ref)]
    for element in _PATIENT_ELEMENTS:
        if element in patient:
            reduced[element] = copy.deepcopy(patient[element])
    return reduced


def _checked_supporting(
    supporting: Sequence[Mapping[str, Any]], direction: str
) -> list[dict[str, Any]]:
    selected = [copy.deepcopy(dict(resource)) for resource in supporting]
    seen: set[str] = set()
    for position, resource in enumerate(selected):
        kind = resource.get("resourceType")
        if not isinstance(kind, str) or kind not in SUPPORTING_TYPES:
            raise InvalidArgument(
                f"supporting[{position}] may not travel with a referral: select the patient's "
                f"clinical resources ({', '.join(sorted(SUPPORTING_TYPES))})"
            )
        validate_resource(resource, f"supporting[{position}]")
        local = f"{kind}/{resource.get('id')}"
        if "id" in resource and local in seen:
            raise InvalidArgument(f"supporting[{position}] repeats an earlier resource's id")
        seen.add(local)
    if direction == "DOWN" and not any(r["resourceType"] == "DocumentReference" for r in selected):
        raise InvalidArgument(
            "a downward (return) referral carries the discharge summary: add it to supporting "
            "as a DocumentReference"
        )
    return selected


def _rewrite_references(items: list[tuple[str, dict[str, Any]]]) -> None:
    """Point references among the selected resources at their entries; reduce the rest to a
    display (the receiver gets nothing it was not sent); refuse another patient's resources."""
    index = reference_index(items)
    for position, (_, resource) in enumerate(items[1:]):
        contained = {f"#{c.get('id')}" for c in resource.get("contained") or ()}
        for path, ref in references(resource, f"supporting[{position}]"):
            text = ref["reference"]
            if text in contained:
                continue
            target = resolve(text, index)
            if target is not None:
                ref["reference"] = target
                continue
            if "Patient/" in text or ref.get("type") == "Patient":
                raise InvalidArgument(
                    f"{path} refers to a Patient other than the referred patient: select only "
                    "this patient's resources"
                )
            if path.endswith(_SUBJECT_ELEMENTS):  # whose record is it? Not guessed: refused
                raise InvalidArgument(
                    f"{path} names neither the referred patient nor a selected resource; "
                    "give references as Type/id (e.g. Patient/<id>)"
                )
            del ref["reference"]
            if "display" not in ref and "identifier" not in ref:
                ref["display"] = "not included in this referral"


def _encounter_of_visit(items: list[tuple[str, dict[str, Any]]], visit_number: str) -> str | None:
    for url, resource in items:
        is_encounter = resource["resourceType"] == "Encounter"
        if is_encounter and identifier_value(resource, VISIT_NUMBER_SYSTEM) == visit_number:
            return url
    return None


def _service_request(
    request: ReferralRequest,
    patient_url: str,
    requester_url: str,
    owner_url: str,
    items: list[tuple[str, dict[str, Any]]],
) -> dict[str, Any]:
    rid = request.referral_id
    found: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": resource_id(urn(rid, "service-request")),
        # the visit number ties the referral to the visit (就诊号) its diagnoses belong to
        "identifier": [
            identifier(REFERRAL_ID_SYSTEM, rid),
            identifier(VISIT_NUMBER_SYSTEM, request.visit_number),
        ],
        "status": "active",
        "intent": "order",
        "category": [
            {"coding": [coding(*REFERRAL_CATEGORY)]},
            {
                "coding": [
                    coding(DIRECTION_SYSTEM, request.direction, DIRECTIONS[request.direction])
                ]
            },
        ],
        "priority": request.priority,
        "code": {"coding": [department_coding(request.department)]},
        "subject": {"reference": patient_url},
        "authoredOn": request.authored_on,
        "requester": {"reference": requester_url},
        "performer": [{"reference": owner_url}],
        "reasonCode": [
            {"coding": [coding(ICD10_SYSTEM, code, fhir_text(display))]}
            for code, display in request.diagnoses
        ],
    }
    if len(items) > 1:
        found["supportingInfo"] = [{"reference": url} for url, _ in items[1:]]
    if request.purpose.strip():
        found["note"] = [{"text": fhir_text(request.purpose)}]
    return found


def _referral_task(
    request: ReferralRequest, patient_url: str, requester_url: str, owner_url: str
) -> dict[str, Any]:
    rid = request.referral_id
    return {
        "resourceType": "Task",
        "id": resource_id(urn(rid, "task")),
        "identifier": [identifier(REFERRAL_ID_SYSTEM, rid)],
        "status": "requested",
        "businessStatus": {"coding": [coding(REFERRAL_STATUS_SYSTEM, "REFERRED")]},
        "intent": "order",
        "priority": request.priority,
        "code": {"coding": [coding(TASK_CODE_SYSTEM, "fulfill")]},
        "focus": {"reference": urn(rid, "service-request")},
        "for": {"reference": patient_url},
        "authoredOn": request.authored_on,
        "lastModified": request.authored_on,
        "requester": {"reference": requester_url},
        "owner": {"reference": owner_url},
    }
