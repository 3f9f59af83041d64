"""Erasure of a patient's records: request, withdrawal, rejection, approval and receipts.

docs/privacy.md §4 (Erasure). The functions of the `records` contract (mixed into
`RecordsContract`) that decide who may ask that every copy of a patient's data be deleted
(the hospital that registered one of the patient's records, or its supervising regulator),
who decides (that regulator: approve, or reject with a coded reason), and how each holder
states on the ledger that it deleted its copies. Approval only marks the records erased in
world state; holders act on those committed writes (`privacy.record_ledger`), never on the
`ErasureApproved` event. Reasons are codes, never free text: no clinical content on chain.
"""

from __future__ import annotations

import json
from typing import Any

from medalliance.alliance.common import check_id, load, now_iso, protect, scan, to_json
from medalliance.contracts import Context, create_composite_key, transaction
from medalliance.errors import ContractError
from medalliance.privacy.record_ledger import receipt_key, record_key

# Why a regulator may refuse an erasure: codes, never free text (no clinical content on chain).
ERASURE_REJECTIONS = (
    "LEGAL_HOLD",  # the records are under a legal hold (litigation, investigation)
    "RETENTION_PERIOD",  # the statutory retention period of medical records has not elapsed
    "REQUEST_NOT_VERIFIED",  # the patient's own request could not be verified
    "NOT_THE_PATIENT",  # the pseudonym is not the requesting patient's
)
_OPEN = "REQUESTED"
_CLOSED = ("WITHDRAWN", "REJECTED")  # a new request may be filed after these
PATIENT_INDEX = "patientrecord"  # object type of the patient -> record index keys


class RecordErasure:
    """The erasure functions of the `records` contract."""

    @transaction
    def RequestErasure(self, ctx: Context, patient_ref: str) -> str:
        """The hospital holding the patient's records (the owner of one of them), or the
        regulator supervising such a hospital, asks that every copy of their data be deleted.
        Approval or rejection is the supervising regulator's; the requester may withdraw."""
        caller = ctx.client.msp_id
        owners = {load_record(ctx, r)["owner"] for r in _records_of(ctx, patient_ref)}
        supervisors = {regulator_of(ctx, o) for o in owners}
        if caller in owners:
            regulator = regulator_of(ctx, caller)
        elif caller in supervisors:
            regulator = caller
        else:
            raise ContractError(
                f"{caller} holds no record of this patient: only the hospital that registered "
                "the patient's records, or its supervising regulator, may request their erasure",
                403,
            )
        if regulator is None:
            raise ContractError("only a hospital with a supervising regulator may ask", 403)
        status = erasure_state(ctx, patient_ref)
        if status is not None and status not in _CLOSED:
            raise ContractError(f"an erasure of this patient is already {status}", 409)
        request = {
            "patientRef": patient_ref,
            "status": _OPEN,
            "requestedBy": caller,
            "regulator": regulator,
            "requestedAt": now_iso(ctx),
        }
        ctx.stub.put_state(erasure_key(patient_ref), to_json(request))
        protect(ctx, erasure_key(patient_ref), regulator)  # its decision: approve or reject
        return to_json(request).decode()

    @transaction
    def WithdrawErasure(self, ctx: Context, patient_ref: str) -> str:
        """The requester withdraws its open request; nothing is deleted."""
        request = _open_request(ctx, patient_ref)
        if ctx.client.msp_id != request["requestedBy"]:
            raise ContractError(
                f"only {request['requestedBy']}, which requested it, may withdraw this erasure",
                403,
            )
        request.update(status="WITHDRAWN", closedAt=now_iso(ctx))
        ctx.stub.put_state(erasure_key(patient_ref), to_json(request))
        return to_json(request).decode()

    @transaction
    def RejectErasure(self, ctx: Context, patient_ref: str, reason: str) -> str:
        """The supervising regulator refuses an open request, with a coded reason
        (`ERASURE_REJECTIONS`); nothing is deleted and a new request may be filed later."""
        request = _open_request(ctx, patient_ref)
        _require_erasure_regulator(ctx, request, "reject")
        if reason not in ERASURE_REJECTIONS:
            raise ContractError(f"reason must be one of {', '.join(ERASURE_REJECTIONS)}", 400)
        request.update(
            status="REJECTED", reason=reason, closedBy=ctx.client.msp_id, closedAt=now_iso(ctx)
        )
        ctx.stub.put_state(erasure_key(patient_ref), to_json(request))
        return to_json(request).decode()

    @transaction
    def ApproveErasure(self, ctx: Context, patient_ref: str) -> str:
        """The supervising regulator approves: every record of the patient is erased.

        Holders delete ciphertexts and wrapped keys when they see the committed records in the
        erased state (never on the `ErasureApproved` event alone), then each files a deletion
        receipt (`ConfirmErasure`); the hashes stay here as proof of what existed.
        """
        request = _open_request(ctx, patient_ref)
        _require_erasure_regulator(ctx, request, "approve")
        erased = []
        for record_id in _records_of(ctx, patient_ref):
            record = load_record(ctx, record_id)
            record["erased"] = True
            ctx.stub.put_state(record_key(record_id), to_json(record))
            erased.append(record_id)
        request.update(status="APPROVED", approvedBy=ctx.client.msp_id, approvedAt=now_iso(ctx))
        request["records"] = sorted(erased)
        ctx.stub.put_state(erasure_key(patient_ref), to_json(request))
        ctx.stub.set_event(
            "ErasureApproved", to_json({"patientRef": patient_ref, "records": sorted(erased)})
        )
        return to_json(request).decode()

    @transaction
    def ConfirmErasure(self, ctx: Context, record_id: str) -> str:
        """A holder's signed deletion receipt: the caller's organisation (its peer, once it has
        deleted its copies) states that it holds no package, wrapped key or attachment of
        this erased record any more."""
        record = load_record(ctx, check_id(record_id, "record id"))
        caller = ctx.client.msp_id
        if not record["erased"]:
            raise ContractError(f"record {record_id} is not erased; nothing to confirm", 409)
        if caller not in holders(record):
            raise ContractError(f"{caller} was not a holder of record {record_id}", 403)
        key = receipt_key(record_id, caller)
        if ctx.stub.get_state(key) is not None:
            raise ContractError(f"{caller} already confirmed the erasure of {record_id}", 409)
        receipt = {
            "recordId": record_id,
            "org": caller,
            "actor": ctx.client.id_hash,
            "at": now_iso(ctx),
            "txId": ctx.tx_id,
        }
        ctx.stub.put_state(key, to_json(receipt))
        return to_json(receipt).decode()

    @transaction(evaluate=True)
    def ErasureReceipts(self, ctx: Context, patient_ref: str) -> str:
        """Per erased record of the patient: which holders confirmed deletion, which have not."""
        raw = ctx.stub.get_state(erasure_key(patient_ref))
        if raw is None:
            raise ContractError("no erasure was requested for this patient", 404)
        request = json.loads(raw)
        report = {}
        for record_id in request.get("records", []):
            expected = holders(load_record(ctx, record_id))
            confirmed = [o for o in expected if ctx.stub.get_state(receipt_key(record_id, o))]
            report[record_id] = {
                "confirmed": confirmed,
                "pending": [o for o in expected if o not in confirmed],
            }
        return to_json({"status": request["status"], "records": report}).decode()

    @transaction(evaluate=True)
    def GetErasure(self, ctx: Context, patient_ref: str) -> str:
        raw = ctx.stub.get_state(erasure_key(patient_ref))
        if raw is None:
            raise ContractError("no erasure was requested for this patient", 404)
        return raw.decode()


