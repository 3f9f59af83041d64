"""Settlement entries, monthly caps, statements and the close of a period.

Keys (namespace `settlement`):
- `settlemententry` (agreement, period, referral) — a referral's flat fee (the v1 key, kept);
  (agreement, period, referral, "share") — its declared-amount share;
  (agreement, period, consultation, "consultation") — a consultation fee.
- `settlementpaid` (agreement, period, payer) — what a payer has paid that month, kept only when
  the agreement has a monthly cap (so uncapped agreements keep completions conflict-free).
- `settlementsig` (agreement, period, hospital) — a clerk's signature of the period's statement.
- `settlementclosed` (agreement, period) — written when both hospitals signed the same digest;
  every later entry for the period is refused (and with it the whole calling transaction).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from medalliance.alliance.common import now_iso, scan, to_json
from medalliance.alliance.settlement_terms import monthly_cap
from medalliance.contracts import Context, create_composite_key
from medalliance.errors import ContractError


def entry_key(agreement_id: str, period: str, subject: str, kind: str) -> str:
    parts = (
        [agreement_id, period, subject] if kind == "flat" else [agreement_id, period, subject, kind]
    )
    return create_composite_key("settlemententry", parts)


def _paid_key(agreement_id: str, period: str, payer: str) -> str:
    return create_composite_key("settlementpaid", [agreement_id, period, payer])


def _closed_key(agreement_id: str, period: str) -> str:
    return create_composite_key("settlementclosed", [agreement_id, period])


def _sig_key(agreement_id: str, period: str, hospital_id: str) -> str:
    return create_composite_key("settlementsig", [agreement_id, period, hospital_id])


def current_period(ctx: Context) -> str:
    return now_iso(ctx)[:7]


def write_entry(
    ctx: Context,
    agreement: dict[str, Any],
    kind: str,
    subject: str,
    amount_cents: int,
    fields: dict[str, Any],
) -> dict[str, Any]:
    """Write one entry of the current period (`kind` flat, share or consultation) for
    `subject` (a referral or consultation id), capped by the agreement's monthly cap.

    `fields` holds payer, payee and what the entry is about. Refused with 409 when the period
    is closed; the caller's transaction then fails as a whole.
    """
    agreement_id = agreement["agreementId"]
    period = current_period(ctx)
    if ctx.stub.get_state(_closed_key(agreement_id, period)) is not None:
        raise ContractError(
            f"period {period} of agreement {agreement_id} is closed (both hospitals signed "
            "its statement); no entry can be added to it",
            409,
        )
    entry: dict[str, Any] = {
        "agreementId": agreement_id,
        "period": period,
        **fields,
        "rule": kind,
        "amountCents": amount_cents,
        "at": now_iso(ctx),
        "txId": ctx.tx_id,
    }
    cap = monthly_cap(agreement["terms"])
    if cap is not None:
        key = _paid_key(agreement_id, period, fields["payer"])
        raw = ctx.stub.get_state(key)
        paid = int(raw) if raw else 0
        allowed = min(amount_cents, max(cap - paid, 0))
        if allowed < amount_cents:
            entry.update(rule="capped", cappedRule=kind, uncappedCents=amount_cents)
            entry["amountCents"] = allowed
        ctx.stub.put_state(key, str(paid + allowed).encode())
    ctx.stub.put_state(entry_key(agreement_id, period, subject, kind), to_json(entry))
    return entry


def statement(ctx: Context, agreement: dict[str, Any], period: str) -> dict[str, Any]:
    """Every entry of the period with its transaction and rule, totals per payer, net per
    hospital, a digest over the entries, the signatures and whether the period is closed."""
    agreement_id = agreement["agreementId"]
    # Entries written before terms v2 carry no rule: they are flat fees.
    entries = sorted(
        (
            {"rule": "flat", **json.loads(v)}
            for _, v in scan(ctx, "settlemententry", agreement_id, period)
        ),
        key=lambda e: (e["at"], e["txId"], e["rule"]),
    )
    net = dict.fromkeys(agreement["hospitals"], 0)
    paid = dict.fromkeys(agreement["hospitals"], 0)
    for entry in entries:
        net[entry["payee"]] += entry["amountCents"]
        net[entry["payer"]] -= entry["amountCents"]
        paid[entry["payer"]] += entry["amountCents"]
    signatures = {}
    for party in agreement["hospitals"]:
        raw = ctx.stub.get_state(_sig_key(agreement_id, period, party))
        if raw is not None:
            signatures[party] = json.loads(raw)
    return {
        "agreementId": agreement_id,
        "period": period,
        "entries": entries,
        "paidByPayerCents": paid,
        "netCents": net,
        "digest": digest(agreement_id, period, entries),
        "signatures": signatures,
        "closed": ctx.stub.get_state(_closed_key(agreement_id, period)) is not None,
    }


def digest(agreement_id: str, period: str, entries: list[dict[str, Any]]) -> str:
    """SHA-256 over the canonical JSON of the period's entries: what a clerk signs."""
    body = to_json({"agreementId": agreement_id, "period": period, "entries": entries})
    return hashlib.sha256(body).hexdigest()


def sign(ctx: Context, agreement: dict[str, Any], period: str) -> dict[str, Any]:
    """The caller's hospital signs the period's statement as it stands; the period closes when
    the other hospital has signed the same digest. A signature of an older digest (entries were
    added since) does not count: that hospital signs again."""
    agreement_id = agreement["agreementId"]
    party = ctx.client.msp_id
    current = statement(ctx, agreement, period)
    if current["closed"]:
        raise ContractError(f"period {period} of agreement {agreement_id} is already closed", 409)
    mine = current["signatures"].get(party)
    if mine is not None and mine["digest"] == current["digest"]:
        raise ContractError(
            f"{party} already signed the {period} statement of agreement {agreement_id}", 409
        )
    signature = {"digest": current["digest"], "at": now_iso(ctx), "txId": ctx.tx_id}
    ctx.stub.put_state(_sig_key(agreement_id, period, party), to_json(signature))
    current["signatures"][party] = signature
    other = next(h for h in agreement["hospitals"] if h != party)
    theirs = current["signatures"].get(other)
    if theirs is not None and theirs["digest"] == current["digest"]:
        ctx.stub.put_state(_closed_key(agreement_id, period), current["digest"].encode())
        current["closed"] = True
    return current


def entry_subject(entry: dict[str, Any]) -> str:
    """What an entry settles: its referral or consultation."""
    if "consultationId" in entry:
        return f"consultation {entry['consultationId']}"
    return f"referral {entry['referralId']}"
