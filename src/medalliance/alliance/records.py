"""The record registry: what the shared ledger knows of an encrypted clinical package.

docs/privacy.md §4. Per record the ledger holds the pseudonymous patient reference, each
version's SHA-256 of the sealed package and the addresses of its attachments, the authorised
organisations, grants, revocations, access events and erasure — never a plaintext field or a
ciphertext. Permissions come from the caller's certificate and the channel's alliance roles
(`ctx.organizations`), never from arguments: the writer must be authorised, and a hospital's
supervising regulator is always authorised for its records (paper §3: the commission audits).

Keys are per record, per version, per access event and per patient, so unrelated calls never
conflict: two hospitals logging access to one record write different keys.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from medalliance.alliance.common import protect
from medalliance.contracts import (
    Context,
    Contract,
    create_composite_key,
    split_composite_key,
    transaction,
)
from medalliance.errors import ContractError

_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_PSEUDONYM = re.compile(r"^[0-9a-f]{16,64}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
ACCESS_ACTIONS = ("fetch", "decrypt")


def record_key(record_id: str) -> str:
    return create_composite_key("record", [record_id])


def version_key(record_id: str, version: int) -> str:
    return create_composite_key("recordversion", [record_id, f"{version:010d}"])


def _access_key(record_id: str, tx_id: str) -> str:
    return create_composite_key("access", [record_id, tx_id])


def _patient_key(patient_ref: str, record_id: str) -> str:
    return create_composite_key("patientrecord", [patient_ref, record_id])


def _erasure_key(patient_ref: str) -> str:
    return create_composite_key("erasure", [patient_ref])


class RecordsContract(Contract):
    name = "records"

    @transaction
    def RegisterRecord(
        self,
        ctx: Context,
        record_id: str,
        patient_ref: str,
        digest: str,
        attachments: str,
        authorised: str,
    ) -> str:
        """Version 1 of a record. `attachments` and `authorised` are JSON arrays."""
        _check_id(record_id)
        if not _PSEUDONYM.fullmatch(patient_ref):
            raise ContractError(
                "patientRef must be a pseudonym (16-64 lower-case hex), not an identity", 400
            )
        if ctx.stub.get_state(record_key(record_id)) is not None:
            raise ContractError(f"record {record_id} already exists", 409)
        if _erasure_state(ctx, patient_ref) == "APPROVED":
            raise ContractError("the patient's data was erased; no new records for them", 409)
        owner = ctx.client.msp_id
        orgs = _authorised(ctx, authorised, owner)
        record = {
            "recordId": record_id,
            "patientRef": patient_ref,
            "owner": owner,
            "version": 0,
            "authorised": orgs,
            "erased": False,
        }
        _write_version(ctx, record, digest, attachments)
        protect(ctx, record_key(record_id), _regulator_of(ctx, owner) or owner)
        ctx.stub.put_state(_patient_key(patient_ref, record_id), b"\x00")
        return _json(record).decode()

    @transaction
    def AddVersion(self, ctx: Context, record_id: str, digest: str, attachments: str) -> str:
        """A new version, written by an authorised organisation for the same organisations."""
        record = _load(ctx, record_id)
        _require_authorised(ctx, record)
        _write_version(ctx, record, digest, attachments)
        return _json(record).decode()

    @transaction
    def Grant(self, ctx: Context, record_id: str, org: str) -> str:
        """Authorise one more organisation (e.g. a consultant hospital) for this record."""
        record = _load(ctx, record_id)
        _require_authorised(ctx, record)
        if org not in ctx.channel_orgs:
            raise ContractError(f"{org} is not a member of channel {ctx.channel_id}", 404)
        if org in record["authorised"]:
            raise ContractError(f"{org} is already authorised for record {record_id}", 409)
        record["authorised"] = sorted([*record["authorised"], org])
        ctx.stub.put_state(record_key(record_id), _json(record))
        _log(ctx, record, "grant", target=org)
        ctx.stub.set_event("AccessGranted", _json({"recordId": record_id, "org": org}))
        return _json(record).decode()

    @transaction
    def Revoke(self, ctx: Context, record_id: str, org: str) -> str:
        """End an organisation's access to future versions (by the owner or its regulator)."""
        record = _load(ctx, record_id)
        caller = ctx.client.msp_id
        if caller not in (record["owner"], _regulator_of(ctx, record["owner"])):
            raise ContractError(
                f"only {record['owner']} or its regulator may revoke access to record {record_id}",
                403,
            )
        if org in (record["owner"], _regulator_of(ctx, record["owner"])):
            raise ContractError(f"{org} cannot lose access to its own or a supervised record", 409)
        if org not in record["authorised"]:
            raise ContractError(f"{org} is not authorised for record {record_id}", 404)
        record["authorised"] = [o for o in record["authorised"] if o != org]
        ctx.stub.put_state(record_key(record_id), _json(record))
        _log(ctx, record, "revoke", target=org)
        ctx.stub.set_event("AccessRevoked", _json({"recordId": record_id, "org": org}))
        return _json(record).decode()

    @transaction
    def LogAccess(self, ctx: Context, record_id: str, version: str, action: str) -> str:
        """Record that the caller's organisation fetched or decrypted a version."""
        record = _load(ctx, record_id)
        _require_authorised(ctx, record)
        if action not in ACCESS_ACTIONS:
            raise ContractError(f"action must be one of {', '.join(ACCESS_ACTIONS)}", 400)
        number = _version_number(version, record)
        return _json(_log(ctx, record, action, version=number)).decode()

    @transaction
    def RequestErasure(self, ctx: Context, patient_ref: str) -> str:
        """A hospital asks, for its patient, that every copy of their data be deleted."""
        caller = ctx.client.msp_id
        if _regulator_of(ctx, caller) is None:
            raise ContractError("only a hospital with a supervising regulator may ask", 403)
        if _erasure_state(ctx, patient_ref) is not None:
            raise ContractError("an erasure of this patient was already requested", 409)
        request = {
            "patientRef": patient_ref,
            "status": "REQUESTED",
            "requestedBy": caller,
            "requestedAt": _now(ctx),
        }
        ctx.stub.put_state(_erasure_key(patient_ref), _json(request))
        protect(ctx, _erasure_key(patient_ref), _regulator_of(ctx, caller) or caller)
        return _json(request).decode()

    @transaction
    def ApproveErasure(self, ctx: Context, patient_ref: str) -> str:
        """The requesting hospital's regulator approves: every record of the patient is erased.

        Holders react to the `ErasureApproved` event by deleting ciphertexts and wrapped keys;
        the hashes stay here as proof of what existed.
        """
        raw = ctx.stub.get_state(_erasure_key(patient_ref))
        if raw is None:
            raise ContractError("no erasure was requested for this patient", 404)
        request = json.loads(raw)
        if request["status"] != "REQUESTED":
            raise ContractError(f"the erasure is already {request['status']}", 409)
        if ctx.client.msp_id != _regulator_of(ctx, request["requestedBy"]):
            raise ContractError(
                f"only the regulator of {request['requestedBy']} may approve this erasure", 403
            )
        erased = []
        for key, _ in ctx.stub.get_state_by_partial_composite_key("patientrecord", [patient_ref]):
            _, (_, record_id) = split_composite_key(key)
            record = _load(ctx, record_id)
            record["erased"] = True
            ctx.stub.put_state(record_key(record_id), _json(record))
            erased.append(record_id)
        request.update(status="APPROVED", approvedBy=ctx.client.msp_id, approvedAt=_now(ctx))
        request["records"] = sorted(erased)
        ctx.stub.put_state(_erasure_key(patient_ref), _json(request))
        ctx.stub.set_event(
            "ErasureApproved", _json({"patientRef": patient_ref, "records": sorted(erased)})
        )
        return _json(request).decode()

    @transaction(evaluate=True)
    def GetErasure(self, ctx: Context, patient_ref: str) -> str:
        raw = ctx.stub.get_state(_erasure_key(patient_ref))
        if raw is None:
            raise ContractError("no erasure was requested for this patient", 404)
        return raw.decode()

    @transaction(evaluate=True)
    def GetRecord(self, ctx: Context, record_id: str) -> str:
        return _json(_load(ctx, record_id)).decode()

    @transaction(evaluate=True)
    def GetVersion(self, ctx: Context, record_id: str, version: str) -> str:
        record = _load(ctx, record_id)
        raw = ctx.stub.get_state(version_key(record_id, _version_number(version, record)))
        if raw is None:  # every version up to record["version"] is written with the record
            raise ContractError(f"version {version} of record {record_id} is missing", 500)
        return raw.decode()

    @transaction(evaluate=True)
    def IsAuthorised(self, ctx: Context, record_id: str, org: str) -> str:
        record = _load(ctx, record_id)
        return "true" if not record["erased"] and org in record["authorised"] else "false"

    @transaction(evaluate=True)
    def AccessLog(self, ctx: Context, record_id: str) -> list[Any]:
        _load(ctx, record_id)
        entries = ctx.stub.get_state_by_partial_composite_key("access", [record_id])
        return sorted((json.loads(v) for _, v in entries), key=lambda e: (e["at"], e["txId"]))