def holders(record: dict[str, Any]) -> list[str]:
    """Organisations that may hold a copy: every one ever authorised (a revoked organisation
    keeps what it received, so it too must delete and confirm on erasure)."""
    return list(record.get("holders", record["authorised"]))


def _records_of(ctx: Context, patient_ref: str) -> list[str]:
    return sorted(record_id for record_id, _ in scan(ctx, PATIENT_INDEX, patient_ref))


def _open_request(ctx: Context, patient_ref: str) -> dict[str, Any]:
    raw = ctx.stub.get_state(erasure_key(patient_ref))
    if raw is None:
        raise ContractError("no erasure was requested for this patient", 404)
    request: dict[str, Any] = json.loads(raw)
    if request["status"] != _OPEN:
        raise ContractError(f"the erasure is already {request['status']}", 409)
    return request


def _require_erasure_regulator(ctx: Context, request: dict[str, Any], action: str) -> None:
    # Requests filed before the regulator was recorded name only the requester.
    regulator = request.get("regulator") or regulator_of(ctx, request["requestedBy"])
    if ctx.client.msp_id != regulator:
        raise ContractError(
            f"only the regulator of {request['requestedBy']} may {action} this erasure", 403
        )


def erasure_key(patient_ref: str) -> str:
    return create_composite_key("erasure", [patient_ref])


def erasure_state(ctx: Context, patient_ref: str) -> str | None:
    raw = ctx.stub.get_state(erasure_key(patient_ref))
    return None if raw is None else str(json.loads(raw)["status"])


def load_record(ctx: Context, record_id: str) -> dict[str, Any]:
    """A committed record (404 if there is none); ids from arguments are checked by the caller."""
    return load(ctx, record_key(record_id), f"record {record_id}")


def regulator_of(ctx: Context, msp_id: str) -> str | None:
    org = ctx.organizations.get(msp_id)
    return org.regulator if org is not None else None
