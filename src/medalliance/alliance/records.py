"""The record registry: what the shared ledger knows of an encrypted clinical package.

docs/privacy.md §4. Per record the ledger holds the pseudonymous patient reference, each
version's SHA-256 of the sealed package, a SHA-256 commitment to each authorised organisation's
wrapped key (so a holder can refuse swapped keys) and the addresses of its attachments, the
authorised organisations, grants, revocations, access events, erasure requests and every
holder's deletion receipt — never a plaintext field, a ciphertext or a wrapped key. The key
layout and what a committed record means to holders are `privacy.record_ledger`'s; the erasure
functions are `record_erasure.RecordErasure`'s. Permissions come from the caller's certificate
and the channel's alliance roles
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

from medalliance.alliance.common import (
    protect,
    regulators_above,
    require_audit_role_of_regulator,
)
from medalliance.alliance.record_erasure import (
    ERASURE_REJECTIONS,
    PATIENT_INDEX,
    RecordErasure,
    erasure_state,
    holders,
    regulator_of,
)
from medalliance.contracts import (
    Context,
    Contract,
    create_composite_key,
    transaction,
)
from medalliance.errors import ContractError
from medalliance.privacy.record_ledger import record_key, version_key

_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_PSEUDONYM = re.compile(r"^[0-9a-f]{16,64}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
ACCESS_ACTIONS = ("fetch", "decrypt")
# the one contract whose calls may grant and revoke for a consultation's duration
CONSULTATION = "consultation"


__all__ = ["ERASURE_REJECTIONS", "RecordsContract", "record_key", "version_key"]


def _access_key(record_id: str, tx_id: str) -> str:
    return create_composite_key("access", [record_id, tx_id])


def _patient_key(patient_ref: str, record_id: str) -> str:
    return create_composite_key(PATIENT_INDEX, [patient_ref, record_id])


class RecordsContract(RecordErasure, Contract):
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
        """Version 1 of a record. `attachments` is a JSON array of document addresses.

        `authorised` is a JSON object: MSP id -> SHA-256 commitment to that organisation's
        wrapped key (`SealedPackage.key_commitments`), naming every organisation the package is
        sealed for, the writer and its supervising regulator included. A JSON array of MSP ids
        (the earlier form) registers rights without commitments: holders keep no package for
        such a record, since they could not check its wrapped keys.
        """
        _check_id(record_id)
        if not _PSEUDONYM.fullmatch(patient_ref):
            raise ContractError(
                "patientRef must be a pseudonym (16-64 lower-case hex), not an identity", 400
            )
        if ctx.stub.get_state(record_key(record_id)) is not None:
            raise ContractError(f"record {record_id} already exists", 409)
        if erasure_state(ctx, patient_ref) == "APPROVED":
            raise ContractError("the patient's data was erased; no new records for them", 409)
        owner = ctx.client.msp_id
        orgs, keys = _authorised(ctx, authorised, owner)
        record = {
            "recordId": record_id,
            "patientRef": patient_ref,
            "owner": owner,
            "version": 0,
            "authorised": orgs,
            "erased": False,
            "holders": orgs,  # every organisation ever authorised: each may hold a copy
        }
        _write_version(ctx, record, digest, attachments, keys)
        protect(ctx, record_key(record_id), regulator_of(ctx, owner) or owner)
        ctx.stub.put_state(_patient_key(patient_ref, record_id), b"\x00")
        return _json(record).decode()

    @transaction
    def AddVersion(
        self, ctx: Context, record_id: str, digest: str, attachments: str, keys: str
    ) -> str:
        """A new version, written by an authorised organisation for the same organisations;
        `keys` is a JSON object MSP id -> wrapped-key commitment for exactly those."""
        record = _load(ctx, record_id)
        _require_authorised(ctx, record)
        commitments = _commitments(keys)
        if sorted(commitments) != record["authorised"]:
            raise ContractError(
                "keys must commit one wrapped key for each authorised organisation: "
                + ", ".join(record["authorised"]),
                400,
            )
        _write_version(ctx, record, digest, attachments, commitments)
        return _json(record).decode()

    @transaction
    def Grant(self, ctx: Context, record_id: str, org: str) -> str:
        """Authorise one more organisation (e.g. a consultant hospital) for this record.

        Called by the `consultation` contract (for its requester, who must be authorised), the
        grant is marked as a consultation's, which is what lets that contract revoke it later
        whoever ends the consultation (`Revoke`)."""
        record = _load(ctx, record_id)
        _require_authorised(ctx, record)
        if org not in ctx.channel_orgs:
            raise ContractError(f"{org} is not a member of channel {ctx.channel_id}", 404)
        if org in record["authorised"]:
            raise ContractError(f"{org} is already authorised for record {record_id}", 409)
        record["authorised"] = sorted([*record["authorised"], org])
        if ctx.called_by == CONSULTATION:
            record["consultationGrants"] = sorted({*record.get("consultationGrants", []), org})
        record["holders"] = sorted({*holders(record), org})
        ctx.stub.put_state(record_key(record_id), _json(record))
        _log(ctx, record, "grant", target=org)
        ctx.stub.set_event("AccessGranted", _json({"recordId": record_id, "org": org}))
        return _json(record).decode()

    @transaction
    def GrantWithKey(self, ctx: Context, record_id: str, org: str, commitment: str) -> str:
        """`Grant`, committing the new organisation's wrapped key of the latest version (the
        holder re-wraps the data key for it; the ciphertext and its digest stay). A wrapped key
        once committed is never replaced, so no holder's copy can be swapped by a grant."""
        if not _DIGEST.fullmatch(commitment):
            raise ContractError("commitment must be a SHA-256 (64 lower-case hex)", 400)
        result = self.Grant(ctx, record_id, org)
        record = json.loads(result)
        key = version_key(record_id, record["version"])
        raw = ctx.stub.get_state(key)
        assert raw is not None, "every version up to record['version'] is written"
        version = json.loads(raw)
        keys = version.setdefault("keys", {})
        if keys.get(org, commitment) != commitment:
            raise ContractError(
                f"a different wrapped key of {org} is committed for record {record_id} "
                f"v{record['version']}; a committed key is never replaced",
                409,
            )
        keys[org] = commitment
        ctx.stub.put_state(key, _json(version))
        return result

    @transaction
    def Revoke(self, ctx: Context, record_id: str, org: str) -> str:
        """End an organisation's access to future versions (by the owner or its regulator,
        or by the `consultation` contract for a grant it made: only that organisation's)."""
        record = _load(ctx, record_id)
        caller = ctx.client.msp_id
        by_consultation = ctx.called_by == CONSULTATION and org in record.get(
            "consultationGrants", []
        )
        if caller not in (record["owner"], regulator_of(ctx, record["owner"])) and not (
            by_consultation
        ):
            raise ContractError(
                f"only {record['owner']} or its regulator may revoke access to record {record_id}",
                403,
            )
        if org in (record["owner"], regulator_of(ctx, record["owner"])):
            raise ContractError(f"{org} cannot lose access to its own or a supervised record", 409)
        if org not in record["authorised"]:
            raise ContractError(f"{org} is not authorised for record {record_id}", 404)
        record["authorised"] = [o for o in record["authorised"] if o != org]
        if org in record.get("consultationGrants", []):
            record["consultationGrants"] = [o for o in record["consultationGrants"] if o != org]
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
        """Who fetched, decrypted, was granted or lost a record: for its owner, and the auditors
        and reviewers of the commissions above the owner (not for every member: who opens a
        record says something about the patient)."""
        record = _load(ctx, record_id)
        caller = ctx.client.msp_id
        if caller != record["owner"] and caller not in regulators_above(ctx, record["owner"]):
            raise ContractError(
                f"the access log of record {record_id} is for {record['owner']} and its "
                f"regulators, not {caller}",
                403,
            )
        require_audit_role_of_regulator(ctx)
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


