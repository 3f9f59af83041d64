"""Remote consultation (远程会诊) between two hospitals, with record access for its duration.

A doctor of the requesting hospital asks an expert department of another hospital about one of
its visits (`RequestConsultation`): the question is a digest (the question itself travels in a
sealed package), and the records of the visit's patient that the consultant needs are granted to
the consultant in the same transaction (the `records` contract's grant, which accepts this
contract as caller). The consultant accepts or declines, schedules, and returns a signed report
(`SubmitReport`: the sealed package's digest and the consultant's signature over it; the app
verifies the signature). The requester closes it: the grants are revoked and the `settlement`
contract's `ExecuteConsultation` runs in the same transaction. A declined or expired consultation
revokes its grants too, so access never outlives the consultation.

State: one key per consultation, with the key-level policy of both hospitals' proxies (neither
hospital alone can write a decision of the other: a close forged by the consultant, or a report
forged by the requester, lacks the other's endorsement); one index key per (hospital,
consultation) for both parties and one per (visit, consultation).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from medalliance.alliance import deadline
from medalliance.alliance.common import (
    call,
    check_code,
    check_id,
    hospital,
    load,
    may_see,
    now_iso,
    protect,
    require_audit_role_of_regulator,
    require_may_see,
    require_org,
    require_role,
    scan,
    to_json,
)
from medalliance.contracts import Context, Contract, create_composite_key, transaction
from medalliance.errors import ContractError

ROLES = ("doctor",)
DECLINE_REASONS = ("NO_CAPACITY", "OUT_OF_SCOPE", "INSUFFICIENT_DATA", "OTHER")
OPEN = ("REQUESTED", "ACCEPTED", "SCHEDULED")  # grants in force, deadline running
RECORDS_MAX = 20  # records granted per consultation
SIGNATURE_BYTES_MAX = 256  # an ECDSA P-256 DER signature is at most 72
_DIGEST = re.compile(r"[0-9a-f]{64}")


def consultation_key(consultation_id: str) -> str:
    return create_composite_key("consultation", [consultation_id])


def _of_key(hospital_id: str, consultation_id: str) -> str:
    return create_composite_key("consultationof", [hospital_id, consultation_id])


def _visit_key(visit_no: str, consultation_id: str) -> str:
    return create_composite_key("consultationvisit", [visit_no, consultation_id])


class ConsultationContract(Contract):
    name = "consultation"

    @transaction
    def RequestConsultation(
        self,
        ctx: Context,
        consultation_id: str,
        visit_no: str,
        consultant_msp: str,
        department: str,
        question_digest: str,
        record_ids_json: str,
        deadline_at: str,
    ) -> str:
        """Ask `consultant_msp` about a visit of the caller's hospital; grants the consultant the
        listed records of the visit's patient (owned by the caller) until the end.

        `record_ids_json`: a JSON object record id -> the consultant's wrapped-key commitment of
        the latest version (the requester re-wrapped the data key: records' `GrantWithKey`), or
        a JSON array of record ids (rights only: records' `Grant`)."""
        check_id(consultation_id, "consultation id")
        check_id(department, "department")
        require_role(ctx, *ROLES)
        requester = ctx.client.msp_id
        hospital(ctx, requester)
        hospital(ctx, consultant_msp)
        if consultant_msp == requester:
            raise ContractError("a consultation asks another hospital, not the requester", 400)
        _check_digest(question_digest, "questionDigest")
        record_ids = _record_ids(record_ids_json)
        due = deadline.check_instant(deadline_at, "deadline")
        if due <= now_iso(ctx):
            raise ContractError("the deadline must be after the request", 400)
        if ctx.stub.get_state(consultation_key(consultation_id)) is not None:
            raise ContractError(f"consultation {consultation_id} already exists", 409)
        visit = call(ctx, "visit", "GetVisit", visit_no)
        if visit["hospital"] != requester:
            raise ContractError(
                f"patient of visit {visit_no} is at {visit['hospital']}, not {requester}", 403
            )
        granted = [r for r in record_ids if _grant_needed(ctx, r, visit, consultant_msp)]
        for record_id in granted:  # checked first: nothing is written for a refused record
            if record_ids[record_id]:
                call(ctx, "records", "GrantWithKey", record_id, consultant_msp,
                     record_ids[record_id])  # fmt: skip
            else:
                call(ctx, "records", "Grant", record_id, consultant_msp)
        consultation = {
            "consultationId": consultation_id,
            "visitNo": visit_no,
            "requester": requester,
            "consultant": consultant_msp,
            "department": department,
            "questionDigest": question_digest,
            "records": sorted(record_ids),
            "granted": granted,  # revoked at the end; records the consultant had stay
            "deadline": due,
            "status": "REQUESTED",
            "requestedAt": now_iso(ctx),
            "requestedBy": ctx.client.id_hash,
        }
        key = consultation_key(consultation_id)
        ctx.stub.put_state(key, to_json(consultation))
        protect(ctx, key, requester, consultant_msp)
        for party in (requester, consultant_msp):
            ctx.stub.put_state(_of_key(party, consultation_id), b"1")
        ctx.stub.put_state(_visit_key(visit_no, consultation_id), b"1")
        return _done(ctx, "ConsultationRequested", consultation)

    @transaction
    def AcceptConsultation(self, ctx: Context, consultation_id: str) -> str:
        consultation = _as_consultant(ctx, consultation_id, "accept", ("REQUESTED",))
        consultation.update(status="ACCEPTED", acceptedAt=now_iso(ctx))
        return _save(ctx, "ConsultationAccepted", consultation)

    @transaction
    def DeclineConsultation(self, ctx: Context, consultation_id: str, reason: str) -> str:
        """The consultant refuses with a coded reason; the grants are revoked."""
        consultation = _as_consultant(ctx, consultation_id, "decline", ("REQUESTED", "ACCEPTED"))
        check_code(reason, "reason", DECLINE_REASONS)
        _revoke(ctx, consultation)
        consultation.update(status="DECLINED", declineReason=reason, declinedAt=now_iso(ctx))
        return _save(ctx, "ConsultationDeclined", consultation)

    @transaction
    def ScheduleConsultation(self, ctx: Context, consultation_id: str, at: str) -> str:
        """When the consultation takes place (again to reschedule): before its deadline."""
        consultation = _as_consultant(ctx, consultation_id, "schedule", ("ACCEPTED", "SCHEDULED"))
        when = deadline.check_instant(at, "at")
        if not now_iso(ctx) < when <= consultation["deadline"]:
            raise ContractError(
                f"the consultation must take place after now and by its deadline "
                f"{consultation['deadline']}",
                400,
            )
        consultation.update(status="SCHEDULED", scheduledAt=when)
        return _save(ctx, "ConsultationScheduled", consultation)

    @transaction
    def SubmitReport(
        self, ctx: Context, consultation_id: str, report_digest: str, signature_b64: str
    ) -> str:
        """The digest of the sealed report and the consultant's signature over it (checked by
        the app against the consultant's certificate, whose id hash is `reportedBy`)."""
        consultation = _as_consultant(ctx, consultation_id, "report on", ("ACCEPTED", "SCHEDULED"))
        _check_digest(report_digest, "reportDigest")
        _check_signature(signature_b64)
        consultation.update(
            status="REPORTED",
            reportDigest=report_digest,
            reportSignature=signature_b64,
            reportedBy=ctx.client.id_hash,
            reportedAt=now_iso(ctx),
        )
        return _save(ctx, "ConsultationReported", consultation)

    @transaction
    def CloseConsultation(self, ctx: Context, consultation_id: str) -> str:
        """The requester closes a reported consultation: grants revoked, settlement executed."""
        require_role(ctx, *ROLES)
        consultation = _load(ctx, consultation_id)
        require_org(ctx, consultation["requester"], f"close consultation {consultation_id}")
        _require_status(consultation, ("REPORTED",))
        _revoke(ctx, consultation)
        settlement = call(
            ctx,
            "settlement",
            "ExecuteConsultation",
            consultation_id,
            consultation["requester"],
            consultation["consultant"],
        )
        consultation.update(status="CLOSED", closedAt=now_iso(ctx), settlement=settlement)
        return _save(ctx, "ConsultationClosed", consultation)

    @transaction
    def ExpireConsultation(self, ctx: Context, consultation_id: str) -> str:
        """An open consultation past its deadline ends (either party or a regulator above
        them); its grants are revoked."""
        consultation = _load(ctx, consultation_id)
        parties = (consultation["requester"], consultation["consultant"])
        require_may_see(ctx, f"consultation {consultation_id}", *parties)
        _require_status(consultation, OPEN)
        if now_iso(ctx) <= consultation["deadline"]:
            raise ContractError(
                f"consultation {consultation_id} is due by {consultation['deadline']}", 409
            )
        _revoke(ctx, consultation)
        consultation.update(status="EXPIRED", expiredAt=now_iso(ctx))
        return _save(ctx, "ConsultationExpired", consultation)

    @transaction(evaluate=True)
    def GetConsultation(self, ctx: Context, consultation_id: str) -> str:
        consultation = _load(ctx, consultation_id)
        _require_reader(ctx, consultation)
        return to_json(consultation).decode()

    @transaction(evaluate=True)
    def ByHospital(self, ctx: Context, hospital_id: str) -> list[Any]:
        """The consultations a hospital requested or was asked for, newest first."""
        hospital(ctx, hospital_id)
        require_may_see(ctx, f"the consultations of {hospital_id}", hospital_id)
        require_audit_role_of_regulator(ctx)
        found = [_load(ctx, c) for c, _ in scan(ctx, "consultationof", hospital_id)]
        return sorted(found, key=lambda c: (c["requestedAt"], c["consultationId"]), reverse=True)

    @transaction(evaluate=True)
    def ForVisit(self, ctx: Context, visit_no: str) -> list[Any]:
        """The consultations of one visit the caller may see."""
        check_id(visit_no, "visit number")
        found = []
        for consultation_id, _ in scan(ctx, "consultationvisit", visit_no):
            consultation = _load(ctx, consultation_id)
            parties = (consultation["requester"], consultation["consultant"])
            if may_see(ctx, *parties) and _audit_role_ok(ctx):
                found.append(consultation)
        return sorted(found, key=lambda c: (c["requestedAt"], c["consultationId"]))


def _audit_role_ok(ctx: Context) -> bool:
    try:
        require_audit_role_of_regulator(ctx)
    except ContractError:
        return False
    return True


def _require_reader(ctx: Context, consultation: dict[str, Any]) -> None:
    parties = (consultation["requester"], consultation["consultant"])
    require_may_see(ctx, f"consultation {consultation['consultationId']}", *parties)
    require_audit_role_of_regulator(ctx)


def _load(ctx: Context, consultation_id: str) -> dict[str, Any]:
    check_id(consultation_id, "consultation id")
    key = consultation_key(consultation_id)
    return load(ctx, key, f"consultation {consultation_id}")


def _as_consultant(
    ctx: Context, consultation_id: str, action: str, statuses: tuple[str, ...]
) -> dict[str, Any]:
    require_role(ctx, *ROLES)
    consultation = _load(ctx, consultation_id)
    require_org(ctx, consultation["consultant"], f"{action} consultation {consultation_id}")
    _require_status(consultation, statuses)
    if action != "decline" and now_iso(ctx) > consultation["deadline"]:
        # past its deadline a consultation only ends: access must not outlive it
        raise ContractError(
            f"consultation {consultation_id} passed its deadline {consultation['deadline']}; "
            "it can only expire",
            409,
        )
    return consultation


def _require_status(consultation: dict[str, Any], statuses: tuple[str, ...]) -> None:
    if consultation["status"] not in statuses:
        raise ContractError(
            f"consultation {consultation['consultationId']} is {consultation['status']}", 409
        )


def _grant_needed(ctx: Context, record_id: str, visit: dict[str, Any], consultant: str) -> bool:
    """The record may be granted for this visit (its patient's, the requester's own, not
    erased); False when the consultant already reads it (nothing to grant, nothing to revoke)."""
    record = call(ctx, "records", "GetRecord", record_id)
    if record["owner"] != visit["hospital"] or record["patientRef"] != visit["patientRef"]:
        raise ContractError(
            f"record {record_id} is not a record of visit {visit['visitNo']}'s patient "
            f"owned by {visit['hospital']}",
            403,
        )
    if record["erased"]:
        raise ContractError(f"record {record_id} was erased", 410)
    if consultant in record.get("consultationGrants", []):
        # one grant per (record, consultant): a second consultation sharing it would lose it
        # when the first ends
        raise ContractError(
            f"record {record_id} is granted to {consultant} by another open consultation; "
            "close that one first",
            409,
        )
    return consultant not in record["authorised"]


def _revoke(ctx: Context, consultation: dict[str, Any]) -> None:
    for record_id in consultation["granted"]:
        record = call(ctx, "records", "GetRecord", record_id)
        if consultation["consultant"] in record["authorised"]:  # the owner may have revoked
            call(ctx, "records", "Revoke", record_id, consultation["consultant"])
    consultation["revokedAt"] = now_iso(ctx)


def _record_ids(text: str) -> dict[str, str]:
    """Record id -> the consultant's wrapped-key commitment ("" for the array form: rights
    only, the holder re-wraps later with `GrantWithKey`)."""
    try:
        named = json.loads(text)
    except ValueError:
        named = None
    if isinstance(named, list) and len(set(map(str, named))) == len(named):
        named = dict.fromkeys(named, "")
    if (
        not isinstance(named, dict)
        or not 1 <= len(named) <= RECORDS_MAX
        or not all(isinstance(i, str) and isinstance(c, str) for i, c in named.items())
    ):
        raise ContractError(
            f"recordIds must be a JSON array of 1 to {RECORDS_MAX} distinct record ids, or an "
            "object of record id -> the consultant's wrapped-key commitment",
            400,
        )
    for record_id, commitment in named.items():
        check_id(record_id, "record id")
        if commitment:
            _check_digest(commitment, f"the commitment for record {record_id}")
    return named


def _check_digest(value: str, what: str) -> None:
    if not _DIGEST.fullmatch(value):
        raise ContractError(f"{what} must be a SHA-256 (64 lower-case hex)", 400)


def _check_signature(text: str) -> None:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not 0 < len(raw) <= SIGNATURE_BYTES_MAX:
        raise ContractError(
            f"signature must be base64 of the consultant's signature (1-{SIGNATURE_BYTES_MAX} "
            "bytes)",
            400,
        )


def _save(ctx: Context, event: str, consultation: dict[str, Any]) -> str:
    ctx.stub.put_state(consultation_key(consultation["consultationId"]), to_json(consultation))
    return _done(ctx, event, consultation)


def _done(ctx: Context, event: str, consultation: dict[str, Any]) -> str:
    ctx.stub.set_event(
        event,
        to_json(
            {
                "consultationId": consultation["consultationId"],
                "requester": consultation["requester"],
                "consultant": consultation["consultant"],
                "status": consultation["status"],
            }
        ),
    )
    return to_json(consultation).decode()
