"""Benefit sharing between two hospitals (利益分配), executed when a referral completes.

One hospital's clerk proposes an agreement to a partner hospital; it takes effect when the
partner's clerk accepts it, so both hospitals have signed it on the chain. Its terms say, per
referral direction, how much is paid and by whom (the referral's origin or target):
`{"UP": {"amountCents": 5000, "payer": "target"}, "DOWN": {"amountCents": 2000, "payer": "origin"}}`.
A completed referral between the two (`Execute`, called by the referral contract in the same
transaction) writes one settlement entry; balances and statements are sums over entries.

State: one key per agreement, one per hospital pair (their single active agreement), one index
key per (hospital, agreement), one per (agreement, period, referral) entry — so completions of
different referrals never conflict, even between the same two hospitals.
"""

from __future__ import annotations

import json
from typing import Any

from medalliance.alliance.common import (
    check_id,
    check_period,
    hospital,
    load,
    now_iso,
    protect,
    require_may_see,
    require_org,
    require_role,
    scan,
    to_json,
)
from medalliance.contracts import Context, Contract, create_composite_key, transaction
from medalliance.errors import ContractError

ROLES = ("clerk",)
PAYERS = ("origin", "target")
MAX_AMOUNT_CENTS = 10**9


def agreement_key(agreement_id: str) -> str:
    return create_composite_key("agreement", [agreement_id])


def _pair_key(a: str, b: str) -> str:
    return create_composite_key("agreementpair", sorted((a, b)))


def _of_key(hospital_id: str, agreement_id: str) -> str:
    return create_composite_key("agreementof", [hospital_id, agreement_id])


def _entry_key(agreement_id: str, period: str, referral_id: str) -> str:
    return create_composite_key("settlemententry", [agreement_id, period, referral_id])


