"""Remote consultation (远程会诊) as the hospitals run it: request, report, verify, close.

The `consultation` contract (alliance/consultation.py) is the record. Requesting seals nothing:
the requester re-wraps the data key of each record it names for the consultant (the ciphertext
stays) and the request commits those grants with the consultation (records' `GrantWithKey`), then
the re-wrapped packages go to the requester's peer, which pushes them on. The question is only a
digest on the ledger. The consultant's report is a sealed package for the requester and the
regulators, registered as a record of the visit's patient; the consultant signs its digest with
its own certificate (which travels inside the sealed package) and submits digest and signature.
`verify_report` is what the requester runs before relying on it: the package matches the digest
on the ledger, the certificate belongs to the consultant hospital's MSP and is the one that
submitted the report, and the signature holds.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from medalliance.app.alliance_network import AllianceNetwork, Committed
from medalliance.app.packages import open_as
from medalliance.app.referral_packages import seal_and_share
from medalliance.app.session import user_signer
from medalliance.errors import (
    InvalidArgument,
    MalformedMessage,
    PermissionDenied,
    PreconditionFailed,
)
from medalliance.identity.msp import Msp, MspManager
from medalliance.identity.signing import serialize_identity
from medalliance.node.embedded import utc_now
from medalliance.node.package_holding import Held
from medalliance.privacy.envelope import SealedPackage, add_recipients
from medalliance.privacy.keys import EncryptionKeyring, recipient_key

CONTRACT = "consultation"
# what a report signature commits to: a consultation's report, never any other digest
REPORT_SCOPE = b"medalliance.consultation-report/1|"
_REPORT_SUFFIX = ".report"
_ID_CHARS_MAX = 64


class ReportNotAuthentic(PermissionDenied):
    """The report does not match the ledger or is not signed by the consultant."""

    def __init__(self, consultation_id: str, why: str) -> None:
        super().__init__(f"the report of consultation {consultation_id} is not authentic: {why}")
        self.consultation_id = consultation_id


@dataclass(frozen=True, slots=True)
class ConsultationRequest:
    """What the requesting doctor decides; the question itself is only hashed."""

    consultation_id: str
    visit_no: str  # 就诊号
    consultant: str  # the consultant hospital (name or MSP id)
    department: str
    record_ids: tuple[str, ...]
    deadline: str  # ISO 8601 with a zone
    question: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class VerifiedReport:
    consultation_id: str
    signed_by: str  # the consultant's MSP id
    text: str = field(repr=False)


def question_digest(question: str) -> str:
    return hashlib.sha256(question.encode()).hexdigest()


def report_record_id(consultation_id: str) -> str:
    """The record id of a consultation's sealed report."""
    record_id = consultation_id + _REPORT_SUFFIX
    if len(record_id) > _ID_CHARS_MAX:
        raise InvalidArgument(
            f"consultation ids of a report are at most {_ID_CHARS_MAX - len(_REPORT_SUFFIX)} "
            "characters"
        )
    return record_id


def report_message(consultation_id: str, digest: str) -> bytes:
    return REPORT_SCOPE + f"{consultation_id}|{digest}".encode()


def request(network: AllianceNetwork, org: str, user: str, draft: ConsultationRequest) -> Committed:
    """Grant the consultant each record (re-wrapped for it) and request the consultation in
    one transaction; then hand the re-wrapped packages to the requester's peer."""
    layout = network.layout
    msp_id = layout.config.organization(org).msp_id
    consultant = layout.config.organization(draft.consultant).msp_id
    keyring = EncryptionKeyring.load(layout.org_dir(msp_id), msp_id)
    key = recipient_key(layout.org_msp_dir(consultant), consultant, utc_now())
    commitments: dict[str, str] = {}
    rewrapped: list[Held] = []
    for record_id in draft.record_ids:
        record = json.loads(network.evaluate(org, user, "records", "GetRecord", record_id))
        if consultant in record["authorised"]:
            commitments[record_id] = ""  # it reads it already: the contract grants nothing
            continue
        held = network.pull(org, user, record_id, int(record["version"]))
        package = add_recipients(
            SealedPackage.from_bytes(held.sealed), msp_id, keyring.private_keys, [key]
        )
        commitments[record_id] = package.key_commitments[consultant]
        rewrapped.append(Held(package.to_bytes(), held.attachments))
    done = network.submit(
        org, user, CONTRACT, "RequestConsultation", draft.consultation_id, draft.visit_no,
        consultant, draft.department, question_digest(draft.question),
        json.dumps(commitments), draft.deadline,
    )  # fmt: skip
    for held in rewrapped:
        network.push(org, held)
    return done


