"""What every alliance contract checks: ids, the caller's role and organisation, the registry.

The registry is the channel configuration's alliance roles (`ctx.organizations`: type,
supervising regulator, parent regulator), changed only by a config update; the caller's
organisation and role come from its certificate (`ctx.client`). Arguments never grant anything.
Every refusal is a `ContractError` that says what is wrong, and nothing is written.

Who decides a key is enforced by endorsement, not only by the contract's checks (a member that
owns its peer's keys could sign any read-write set): `protect` gives a decision's key a
key-level endorsement policy (Fabric's state-based endorsement) naming the decider's peer, so no
write of it commits without the decider (docs/alliance.md §1).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any

from medalliance.contracts import Context, split_composite_key
from medalliance.contracts.api import Organization
from medalliance.contracts.key_policy import key_policy, peers_policy
from medalliance.errors import ContractError

_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_PERIOD = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
HOSPITAL_LEVELS = {"secondary": 2, "tertiary": 3}
MAX_TEXT = 500  # free-text fields are short notes, never clinical content (that is encrypted)


def check_id(value: str, what: str) -> str:
    """An identifier as the alliance writes them (visit numbers, application ids, ...)."""
    if not _ID.fullmatch(value):
        raise ContractError(f"{what} {value!r} may use letters, digits and ._- (1-64)", 400)
    return value


def check_period(period: str) -> str:
    """A month, as reports and settlements count them: YYYY-MM."""
    if not _PERIOD.fullmatch(period):
        raise ContractError(f"period must be YYYY-MM (e.g. 2026-11), not {period!r}", 400)
    return period


def check_text(value: str, what: str, *, required: bool = True) -> str:
    if required and not value.strip():
        raise ContractError(f"{what} must not be empty", 400)
    if len(value) > MAX_TEXT:
        raise ContractError(f"{what} is {len(value)} characters; at most {MAX_TEXT}", 400)
    return value


def check_choice(value: str, what: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ContractError(f"{what} must be one of {', '.join(choices)}, not {value!r}", 400)
    return value


def require_role(ctx: Context, *roles: str) -> None:
    """The caller's certificate carries one of `roles` (its alliance role attribute)."""
    if ctx.client.role not in roles:
        needed = " or ".join(roles)
        raise ContractError(
            f"role {needed} required, caller has {ctx.client.role or 'no role'}", 403
        )


AUDIT_ROLES = ("auditor", "reviewer")


def require_audit_role_of_regulator(ctx: Context) -> None:
    """A commission reads the alliance's traces through its auditors and reviewers only
    (issue 14): a commission caller needs one of `AUDIT_ROLES`; hospitals are not affected."""
    if organization(ctx, ctx.client.msp_id).type == "regulator":
        require_role(ctx, *AUDIT_ROLES)


def require_org(ctx: Context, msp_id: str, action: str) -> None:
    """The caller belongs to `msp_id`."""
    if ctx.client.msp_id != msp_id:
        raise ContractError(f"caller of {ctx.client.msp_id} cannot {action} for {msp_id}", 403)


def organization(ctx: Context, msp_id: str) -> Organization:
    found = ctx.organizations.get(msp_id)
    if found is None:
        raise ContractError(f"{msp_id} is not a member of channel {ctx.channel_id}", 404)
    return found


def hospital(ctx: Context, msp_id: str) -> Organization:
    """A member hospital (tertiary or secondary)."""
    org = organization(ctx, msp_id)
    if org.type not in HOSPITAL_LEVELS:
        raise ContractError(f"{msp_id} is a {org.type} organisation, not a hospital", 400)
    return org


def regulators_above(ctx: Context, msp_id: str) -> list[str]:
    """The regulators that supervise `msp_id`, nearest first (district, then city, ...)."""
    org = organization(ctx, msp_id)
    found: list[str] = []
    nxt = org.regulator if org.type != "regulator" else org.parent
    while nxt and nxt not in found and nxt in ctx.organizations:
        found.append(nxt)
        nxt = ctx.organizations[nxt].parent
    return found


def supervising_regulator(ctx: Context, msp_id: str) -> str:
    regulator = organization(ctx, msp_id).regulator
    if not regulator:
        raise ContractError(f"{msp_id} has no supervising regulator in the registry", 412)
    return regulator


def may_see(ctx: Context, *parties: str) -> bool:
    """The caller is one of the parties or a regulator above one of them."""
    caller = ctx.client.msp_id
    return caller in parties or any(caller in regulators_above(ctx, p) for p in parties)