class SettlementContract(Contract):
    name = "settlement"

    @transaction
    def ProposeAgreement(self, ctx: Context, agreement_id: str, partner: str, terms: str) -> str:
        check_id(agreement_id, "agreement id")
        require_role(ctx, *ROLES)
        proposer = ctx.client.msp_id
        hospital(ctx, proposer)
        hospital(ctx, partner)
        if partner == proposer:
            raise ContractError(f"an agreement needs two hospitals; both are {partner}", 400)
        parsed = _terms(terms)
        if ctx.stub.get_state(agreement_key(agreement_id)) is not None:
            raise ContractError(f"agreement {agreement_id} already exists", 409)
        current = ctx.stub.get_state(_pair_key(proposer, partner))
        if current is not None:
            raise ContractError(
                f"{proposer} and {partner} already have agreement {current.decode()}", 409
            )
        agreement = {
            "agreementId": agreement_id,
            "hospitals": sorted((proposer, partner)),
            "proposedBy": proposer,
            "terms": parsed,
            "status": "PROPOSED",
            "proposedAt": now_iso(ctx),
        }
        ctx.stub.put_state(agreement_key(agreement_id), to_json(agreement))
        protect(ctx, agreement_key(agreement_id), proposer, partner)
        # The pair key is taken at proposal, so two proposals for one pair conflict.
        ctx.stub.put_state(_pair_key(proposer, partner), agreement_id.encode())
        for party in (proposer, partner):
            ctx.stub.put_state(_of_key(party, agreement_id), b"1")
        ctx.stub.set_event("AgreementProposed", _event(agreement))
        return to_json(agreement).decode()

    @transaction
    def AcceptAgreement(self, ctx: Context, agreement_id: str) -> str:
        require_role(ctx, *ROLES)
        agreement = _load(ctx, agreement_id)
        partner = next(h for h in agreement["hospitals"] if h != agreement["proposedBy"])
        require_org(ctx, partner, f"accept agreement {agreement_id}")
        if agreement["status"] != "PROPOSED":
            raise ContractError(f"agreement {agreement_id} is {agreement['status']}", 409)
        agreement.update(status="ACTIVE", acceptedAt=now_iso(ctx))
        ctx.stub.put_state(agreement_key(agreement_id), to_json(agreement))
        ctx.stub.set_event("AgreementAccepted", _event(agreement))
        return to_json(agreement).decode()

    @transaction
    def TerminateAgreement(self, ctx: Context, agreement_id: str) -> str:
        """Either hospital ends it; entries already written stay, the pair may agree anew."""
        require_role(ctx, *ROLES)
        agreement = _load(ctx, agreement_id)
        if ctx.client.msp_id not in agreement["hospitals"]:
            raise ContractError(
                f"{ctx.client.msp_id} is not a party to agreement {agreement_id}", 403
            )
        if agreement["status"] == "TERMINATED":
            raise ContractError(f"agreement {agreement_id} is TERMINATED", 409)
        agreement.update(status="TERMINATED", terminatedAt=now_iso(ctx))
        ctx.stub.put_state(agreement_key(agreement_id), to_json(agreement))
        ctx.stub.del_state(_pair_key(*agreement["hospitals"]))
        ctx.stub.set_event("AgreementTerminated", _event(agreement))
        return to_json(agreement).decode()

    @transaction
    def Execute(
        self, ctx: Context, referral_id: str, from_hospital: str, to_hospital: str, direction: str
    ) -> dict[str, Any]:
        """Settle a completed referral under the pair's active agreement (referral contract
        only); says so when there is none."""
        if ctx.called_by != "referral":
            raise ContractError("settlement executes only when a referral completes", 403)
        agreement_id = ctx.stub.get_state(_pair_key(from_hospital, to_hospital))
        agreement = _load(ctx, agreement_id.decode()) if agreement_id else None
        if agreement is None or agreement["status"] != "ACTIVE":
            return {"executed": False, "reason": "no active agreement"}
        term = agreement["terms"].get(direction)
        if term is None:
            return {"executed": False, "reason": f"agreement has no {direction} term"}
        payer, payee = (
            (from_hospital, to_hospital)
            if term["payer"] == "origin"
            else (to_hospital, from_hospital)
        )
        period = now_iso(ctx)[:7]
        entry = {
            "agreementId": agreement["agreementId"],
            "referralId": referral_id,
            "period": period,
            "direction": direction,
            "payer": payer,
            "payee": payee,
            "amountCents": term["amountCents"],
            "at": now_iso(ctx),
            "txId": ctx.tx_id,
        }
        ctx.stub.put_state(
            _entry_key(agreement["agreementId"], period, referral_id), to_json(entry)
        )
        return {"executed": True, **entry}

    @transaction(evaluate=True)
    def GetAgreement(self, ctx: Context, agreement_id: str) -> str:
        agreement = _load(ctx, agreement_id)
        require_may_see(ctx, f"agreement {agreement_id}", *agreement["hospitals"])
        return to_json(agreement).decode()

    @transaction(evaluate=True)
    def Statement(self, ctx: Context, agreement_id: str, period: str) -> dict[str, Any]:
        """An agreement's entries of one period (YYYY-MM) and what each hospital owes net."""
        check_period(period)
        agreement = _load(ctx, agreement_id)
        require_may_see(ctx, f"agreement {agreement_id}", *agreement["hospitals"])
        entries = [json.loads(v) for _, v in scan(ctx, "settlemententry", agreement_id, period)]
        net = dict.fromkeys(agreement["hospitals"], 0)
        for entry in entries:
            net[entry["payee"]] += entry["amountCents"]
            net[entry["payer"]] -= entry["amountCents"]
        return {
            "agreementId": agreement_id,
            "period": period,
            "entries": sorted(entries, key=lambda e: (e["at"], e["referralId"])),
            "netCents": net,
        }

    @transaction(evaluate=True)
    def Balance(self, ctx: Context, hospital_id: str, period: str) -> dict[str, Any]:
        """A hospital's receivable, payable and net over all its agreements in one period."""
        check_period(period)
        hospital(ctx, hospital_id)
        require_may_see(ctx, f"the settlements of {hospital_id}", hospital_id)
        receivable = payable = 0
        for agreement_id, _ in scan(ctx, "agreementof", hospital_id):
            for _, raw in scan(ctx, "settlemententry", agreement_id, period):
                entry = json.loads(raw)
                if entry["payee"] == hospital_id:
                    receivable += entry["amountCents"]
                elif entry["payer"] == hospital_id:
                    payable += entry["amountCents"]
        return {
            "hospital": hospital_id,
            "period": period,
            "receivableCents": receivable,
            "payableCents": payable,
            "netCents": receivable - payable,
        }


def _terms(text: str) -> dict[str, Any]:
    example = '{"UP": {"amountCents": 5000, "payer": "target"}}'
    try:
        parsed = json.loads(text)
    except ValueError:
        raise ContractError(f"terms must be JSON such as {example}", 400) from None
    if not isinstance(parsed, dict) or not parsed or not set(parsed) <= {"UP", "DOWN"}:
        raise ContractError(f"terms name UP and/or DOWN, such as {example}", 400)
    for direction, term in parsed.items():
        amount = term.get("amountCents") if isinstance(term, dict) else None
        if (
            not isinstance(term, dict)
            or set(term) != {"amountCents", "payer"}
            or term["payer"] not in PAYERS
            or type(amount) is not int
            or not 0 <= amount <= MAX_AMOUNT_CENTS
        ):
            raise ContractError(
                f"the {direction} term needs amountCents (0 to {MAX_AMOUNT_CENTS}) and payer "
                f"(origin or target), such as {example}",
                400,
            )
    return {d: {"amountCents": t["amountCents"], "payer": t["payer"]} for d, t in parsed.items()}


def _load(ctx: Context, agreement_id: str) -> dict[str, Any]:
    check_id(agreement_id, "agreement id")
    return load(ctx, agreement_key(agreement_id), f"agreement {agreement_id}")


def _event(agreement: dict[str, Any]) -> bytes:
    return to_json(
        {
            "agreementId": agreement["agreementId"],
            "hospitals": agreement["hospitals"],
            "status": agreement["status"],
        }
    )
