"""Facts: what the ledger says happened, one small record per thing, read from committed blocks.

The audit module's input (docs/audit.md §1). A fact comes from what a VALID transaction wrote
(its read-write set, namespace by namespace: nested contract calls write into the callee's
namespace, so a `Refer` yields `application.used` and `referral.created`), from a config
transaction (`config.changed`) or from a `_lifecycle` write (`contract.changed`). Write sets, not
chaincode events, because Fabric keeps only the top-level contract's event of a transaction,
while every state change is in its write set. An invalidated transaction wrote nothing; it gives
one `tx.invalid` fact (subject: its tx id, attribute `code`: the validation code's name) so that
rules can notice, e.g., repeated refused attempts; indicators ignore it.

Attributes are ids, organisations, statuses, codes, periods, times and amounts (exact decimal
text) — never clinical text, patient references or keys (docs/privacy.md §5): facts are logged
and indexed. Pure: no clock, no I/O; the same block gives the same facts.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cryptography import x509
from fabric_protos.common import common_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import transaction_pb2
from google.protobuf.message import DecodeError

from medalliance.identity import ATTRIBUTE_EXTENSION_OID
from medalliance.ledger.block import transactions_filter
from medalliance.ledger.tx import (
    CONFIG,
    ENDORSER_TRANSACTION,
    EnvelopeView,
    MalformedTransaction,
    parse_envelope,
    parse_rwset,
)

__all__ = ["FACT_KINDS", "Fact", "facts_of_block", "iso_time"]

VALID = 0
LIFECYCLE_NAMESPACE = "_lifecycle"
_SEPARATOR = "\x00"
_CODE = transaction_pb2.TxValidationCode

# Every kind this module produces (docs/audit.md §1 lists what each one's attributes are).
FACT_KINDS = (
    "application.submitted",
    "application.reviewed",
    "application.used",
    "referral.created",
    "referral.accepted",
    "referral.rejected",
    "referral.completed",
    "record.shared",
    "record.accessed",
    "record.granted",
    "record.revoked",
    "result.shared",
    "result.recorded",
    "result.reused",
    "result.duplicate",
    "settlement.entry",
    "agreement.changed",
    "report.submitted",
    "report.aggregated",
    "visit.registered",
    "booking.changed",
    "resource.changed",
    "rule.changed",
    "config.changed",
    "contract.changed",
    "tx.invalid",
    "alarm.raised",
    "alarm.acknowledged",
    "alarm.closed",
    "consultation.changed",
)


@dataclass(frozen=True, slots=True)
class Fact:
    """One thing the ledger says happened, from a VALID transaction (or a `tx.invalid`)."""

    kind: str
    tx_id: str
    block: int
    tx_index: int
    timestamp: str  # the transaction's channel-header time, ISO 8601 UTC
    creator_msp: str  # the submitting organisation
    creator_role: str  # the alliance role in the creator's certificate ("" if none)
    subject: str  # the id it is about (application id, referral id, record id, ...)
    attributes: tuple[tuple[str, str], ...]  # sorted by name; never clinical text

    def attribute(self, name: str, default: str = "") -> str:
        """The value of one attribute, `default` when the fact has none of that name."""
        for key, value in self.attributes:
            if key == name:
                return value
        return default


@dataclass(frozen=True, slots=True)
class _Tx:
    tx_id: str
    block: int
    tx_index: int
    timestamp: str
    creator_msp: str
    creator_role: str

    def fact(self, kind: str, subject: str, **attributes: object) -> Fact:
        pairs = tuple(
            sorted((name, _text(value)) for name, value in attributes.items() if value is not None)
        )
        return Fact(
            kind=kind,
            tx_id=self.tx_id,
            block=self.block,
            tx_index=self.tx_index,
            timestamp=self.timestamp,
            creator_msp=self.creator_msp,
            creator_role=self.creator_role,
            subject=subject,
            attributes=pairs,
        )


def facts_of_block(block: common_pb2.Block, channel_id: str) -> list[Fact]:
    """Every fact of a committed block (with its TRANSACTIONS_FILTER), in transaction order.

    Transactions of another channel and envelopes that do not parse give no fact (a peer never
    commits them VALID); the genesis block's configuration is the starting point, not a change.
    """
    codes = transactions_filter(block)
    number = int(block.header.number)
    facts: list[Fact] = []
    for index, data in enumerate(block.data.data):
        code = codes[index] if index < len(codes) else _CODE.Value("INVALID_OTHER_REASON")
        try:
            view = parse_envelope(bytes(data))
        except MalformedTransaction:
            continue
        header = view.header
        if header.channel_id != channel_id:
            continue
        msp_id, role = _creator(header.creator)
        tx = _Tx(header.tx_id, number, index, iso_time(header.timestamp_ms), msp_id, role)
        if code != VALID:
            facts.append(tx.fact("tx.invalid", tx.tx_id, code=_code_name(code),
                                 contract=header.chaincode_name))  # fmt: skip
        elif header.header_type == CONFIG:
            if number > 0:
                facts.append(tx.fact("config.changed", channel_id))
        elif header.header_type == ENDORSER_TRANSACTION:
            facts.extend(_endorser_facts(tx, view))
    return facts


def iso_time(timestamp_ms: int) -> str:
    """A transaction time as the contracts write it: ISO 8601 UTC with milliseconds and Z."""
    when = dt.datetime.fromtimestamp(timestamp_ms / 1000, tz=dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- endorser transactions: one reader per namespace ---------------------------------------------


def _endorser_facts(tx: _Tx, view: EnvelopeView) -> Iterator[Fact]:
    try:
        namespaces = parse_rwset(view.endorser_tx().rwset)
    except MalformedTransaction:
        return
    for namespace, kv in namespaces:
        if namespace == LIFECYCLE_NAMESPACE:
            written = (w.key for w in kv.writes)
            names = sorted({k.split("/")[1] for k in written if k.startswith("definition/")})
            for name in names:
                yield tx.fact("contract.changed", name)
            continue
        reader = _READERS.get(namespace)
        if reader is None:
            continue
        for write in kv.writes:
            if write.is_delete or not write.key.startswith(_SEPARATOR):
                continue
            object_type, parts = _split(write.key)
            if object_type not in _OBJECT_TYPES:
                continue  # index keys (hospitalreferral, visitapplication, ...): nothing new
            value = _json(write.value)
            if value is not None:
                yield from reader(tx, object_type, parts, value)


_Reader = Callable[[_Tx, str, tuple[str, ...], dict[str, Any]], Iterator[Fact]]


def _report(tx: _Tx, kind: str, parts: tuple[str, ...], v: dict[str, Any]) -> Iterator[Fact]:
    if kind == "application":
        status = str(v.get("status", ""))
        fact_kind = {
            "SUBMITTED": "application.submitted",
            "APPROVED": "application.reviewed",
            "REJECTED": "application.reviewed",
            "USED": "application.used",
        }.get(status)
        if fact_kind:
            yield tx.fact(
                fact_kind,
                parts[0],
                hospital=v.get("hospital"),
                target=v.get("targetHospital"),
                regulator=v.get("regulator"),
                visit_no=v.get("visitNo"),
                status=status,
                reason_code=v.get("reasonCode") or None,
                submitted_at=v.get("submittedAt"),
                referral_id=v.get("referralId"),
            )
    elif kind == "downwardrule":
        yield tx.fact("rule.changed", parts[0], rule=v.get("rule"), name="downward")


def _referral(tx: _Tx, kind: str, parts: tuple[str, ...], v: dict[str, Any]) -> Iterator[Fact]:
    if kind != "referral":
        return
    status = str(v.get("status", ""))
    if status not in ("REFERRED", "ACCEPTED", "REJECTED", "COMPLETED"):
        return
    fact_kind = "referral.created" if status == "REFERRED" else f"referral.{status.lower()}"
    yield tx.fact(
        fact_kind,
        parts[0],
        from_hospital=v.get("fromHospital"),
        to_hospital=v.get("toHospital"),
        direction=v.get("direction"),
        application_id=v.get("applicationId"),
        visit_no=v.get("visitNo"),
        status=status,
        reason_code=v.get("reasonCode") if status == "REJECTED" else None,
        referred_at=v.get("referredAt"),
    )


def _records(tx: _Tx, kind: str, parts: tuple[str, ...], v: dict[str, Any]) -> Iterator[Fact]:
    if kind == "recordversion" and len(parts) == 2:
        yield tx.fact(
            "record.shared",
            parts[0],
            version=str(int(parts[1])),
            org=v.get("writtenBy"),
            authorised=",".join(sorted(str(o) for o in v.get("authorised", []))),
        )
    elif kind == "access":
        action = str(v.get("action", ""))
        fact_kind = {
            "fetch": "record.accessed",
            "decrypt": "record.accessed",
            "grant": "record.granted",
            "revoke": "record.revoked",
        }.get(action)
        if fact_kind:
            yield tx.fact(
                fact_kind,
                parts[0],
                action=action,
                org=v.get("org"),
                version=v.get("version"),
                target=v.get("target"),
            )


def _resource(tx: _Tx, kind: str, parts: tuple[str, ...], v: dict[str, Any]) -> Iterator[Fact]:
    if kind == "result":
        yield tx.fact(
            "result.shared",
            parts[0],
            hospital=v.get("hospital"),
            shared_with=",".join(sorted(str(o) for o in v.get("sharedWith", []))),
            exam_type=v.get("examType"),
            visit_no=v.get("visitNo"),
            record_id=v.get("resultRef"),
        )
    elif kind == "examresult":  # recognition of results (issue 19)
        yield tx.fact("result.recorded", parts[0], hospital=v.get("hospital"),
                      code=v.get("code"), record_id=v.get("recordId"))  # fmt: skip
    elif kind == "resultuse":  # a recognised result taken over: a repeat avoided
        yield tx.fact("result.reused", parts[0], requester=v.get("requester"),
                      hospital=v.get("hospital"), code=v.get("code"),
                      record_id=v.get("recordId"))  # fmt: skip
    elif kind == "duplicateorder":
        yield tx.fact("result.duplicate", parts[0], hospital=v.get("hospital"),
                      code=v.get("code"), reason_code=v.get("reasonCode"),
                      recognised=len(v.get("recognised", [])))  # fmt: skip
    elif kind in ("booking", "resource"):
        yield tx.fact(f"{kind}.changed", parts[0], status=v.get("status"),
                      hospital=v.get("hospital") or v.get("owner"))  # fmt: skip


def _settlement(tx: _Tx, kind: str, parts: tuple[str, ...], v: dict[str, Any]) -> Iterator[Fact]:
    if kind == "settlemententry":
        cents = v.get("amountCents", 0)
        yield tx.fact(
            "settlement.entry",
            str(v.get("referralId") or v.get("consultationId") or parts[-1]),
            agreement_id=v.get("agreementId"),
            period=v.get("period"),
            direction=v.get("direction"),
            payer=v.get("payer"),
            payee=v.get("payee"),
            amount=_cny(cents),
            currency="CNY",
        )
    elif kind == "agreement":
        hospitals = ",".join(sorted(str(h) for h in v.get("hospitals", [])))
        yield tx.fact("agreement.changed", parts[0], status=v.get("status"), hospitals=hospitals)


def _reporting(tx: _Tx, kind: str, parts: tuple[str, ...], v: dict[str, Any]) -> Iterator[Fact]:
    if kind != "report":
        return
    metrics = v.get("metrics", {})
    extra = {f"metric.{k}": m for k, m in metrics.items()} if isinstance(metrics, dict) else {}
    level = v.get("level")
    yield tx.fact(
        "report.submitted" if level == "hospital" else "report.aggregated",
        parts[0],
        period=v.get("period"),
        submitter=v.get("submitter"),
        recipient=v.get("recipient"),
        **extra,
    )


def _visit(tx: _Tx, kind: str, parts: tuple[str, ...], v: dict[str, Any]) -> Iterator[Fact]:
    # A visit key is written on registration and on every transfer; only a registration is
    # signed by the hospital that holds the visit in the same transaction it first appears.
    if kind == "visit" and v.get("registeredAt") == tx.timestamp:
        yield tx.fact("visit.registered", parts[0], hospital=v.get("hospital"))


def _alarm(tx: _Tx, kind: str, parts: tuple[str, ...], v: dict[str, Any]) -> Iterator[Fact]:
    # An alarm key is written on raise, acknowledge and close with its whole history: the
    # latest entry is this transaction's step (who, when, note reference).
    fact_kind = {"OPEN": "alarm.raised", "ACKNOWLEDGED": "alarm.acknowledged",
                 "CLOSED": "alarm.closed"}.get(str(v.get("status", "")))  # fmt: skip
    history = v.get("history")
    step = history[-1] if isinstance(history, list) and history else {}
    if kind != "alarm" or fact_kind is None or not isinstance(step, dict):
        return
    subjects = v.get("subjects")
    yield tx.fact(
        fact_kind,
        parts[0],
        rule_id=v.get("ruleId"),
        rule_version=v.get("ruleVersion"),
        severity=v.get("severity"),
        status=v.get("status"),
        raised_by=v.get("raisedBy"),
        raised_at=v.get("raisedAt"),
        escalate_to=v.get("escalateTo"),
        subjects=",".join(str(s) for s in subjects) if isinstance(subjects, list) else "",
        by=step.get("by"),
        at=step.get("at"),
        note_ref=step.get("noteRef"),
    )


def _consultation(tx: _Tx, kind: str, parts: tuple[str, ...], v: dict[str, Any]) -> Iterator[Fact]:
    if kind == "consultation":
        yield tx.fact(
            "consultation.changed",
            parts[0],
            status=v.get("status"),
            visit_no=v.get("visitNo"),
            requester=v.get("requester"),
            consultant=v.get("consultant"),
            granted=",".join(str(r) for r in v.get("granted", [])),
        )


_READERS: dict[str, _Reader] = {
    "alarm": _alarm,
    "consultation": _consultation,
    "report": _report,
    "referral": _referral,
    "records": _records,
    "resource": _resource,
    "settlement": _settlement,
    "reporting": _reporting,
    "visit": _visit,
}


# The object types the readers turn into facts; others are never decoded.
_OBJECT_TYPES = frozenset(
    {"application", "downwardrule", "referral", "recordversion", "access", "result", "booking",
     "resource", "settlemententry", "agreement", "report", "visit", "alarm",
     "examresult", "resultuse", "duplicateorder", "consultation"}
)  # fmt: skip


# --- helpers -------------------------------------------------------------------------------------


def _split(key: str) -> tuple[str, tuple[str, ...]]:
    parts = key[1:-1].split(_SEPARATOR) if key.endswith(_SEPARATOR) else key[1:].split(_SEPARATOR)
    return parts[0], tuple(parts[1:])


def _json(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _cny(cents: object) -> str:
    """Cents as exact yuan text: 5000 -> "50.00" (never through a float)."""
    if type(cents) is not int:
        return "0.00"
    return str((Decimal(cents) / 100).quantize(Decimal("0.01")))


def _code_name(code: int) -> str:
    try:
        return str(_CODE.Name(code))
    except ValueError:
        return str(code)


@functools.lru_cache(maxsize=1024)
def _creator(serialized: bytes) -> tuple[str, str]:
    """(MSP id, alliance role) of a creator; a block holds few distinct creators, hence the cache.

    The role is the certificate's attribute extension (identity/ca.py writes it, identity/msp.py
    reads it the same way); the block was validated by the peer, so the certificate is trusted.
    """
    identity = identities_pb2.SerializedIdentity()
    try:
        identity.ParseFromString(serialized)
        cert = x509.load_pem_x509_certificate(identity.id_bytes)
    except (DecodeError, ValueError):
        return identity.mspid, ""
    try:
        ext = cert.extensions.get_extension_for_oid(ATTRIBUTE_EXTENSION_OID)
    except x509.ExtensionNotFound:
        return identity.mspid, ""
    value = ext.value
    if not isinstance(value, x509.UnrecognizedExtension):
        return identity.mspid, ""
    try:
        attrs = json.loads(value.value).get("attrs", {})
        role = attrs.get("role") if isinstance(attrs, dict) else None
    except (ValueError, AttributeError):
        return identity.mspid, ""
    return identity.mspid, role if isinstance(role, str) else ""
