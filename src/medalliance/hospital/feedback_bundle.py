"""The receiver's feedback on a referral as a FHIR R4 Bundle (HL7 BSeR's referral feedback): the
referral's Task with its new status and, as the Task's output, a DocumentReference (a feedback
note, or the discharge summary, 出院小结, on completion) for the origin hospital. Pure.

The Patient in it carries only the pseudonym: the origin already holds the patient's record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from medalliance.errors import InvalidArgument
from medalliance.hospital.bundle_parts import (
    INSTANT_HINT,
    attachment,
    collection_bundle,
    fhir_text,
    id_problems,
    identifier,
    is_instant,
    is_mime_type,
    organization,
    resource_id,
    text_problems,
    urn,
)
from medalliance.hospital.code_systems import (
    CONSULT_NOTE,
    DISCHARGE_SUMMARY,
    FEEDBACK_TASK_STATUSES,
    REFERRAL_ID_SYSTEM,
    REFERRAL_STATUS_SYSTEM,
    TASK_CODE_SYSTEM,
    TASK_STATUS_OF_CHAIN,
    coding,
)
from medalliance.hospital.identifiers import PSEUDONYM_SYSTEM

_CHAIN_STATUS_OF_TASK = {task: chain for chain, task in TASK_STATUS_OF_CHAIN.items()}


def build_feedback_bundle(
    referral_id: str,
    *,
    from_org: str,
    to_org: str,
    patient_ref: str,
    status: str,
    document_title: str,
    document_text: str,
    authored_on: str,
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> dict[str, Any]:
    """The feedback Bundle of a referral: its Task (same id as in the referral Bundle) with the
    new `status` (a chain status such as COMPLETED, or a FHIR Task status such as completed)
    whose output is a DocumentReference holding `document_text` as text/plain and each of
    `attachments` as (title, MIME type, bytes). `from_org` writes it (the Task's owner), `to_org`
    referred the patient (the requester). Raises InvalidArgument naming each bad field."""
    task_status = TASK_STATUS_OF_CHAIN.get(status, status)
    problems = id_problems(
        referral_id=referral_id, from_org=from_org, to_org=to_org, patient_ref=patient_ref
    )
    problems += text_problems(document_title=document_title, document_text=document_text)
    if task_status not in FEEDBACK_TASK_STATUSES:
        choices = ", ".join(FEEDBACK_TASK_STATUSES)
        problems.append(f"status must be one of {choices} or a chain status")
    if not is_instant(authored_on):
        problems.append(f"authored_on must be {INSTANT_HINT}")
    for position, (title, content_type, data) in enumerate(attachments):
        if (
            not title.strip()
            or not is_mime_type(content_type)
            or not isinstance(data, bytes)
            or not data
        ):
            problems.append(f"attachments[{position}] needs a title, a MIME type and some bytes")
    if from_org and from_org == to_org:
        problems.append("from_org and to_org must be different organisations")
    if problems:
        raise InvalidArgument("invalid feedback: " + "; ".join(problems))

    role = f"feedback/{task_status}"
    patient_url, document_url = urn(referral_id, f"{role}/patient"), urn(referral_id, f"{role}/document")  # fmt: skip
    task_url = urn(referral_id, "task")  # the referral's own Task, updated
    author_url, author = organization(from_org)
    origin_url, origin = organization(to_org)
    kind = DISCHARGE_SUMMARY if task_status == "completed" else CONSULT_NOTE
    document_title = fhir_text(document_title)
    text = (document_title, "text/plain; charset=utf-8", document_text.encode())
    files = [(fhir_text(title), content_type, data) for title, content_type, data in attachments]
    document = {
        "resourceType": "DocumentReference",
        "id": resource_id(document_url),
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [coding(*kind)]},
        "subject": {"reference": patient_url},
        "date": authored_on,
        "author": [{"reference": author_url}],
        "custodian": {"reference": author_url},
        "description": document_title,
        "content": [{"attachment": attachment(*content)} for content in (text, *files)],
        "context": {"related": [{"identifier": identifier(REFERRAL_ID_SYSTEM, referral_id)}]},
    }
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": resource_id(task_url),
        "identifier": [identifier(REFERRAL_ID_SYSTEM, referral_id)],
        "status": task_status,
        "intent": "order",
        "code": {"coding": [coding(TASK_CODE_SYSTEM, "fulfill")]},
        "for": {"reference": patient_url},
        "lastModified": authored_on,
        "requester": {"reference": origin_url},
        "owner": {"reference": author_url},
        "output": [
            {"type": {"coding": [coding(*kind)]}, "valueReference": {"reference": document_url}}
        ],
    }
    chain_status = _CHAIN_STATUS_OF_TASK.get(task_status)
    if chain_status is not None:
        task["businessStatus"] = {"coding": [coding(REFERRAL_STATUS_SYSTEM, chain_status)]}
    patient = {
        "resourceType": "Patient",
        "id": resource_id(patient_url),
        "identifier": [identifier(PSEUDONYM_SYSTEM, patient_ref)],
    }
    items = [
        (task_url, task),
        (patient_url, patient),
        (author_url, author),
        (origin_url, origin),
        (document_url, document),
    ]
    return collection_bundle(referral_id, role, authored_on, items)