def _check_id(record_id: str) -> None:
    if not _ID.fullmatch(record_id):
        raise ContractError(f"record id {record_id!r} may use letters, digits and ._- (1-64)", 400)


def _load(ctx: Context, record_id: str) -> dict[str, Any]:
    _check_id(record_id)
    raw = ctx.stub.get_state(record_key(record_id))
    if raw is None:
        raise ContractError(f"record {record_id} does not exist", 404)
    record: dict[str, Any] = json.loads(raw)
    return record


def _require_authorised(ctx: Context, record: dict[str, Any]) -> None:
    if record["erased"]:
        raise ContractError(f"record {record['recordId']} was erased", 410)
    if ctx.client.msp_id not in record["authorised"]:
        raise ContractError(
            f"{ctx.client.msp_id} is not authorised for record {record['recordId']}", 403
        )


def _regulator_of(ctx: Context, msp_id: str) -> str | None:
    org = ctx.organizations.get(msp_id)
    return org.regulator if org is not None else None


def _authorised(ctx: Context, text: str, owner: str) -> list[str]:
    try:
        orgs = json.loads(text)
    except ValueError:
        raise ContractError("authorised must be a JSON array of MSP ids", 400) from None
    if not isinstance(orgs, list) or not all(isinstance(o, str) for o in orgs):
        raise ContractError("authorised must be a JSON array of MSP ids", 400)
    unknown = sorted(o for o in orgs if o not in ctx.channel_orgs)
    if unknown:
        raise ContractError(f"{', '.join(unknown)} not a member of channel {ctx.channel_id}", 404)
    required = {owner} | ({r} if (r := _regulator_of(ctx, owner)) else set())
    return sorted(set(orgs) | required)