def submit_report(
    network: AllianceNetwork, org: str, user: str, consultation_id: str, text: str
) -> Committed:
    """Seal the report for the requester and the regulators, register it, sign its digest as
    `user` and submit digest and signature (the consultant's doctor)."""
    if not text.strip():
        raise InvalidArgument("the report is empty")
    consultation = get(network, org, user, consultation_id)
    visit = json.loads(network.evaluate(org, user, "visit", "GetVisit", consultation["visitNo"]))
    signer = user_signer(network.layout, org, user)
    body = {
        "consultationId": consultation_id,
        "text": text,
        "signerCertificate": signer.cert_pem.decode(),
    }
    record_id = report_record_id(consultation_id)
    readers = _readers(network, consultation["requester"])
    seal_and_share(
        network, org, user, readers, record_id, visit["patientRef"],
        json.dumps(body, ensure_ascii=False).encode(),
    )  # fmt: skip
    version = json.loads(network.evaluate(org, user, "records", "GetVersion", record_id, "1"))
    signature = signer.sign(report_message(consultation_id, version["digest"]))
    return network.submit(
        org, user, CONTRACT, "SubmitReport", consultation_id, version["digest"],
        base64.b64encode(signature).decode(),
    )  # fmt: skip


def verify_report(
    network: AllianceNetwork, org: str, user: str, consultation_id: str
) -> VerifiedReport:
    """Open and check the consultation's report (a party or regulator reading it): the access is
    logged on the ledger. `ReportNotAuthentic` when any check fails."""
    consultation = get(network, org, user, consultation_id)
    digest = consultation.get("reportDigest")
    if not digest:
        raise PreconditionFailed(f"consultation {consultation_id} has no report yet")
    record_id = report_record_id(consultation_id)
    held = network.pull(org, user, record_id, 1)
    package = SealedPackage.from_bytes(held.sealed)
    if package.digest != digest:
        raise ReportNotAuthentic(consultation_id, "the package is not the one on the ledger")
    data, _ = open_as(network.layout, org, package)
    network.submit(org, user, "records", "LogAccess", record_id, "1", "decrypt")
    body = _report_body(data)
    if body is None:
        raise ReportNotAuthentic(consultation_id, "the package is not a consultation report")
    consultant = consultation["consultant"]
    msps = MspManager([Msp.from_dir(network.layout.org_msp_dir(consultant), consultant)])
    cert = str(body.get("signerCertificate", "")).encode()
    try:
        identity = msps.deserialize(serialize_identity(consultant, cert), at=utc_now())
    except (MalformedMessage, PermissionDenied):
        raise ReportNotAuthentic(
            consultation_id, f"not signed by a member of {consultant}"
        ) from None
    if identity.id_hash.hex() != consultation["reportedBy"]:
        raise ReportNotAuthentic(consultation_id, "signed by another than its submitter")
    signature = base64.b64decode(consultation["reportSignature"])
    if not identity.verify(signature, report_message(consultation_id, digest)):
        raise ReportNotAuthentic(consultation_id, "the signature does not hold")
    return VerifiedReport(consultation_id, consultant, str(body["text"]))


def get(network: AllianceNetwork, org: str, user: str, consultation_id: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        network.evaluate(org, user, CONTRACT, "GetConsultation", consultation_id)
    )
    return found


def listed(network: AllianceNetwork, org: str, user: str, hospital: str) -> list[dict[str, Any]]:
    msp_id = network.layout.config.organization(hospital).msp_id
    found: list[dict[str, Any]] = json.loads(
        network.evaluate(org, user, CONTRACT, "ByHospital", msp_id)
    )
    return found


def deadline_in(hours: int, now: dt.datetime | None = None) -> str:
    """An ISO 8601 deadline `hours` from now (UTC), as the CLI's default."""
    when = (now or utc_now()) + dt.timedelta(hours=hours)
    return when.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _report_body(data: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(data)
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        return None
    return body


def _readers(network: AllianceNetwork, requester: str) -> Sequence[str]:
    """The requester and its supervising regulator (the writer's is added by sealing)."""
    config = network.layout.config
    org = config.organization(requester)
    return [org.msp_id, *([config.organization(org.regulator).msp_id] if org.regulator else [])]
