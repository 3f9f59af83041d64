"""Reading a received referral or feedback Bundle: every check a receiver makes before it imports
one, so the connector can quarantine a bad package with its reason. Pure: no I/O.

Messages name the element path and the rule, never the data (style.md §2).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from medalliance.hospital.bundle_checks import (
    InvalidBundle,
    entries,
    reference_index,
    resolve,
    unresolved_references,
    validate_bundle,
)
from medalliance.hospital.code_systems import MSP_ID_SYSTEM, REFERRAL_ID_SYSTEM
from medalliance.hospital.identifiers import PSEUDONYM_SYSTEM, identifier_value


@dataclass(frozen=True, slots=True)
class ReferralPackage:
    """A received referral or feedback Bundle that passed every check of read_referral_bundle.
    The resources are the Bundle's own dicts, their references the Bundle's fullUrls."""

    bundle: dict[str, Any] = field(repr=False)
    referral_id: str
    patient_ref: str
    task: dict[str, Any] = field(repr=False)
    service_request: dict[str, Any] | None = field(repr=False)  # None in a feedback Bundle
    patient: dict[str, Any] = field(repr=False)
    resources: tuple[dict[str, Any], ...] = field(repr=False)  # everything else, in Bundle order
    # MSP ids of the Task's requester (the origin) and owner (the target): the connector checks
    # them against the chain's fromHospital and toHospital, so a package cannot claim another pair
    requester: str = ""
    owner: str = ""


def read_referral_bundle(
    data: bytes, *, max_bytes: int = 20 * 2**20, referral_id: str | None = None
) -> ReferralPackage:
    """Parse and check a received referral or feedback Bundle: JSON, a FHIR R4 `collection`
    Bundle that validates with fhir.resources, exactly one Task whose REFERRAL_ID_SYSTEM
    identifier is the referral id (`referral_id` when given: a package of another referral is
    refused), the ServiceRequest the Task's focus names carrying the same id (none in feedback),
    exactly one Patient with a pseudonym identifier, the Task's requester and owner
    Organizations with their MSP ids, every reference resolving inside the Bundle.
    Raises InvalidBundle (an InvalidArgument) naming each fault by element path."""
    if len(data) > max_bytes:
        raise InvalidBundle([f"the package is {len(data)} bytes; the limit is {max_bytes}"])
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise InvalidBundle(["the package is not a JSON document in UTF-8"]) from None
    validate_bundle(parsed)
    if parsed.get("type") != "collection":
        raise InvalidBundle(["type: a referral Bundle is a collection"])
    items = entries(parsed)
    problems = unresolved_references(items)
    tasks = [r for _, r in items if r["resourceType"] == "Task"]
    patients = [(u, r) for u, r in items if r["resourceType"] == "Patient"]
    if len(tasks) != 1:
        problems.append(f"the Bundle must hold exactly one Task, it holds {len(tasks)}")
    if len(patients) != 1:
        problems.append(f"the Bundle must hold exactly one Patient, it holds {len(patients)}")
    if problems:
        raise InvalidBundle(problems)
    task, (patient_url, patient) = tasks[0], patients[0]
    index, by_url = reference_index(items), dict(items)

    found_id = identifier_value(task, REFERRAL_ID_SYSTEM)
    if found_id is None:
        problems.append(f"Task.identifier: no identifier of system {REFERRAL_ID_SYSTEM}")
    elif referral_id is not None and found_id != referral_id:
        problems.append("Task.identifier: the package belongs to another referral")
    patient_ref = identifier_value(patient, PSEUDONYM_SYSTEM)
    if patient_ref is None:
        problems.append(f"Patient.identifier: no identifier of system {PSEUDONYM_SYSTEM}")
    if resolve(_reference(task.get("for")), index) != patient_url:
        problems.append("Task.for must reference the Bundle's Patient")
    organizations = {}
    for role in ("requester", "owner"):
        organization = by_url.get(resolve(_reference(task.get(role)), index) or "")
        msp_id = None
        if organization is not None and organization["resourceType"] == "Organization":
            msp_id = identifier_value(organization, MSP_ID_SYSTEM)
        if msp_id is None:
            problems.append(f"Task.{role} must reference an Organization with an MSP id identifier")
        organizations[role] = msp_id or ""
    service_request = None
    if task.get("focus") is None and task.get("status") == "requested":
        problems.append("Task.focus: a requested referral names its ServiceRequest")
    if task.get("focus") is not None:
        target = resolve(_reference(task["focus"]), index)
        service_request = by_url.get(target) if target else None
        if service_request is None or service_request["resourceType"] != "ServiceRequest":
            problems.append("Task.focus must reference a ServiceRequest in the Bundle")
            service_request = None
        elif identifier_value(service_request, REFERRAL_ID_SYSTEM) != found_id:
            problems.append("ServiceRequest.identifier: not the Task's referral id")
    if problems:
        raise InvalidBundle(problems)
    assert found_id is not None
    assert patient_ref is not None
    special = (task, patient, service_request)
    rest = tuple(r for _, r in items if not any(r is s for s in special))
    return ReferralPackage(
        parsed, found_id, patient_ref, task, service_request, patient, rest,
        requester=organizations["requester"], owner=organizations["owner"],
    )  # fmt: skip


def _reference(value: Any) -> str:
    return str(value.get("reference", "")) if isinstance(value, dict) else ""