def _write_version(ctx: Context, record: dict[str, Any], digest: str, attachments: str) -> None:
    if not _DIGEST.fullmatch(digest):
        raise ContractError("digest must be the SHA-256 (64 lower-case hex) of the package", 400)
    try:
        addresses = json.loads(attachments)
    except ValueError:
        raise ContractError("attachments must be a JSON array of document addresses", 400) from None
    if not isinstance(addresses, list) or not all(
        isinstance(a, str) and _DIGEST.fullmatch(a) for a in addresses
    ):
        raise ContractError("attachments must be a JSON array of document addresses", 400)
    record["version"] += 1
    version = {
        "recordId": record["recordId"],
        "version": record["version"],
        "digest": digest,
        "attachments": addresses,
        "authorised": record["authorised"],
        "writtenBy": ctx.client.msp_id,
        "at": _now(ctx),
    }
    ctx.stub.put_state(record_key(record["recordId"]), _json(record))
    ctx.stub.put_state(version_key(record["recordId"], record["version"]), _json(version))
    name = "RecordRegistered" if record["version"] == 1 else "RecordVersionAdded"
    ctx.stub.set_event(
        name,
        _json(
            {
                "recordId": record["recordId"],
                "version": record["version"],
                "authorised": record["authorised"],
            }
        ),
    )


def _version_number(text: str, record: dict[str, Any]) -> int:
    if not text.isdigit() or not 1 <= int(text) <= record["version"]:
        raise ContractError(
            f"record {record['recordId']} has versions 1 to {record['version']}, not {text!r}", 404
        )
    return int(text)


def _log(
    ctx: Context, record: dict[str, Any], action: str, *, version: int = 0, target: str = ""
) -> dict[str, Any]:
    entry = {
        "recordId": record["recordId"],
        "version": version or record["version"],
        "action": action,
        "org": ctx.client.msp_id,
        "actor": ctx.client.id_hash,
        "at": _now(ctx),
        "txId": ctx.tx_id,
    }
    if target:
        entry["target"] = target
    ctx.stub.put_state(_access_key(record["recordId"], ctx.tx_id), _json(entry))
    return entry


def _erasure_state(ctx: Context, patient_ref: str) -> str | None:
    raw = ctx.stub.get_state(_erasure_key(patient_ref))
    return None if raw is None else str(json.loads(raw)["status"])


def _now(ctx: Context) -> str:
    when = dt.datetime.fromtimestamp(ctx.tx_timestamp_ms / 1000, tz=dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