def _authorised(ctx: Context, text: str, owner: str) -> tuple[list[str], dict[str, str]]:
    """The authorised organisations and their wrapped-key commitments (none: array form)."""
    try:
        named = json.loads(text)
    except ValueError:
        raise ContractError(_AUTHORISED_FORM, 400) from None
    keys: dict[str, str] = {}
    if isinstance(named, dict):
        keys = _commitments(text)
        named = list(keys)
    if not isinstance(named, list) or not all(isinstance(o, str) for o in named):
        raise ContractError(_AUTHORISED_FORM, 400)
    unknown = sorted(o for o in named if o not in ctx.channel_orgs)
    if unknown:
        raise ContractError(f"{', '.join(unknown)} not a member of channel {ctx.channel_id}", 404)
    required = {owner} | ({r} if (r := regulator_of(ctx, owner)) else set())
    orgs = sorted(set(named) | required)
    if keys and sorted(keys) != orgs:
        missing = ", ".join(o for o in orgs if o not in keys)
        raise ContractError(
            f"the package must be sealed for {missing} too: commit a wrapped key for each "
            "authorised organisation",
            400,
        )
    return orgs, keys


_AUTHORISED_FORM = (
    "authorised must be a JSON object of MSP id -> wrapped-key commitment "
    "(or a JSON array of MSP ids)"
)


def _commitments(text: str) -> dict[str, str]:
    try:
        keys = json.loads(text)
    except ValueError:
        keys = None
    if (
        not isinstance(keys, dict)
        or not keys
        or not all(isinstance(v, str) and _DIGEST.fullmatch(v) for v in keys.values())
    ):
        raise ContractError(
            "keys must be a JSON object of MSP id -> SHA-256 commitment (64 lower-case hex)", 400
        )
    return {str(k): str(v) for k, v in keys.items()}


def _write_version(
    ctx: Context, record: dict[str, Any], digest: str, attachments: str, keys: dict[str, str]
) -> None:
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
        "keys": keys,
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
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= record["version"]:
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


def _now(ctx: Context) -> str:
    when = dt.datetime.fromtimestamp(ctx.tx_timestamp_ms / 1000, tz=dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