def require_may_see(ctx: Context, what: str, *parties: str) -> None:
    if not may_see(ctx, *parties):
        raise ContractError(
            f"{ctx.client.msp_id} is neither a party to {what} nor their regulator", 403
        )


def load(ctx: Context, key: str, what: str) -> dict[str, Any]:
    """The JSON object under `key`, or 404 "<what> does not exist"."""
    raw = ctx.stub.get_state(key)
    if raw is None:
        raise ContractError(f"{what} does not exist", 404)
    found: dict[str, Any] = json.loads(raw)
    return found


def scan(ctx: Context, object_type: str, *attributes: str) -> Iterator[tuple[str, bytes]]:
    """(last attribute, value) of every composite key `object_type/attributes/...`: the way
    per-item index keys are listed (one key per item, never one list in a key)."""
    for key, value in ctx.stub.get_state_by_partial_composite_key(object_type, attributes):
        yield split_composite_key(key)[1][-1], value


def call(ctx: Context, contract: str, function: str, *args: str) -> Any:
    """Call another alliance contract in this transaction; its JSON result."""
    payload = ctx.stub.invoke_chaincode(contract, [function, *args])
    return json.loads(payload) if payload else None


def now_iso(ctx: Context) -> str:
    """The transaction's timestamp (the client's, checked by endorsers), ISO 8601 UTC."""
    when = dt.datetime.fromtimestamp(ctx.tx_timestamp_ms / 1000, tz=dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def check_code(value: str, what: str, codes: tuple[str, ...]) -> str:
    """A coded field (docs/privacy.md §5): exactly one of a closed list, never free text.

    The refusal lists the codes but never quotes the value: where a code was expected, a
    caller may have typed clinical text, which must not reach logs or error messages.
    """
    if not any(value == code for code in codes):
        raise ContractError(
            f"{what} must be one of {', '.join(codes)}; free text goes into a sealed note "
            "(a records entry), never onto the ledger",
            400,
        )
    return value


def check_ref(value: str, what: str) -> str:
    """A record id where a note or document is expected. Like `check_id`, but the refusal never
    quotes the value: a caller who typed the note itself must not see it echoed into logs."""
    if not _ID.fullmatch(value):
        raise ContractError(
            f"{what} must be a record id (letters, digits and ._-, 1-64): seal the text with the "
            "privacy module and pass the record's id",
            400,
        )
    return value


def require_sealed_for(
    ctx: Context, record_id: str, what: str, patient_ref: str, *readers: str
) -> str:
    """`record_id` is a records entry of the patient `patient_ref` that every one of `readers`
    may open: how free text (notes, feedback) is attached to a decision without being on the
    ledger. 400 for another patient's record, 412 until it is shared with a reader."""
    check_ref(record_id, what)
    record = call(ctx, "records", "GetRecord", record_id)
    if record["patientRef"] != patient_ref:
        raise ContractError(f"{what} {record_id} is a record of another patient", 400)
    for reader in readers:
        if call(ctx, "records", "IsAuthorised", record_id, reader) is not True:
            raise ContractError(
                f"{what} {record_id} is not shared with {reader}; seal it for {reader} first", 412
            )
    return record_id


def proxy(ctx: Context, msp_id: str) -> str:
    """The organisation whose peer endorses `msp_id`'s decisions: itself, except a secondary
    hospital (it does not endorse, paper §3), for which its supervising regulator does."""
    org = organization(ctx, msp_id)
    if org.type == "secondary" and org.regulator:
        return org.regulator
    return msp_id


def decision_policy(ctx: Context, *deciders: str) -> str:
    """The key policy of a decision of `deciders`: a peer of each decider's proxy AND, when that
    is one organisation, a peer of one other tertiary hospital (else another regulator), so that
    no single organisation can write the key and the decider can never be left out."""
    proxies = list(dict.fromkeys(proxy(ctx, d) for d in deciders))
    others: list[str] = []
    if len(proxies) < 2:
        by_type = sorted(ctx.organizations.values(), key=lambda o: o.msp_id)
        for kind in ("tertiary", "regulator"):
            others = [o.msp_id for o in by_type if o.type == kind and o.msp_id not in proxies]
            if others:
                break
    return peers_policy(proxies, others)


def protect(ctx: Context, key: str, *deciders: str) -> None:
    """Give `key` (written by this transaction) the key-level policy of `deciders`' decision;
    nothing is written when it already has that policy."""
    policy = key_policy(decision_policy(ctx, *deciders))
    if ctx.stub.get_state_validation_parameter(key) != policy:
        ctx.stub.set_state_validation_parameter(key, policy)
