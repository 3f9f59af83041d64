"""Benefit sharing between two hospitals (利益分配), executed when a referral completes.

One hospital's clerk proposes an agreement to a partner hospital; it takes effect when the
partner's clerk accepts it, so both hospitals have signed it on the chain. Its terms
(`alliance/settlement_terms.py`: flat v1, or v2 with fees per direction and referral type, shares
of declared amounts, a monthly cap and a consultation fee) say what is paid and by whom. A
completed referral between the two (`Execute`, called by the referral contract in the same
transaction) writes its fee entry; a finished consultation (`ExecuteConsultation`, called by the
consultation contract) its fee; the paying clerk's `DeclareAmount` a share. Both clerks'
`SignStatement` closes a month (`alliance/settlement_ledger.py`). Statements and balances are sums
over entries.

State: one key per agreement, one per hospital pair (their single active agreement), one index
key per (hospital, agreement), one per entry — so completions of different referrals never
conflict, even between the same two hospitals (unless the agreement has a monthly cap: see
settlement_ledger.py).
"""

from __future__ import annotations

import json
import re
from typing import Any

from medalliance.alliance.common import (
    call,
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
from medalliance.alliance.settlement_ledger import current_period, sign, statement, write_entry
from medalliance.alliance.settlement_terms import (
    MAX_AMOUNT_CENTS,
    consultation_term,
    parse_terms,
    referral_fee,
    share_of,
    share_term,
)
from medalliance.contracts import Context, Contract, create_composite_key, transaction
from medalliance.errors import ContractError

ROLES = ("clerk",)
_DIGITS = re.compile(r"[0-9]{1,12}")


def agreement_key(agreement_id: str) -> str:
    return create_composite_key("agreement", [agreement_id])


def _pair_key(a: str, b: str) -> str:
    return create_composite_key("agreementpair", sorted((a, b)))


def _of_key(hospital_id: str, agreement_id: str) -> str:
    return create_composite_key("agreementof", [hospital_id, agreement_id])


def _done_key(agreement_id: str, kind: str, subject: str) -> str:
    """Marks a referral's share or a consultation as settled, whatever the month."""
    return create_composite_key("settlementdone", [agreement_id, kind, subject])


def _active_for(ctx: Context, a: str, b: str) -> dict[str, Any] | None:
    agreement_id = ctx.stub.get_state(_pair_key(a, b))
    agreement = _load(ctx, agreement_id.decode()) if agreement_id else None
    return agreement if agreement is not None and agreement["status"] == "ACTIVE" else None


def _sides(first_pays: bool, first: str, second: str) -> tuple[str, str]:
    """(payer, payee)."""
    return (first, second) if first_pays else (second, first)


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
        parsed = parse_terms(terms)
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
        agreement = _party_to(ctx, agreement_id)
        if agreement["status"] == "TERMINATED":
            raise ContractError(f"agreement {agreement_id} is TERMINATED", 409)
        agreement.update(status="TERMINATED", terminatedAt=now_iso(ctx))
        ctx.stub.put_state(agreement_key(agreement_id), to_json(agreement))
        ctx.stub.del_state(_pair_key(*agreement["hospitals"]))
        ctx.stub.set_event("AgreementTerminated", _event(agreement))
        return to_json(agreement).decode()

    @transaction
    def Execute(
        self,
        ctx: Context,
        referral_id: str,
        from_hospital: str,
        to_hospital: str,
        direction: str,
        referral_type: str,
    ) -> dict[str, Any]:
        """Settle a completed referral under the pair's active agreement (referral contract
        only); says so when there is none. `referral_type` is outpatient (the default when
        empty), examination or inpatient; v1 terms ignore it."""
        if ctx.called_by != "referral":
            raise ContractError("settlement executes only when a referral completes", 403)
        referral_type = referral_type or "outpatient"
        agreement = _active_for(ctx, from_hospital, to_hospital)
        if agreement is None:
            return {"executed": False, "reason": "no active agreement"}
        term = referral_fee(agreement["terms"], direction, referral_type)
        if term is None:
            # The agreement is named all the same: a share declared later must be under it.
            return {
                "executed": False,
                "agreementId": agreement["agreementId"],
                "reason": f"agreement has no {direction} {referral_type} term",
            }
        payer, payee = _sides(term["payer"] == "origin", from_hospital, to_hospital)
        fields = {"referralId": referral_id, "direction": direction, "referralType": referral_type,
                  "payer": payer, "payee": payee}  # fmt: skip
        entry = write_entry(ctx, agreement, "flat", referral_id, term["amountCents"], fields)
        return {"executed": True, **entry}

    @transaction
    def ExecuteConsultation(
        self, ctx: Context, consultation_id: str, requester_msp: str, consultant_msp: str
    ) -> dict[str, Any]:
        """Charge a finished consultation's fee under the pair's active agreement (consultation
        contract only, in its transaction); says so when there is no fee. Once per consultation."""
        if ctx.called_by != "consultation":
            raise ContractError("settlement charges a consultation only when one finishes", 403)
        check_id(consultation_id, "consultation id")
        agreement = _active_for(ctx, requester_msp, consultant_msp)
        if agreement is None:
            return {"executed": False, "reason": "no active agreement"}
        term = consultation_term(agreement["terms"])
        if term is None:
            return {"executed": False, "reason": "agreement has no consultation term"}
        marker = _done_key(agreement["agreementId"], "consultation", consultation_id)
        if ctx.stub.get_state(marker) is not None:
            raise ContractError(f"consultation {consultation_id} is already settled", 409)
        ctx.stub.put_state(marker, b"1")
        payer, payee = _sides(term["payer"] == "requester", requester_msp, consultant_msp)
        fields = {"consultationId": consultation_id, "payer": payer, "payee": payee}
        entry = write_entry(
            ctx, agreement, "consultation", consultation_id, term["amountCents"], fields
        )
        return {"executed": True, **entry}

    @transaction
    def DeclareAmount(
        self, ctx: Context, agreement_id: str, referral_id: str, amount_cents: str
    ) -> dict[str, Any]:
        """The paying hospital's clerk declares the amount of a completed referral between the
        parties (e.g. the treatment's settled cost, in cents); the agreement's share of it for
        the referral's direction becomes an entry. Once per referral."""
        require_role(ctx, *ROLES)
        amount = _amount(amount_cents)
        agreement = _party_to(ctx, agreement_id)
        if agreement["status"] != "ACTIVE":
            raise ContractError(f"agreement {agreement_id} is {agreement['status']}", 409)
        referral = call(ctx, "referral", "GetReferral", referral_id)
        pair = sorted((referral["fromHospital"], referral["toHospital"]))
        if pair != agreement["hospitals"]:
            raise ContractError(
                f"referral {referral_id} is not between the parties of agreement {agreement_id}",
                403,
            )
        if referral["status"] != "COMPLETED":
            raise ContractError(f"referral {referral_id} is {referral['status']}", 409)
        # Only under the agreement the referral completed under: else a pair could terminate,
        # agree anew and take a second share of the same referral.
        if (referral.get("settlement") or {}).get("agreementId") != agreement_id:
            raise ContractError(
                f"referral {referral_id} was not completed under agreement {agreement_id}", 409
            )
        term = share_term(agreement["terms"], referral["direction"])
        if term is None:
            raise ContractError(
                f"agreement {agreement_id} has no {referral['direction']} share", 409
            )
        payer, payee = _sides(
            term["payer"] == "origin", referral["fromHospital"], referral["toHospital"]
        )
        require_org(ctx, payer, f"declare the amount of referral {referral_id}")
        marker = _done_key(agreement_id, "share", referral_id)
        if ctx.stub.get_state(marker) is not None:
            raise ContractError(f"the amount of referral {referral_id} is already declared", 409)
        ctx.stub.put_state(marker, b"1")
        fields = {
            "referralId": referral_id,
            "direction": referral["direction"],
            "referralType": referral.get("careType", "outpatient"),
            "payer": payer,
            "payee": payee,
            "declaredCents": amount,
            "basisPoints": term["basisPoints"],
        }
        share = share_of(amount, term["basisPoints"])
        entry = write_entry(ctx, agreement, "share", referral_id, share, fields)
        # Ids only: the declared amount is a patient's treatment cost.
        event = {k: entry[k] for k in ("agreementId", "referralId", "period", "txId")}
        ctx.stub.set_event("SettlementAmountDeclared", to_json(event))
        return entry

    @transaction
    def SignStatement(self, ctx: Context, agreement_id: str, period: str) -> dict[str, Any]:
        """A party's clerk signs the period's statement (its digest); when both hospitals have
        signed the same digest the period is closed and refuses further entries."""
        require_role(ctx, *ROLES)
        check_period(period)
        agreement = _party_to(ctx, agreement_id)
        if period > current_period(ctx):
            raise ContractError(f"period {period} has not begun; nothing to sign", 400)
        signed = sign(ctx, agreement, period)
        event = {k: signed[k] for k in ("agreementId", "period", "digest", "closed")}
        ctx.stub.set_event("StatementSigned", to_json({**event, "by": ctx.client.msp_id}))
        return signed

    @transaction(evaluate=True)
    def GetAgreement(self, ctx: Context, agreement_id: str) -> str:
        agreement = _load(ctx, agreement_id)
        require_may_see(ctx, f"agreement {agreement_id}", *agreement["hospitals"])
        return to_json(agreement).decode()

    @transaction(evaluate=True)
    def Statement(self, ctx: Context, agreement_id: str, period: str) -> dict[str, Any]:
        """An agreement's entries of one period (YYYY-MM) with their transactions and rules,
        totals per payer, what each hospital is owed net, its digest and signatures."""
        check_period(period)
        agreement = _load(ctx, agreement_id)
        require_may_see(ctx, f"agreement {agreement_id}", *agreement["hospitals"])
        return statement(ctx, agreement, period)

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


def _party_to(ctx: Context, agreement_id: str) -> dict[str, Any]:
    """The agreement, if the caller's hospital is one of its two parties."""
    agreement = _load(ctx, agreement_id)
    if ctx.client.msp_id not in agreement["hospitals"]:
        raise ContractError(f"{ctx.client.msp_id} is not a party to agreement {agreement_id}", 403)
    return agreement


def _amount(text: str) -> int:
    """A declared amount: whole cents as digits, 1 to MAX_AMOUNT_CENTS (never quoted back:
    it is a patient's treatment cost)."""
    if not _DIGITS.fullmatch(text) or not 0 < int(text) <= MAX_AMOUNT_CENTS:
        raise ContractError(
            f"amountCents must be whole cents (digits only) from 1 to {MAX_AMOUNT_CENTS}", 400
        )
    return int(text)


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
