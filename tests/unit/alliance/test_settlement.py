"""Benefit-sharing agreements: signed by both hospitals, executed by completed referrals."""

from __future__ import annotations

import json

import pytest
from tests.unit.alliance.harness import Alliance, StandInConsultation
from tests.unit.alliance.test_referral import DISTRICT, PATIENT, share, written_keys

from medalliance.alliance.records import RecordsContract
from medalliance.alliance.referral import ReferralContract
from medalliance.alliance.report import ReportContract
from medalliance.alliance.settlement import SettlementContract
from medalliance.alliance.visit import VisitContract
from medalliance.contracts import create_composite_key

A, T, S2 = "SecondaryAMSP", "TertiaryAMSP", "SecondaryBMSP"
TERMS = {"UP": {"amountCents": 5000, "payer": "target"}, "DOWN": {"amountCents": 2000, "payer": "origin"}}  # fmt: skip


def settlement_alliance() -> Alliance:
    """Every contract a settlement takes part in, and a stand-in consultation contract."""
    return Alliance(
        {
            "visit": VisitContract(),
            "report": ReportContract(),
            "referral": ReferralContract(),
            "records": RecordsContract(),
            "settlement": SettlementContract(),
            "consultation": StandInConsultation(),
        }
    )


@pytest.fixture
def alliance() -> Alliance:
    return settlement_alliance()


def agree(alliance: Alliance, agreement_id: str = "AG-1", terms: object = TERMS) -> None:
    alliance.ok(A, "clerk", "settlement", "ProposeAgreement", agreement_id, T, json.dumps(terms))
    alliance.ok(T, "clerk", "settlement", "AcceptAgreement", agreement_id)


def complete_referral(alliance: Alliance, n: int, *, commit: bool = True):  # type: ignore[no-untyped-def]
    """Register, apply, approve, refer, accept; then complete (committed or only simulated)."""
    visit, app, ref, record = f"V-{n}", f"APP-{n}", f"REF-{n}", f"R-{n}"
    alliance.ok(A, "doctor", "visit", "RegisterVisit", visit, PATIENT, A)
    share(alliance, A, record, [T])
    alliance.ok(A, "doctor", "report", "SubmitApplication", app, visit, T, record)
    alliance.ok(DISTRICT, "reviewer", "report", "ReviewApplication", app, "APPROVED", "", "")
    alliance.ok(A, "doctor", "referral", "Refer", ref, app, visit, A, T, "UP", record)
    alliance.ok(T, "doctor", "referral", "AcceptReferral", ref)
    share(alliance, T, f"FB-{n}", [A])  # the sealed feedback for the origin
    return alliance.call(T, "doctor", "referral", "CompleteReferral", ref, f"FB-{n}", commit=commit)


def test_an_agreement_takes_effect_when_the_partner_accepts(alliance: Alliance) -> None:
    proposed = alliance.ok(A, "clerk", "settlement", "ProposeAgreement", "AG-1", T,
                           json.dumps(TERMS))  # fmt: skip
    assert proposed == {
        "agreementId": "AG-1",
        "hospitals": [A, T],
        "proposedBy": A,
        "terms": TERMS,
        "status": "PROPOSED",
        "proposedAt": "2025-11-28T12:00:01.000Z",
    }
    assert alliance.refused(A, "clerk", "settlement", "AcceptAgreement", "AG-1") == (
        403, "caller of SecondaryAMSP cannot accept agreement AG-1 for TertiaryAMSP"
    )  # fmt: skip
    accepted = alliance.ok(T, "clerk", "settlement", "AcceptAgreement", "AG-1")
    assert accepted["status"] == "ACTIVE"
    assert alliance.refused(T, "clerk", "settlement", "AcceptAgreement", "AG-1") == (
        409, "agreement AG-1 is ACTIVE"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("role", "partner", "terms", "status", "message"),
    [
        pytest.param("doctor", T, TERMS, 403, "role clerk required, caller has doctor",
                     id="a clerk signs agreements"),
        pytest.param("clerk", A, TERMS, 400, "an agreement needs two hospitals; both are SecondaryAMSP",
                     id="two hospitals"),
        pytest.param("clerk", DISTRICT, TERMS, 400,
                     "DistrictHCMSP is a regulator organisation, not a hospital", id="hospitals only"),
        pytest.param("clerk", T, "not json", 400,
                     'terms must be JSON such as {"UP": {"amountCents": 5000, "payer": "target"}}',
                     id="terms are JSON"),
        pytest.param("clerk", T, {"SIDEWAYS": {}}, 400,
                     'terms name UP and/or DOWN, such as {"UP": {"amountCents": 5000, "payer": "target"}}',
                     id="terms name directions"),
        pytest.param("clerk", T, {"UP": {"amountCents": -1, "payer": "target"}}, 400,
                     "the UP term needs amountCents (0 to 1000000000) and payer (origin or target), "
                     'such as {"UP": {"amountCents": 5000, "payer": "target"}}',
                     id="amounts are not negative"),
        pytest.param("clerk", T, {"UP": {"amountCents": 1.5, "payer": "target"}}, 400,
                     "the UP term needs amountCents (0 to 1000000000) and payer (origin or target), "
                     'such as {"UP": {"amountCents": 5000, "payer": "target"}}',
                     id="amounts are whole cents"),
        pytest.param("clerk", T, {"UP": {"amountCents": 1, "payer": "nobody"}}, 400,
                     "the UP term needs amountCents (0 to 1000000000) and payer (origin or target), "
                     'such as {"UP": {"amountCents": 5000, "payer": "target"}}',
                     id="the payer is a party"),
    ],
)  # fmt: skip
def test_proposal_refusals(
    alliance: Alliance, role: str, partner: str, terms: object, status: int, message: str
) -> None:
    text = terms if isinstance(terms, str) else json.dumps(terms)
    assert alliance.refused(A, role, "settlement", "ProposeAgreement", "AG-1", partner, text) == (
        status,
        message,
    )


def test_one_agreement_per_pair_until_terminated(alliance: Alliance) -> None:
    agree(alliance)
    assert alliance.refused(T, "clerk", "settlement", "ProposeAgreement", "AG-2", A,
                            json.dumps(TERMS)) == (
        409, "TertiaryAMSP and SecondaryAMSP already have agreement AG-1"
    )  # fmt: skip
    assert alliance.refused(S2, "clerk", "settlement", "TerminateAgreement", "AG-1") == (
        403, "SecondaryBMSP is not a party to agreement AG-1"
    )  # fmt: skip
    assert (
        alliance.ok(T, "clerk", "settlement", "TerminateAgreement", "AG-1")["status"]
        == "TERMINATED"
    )
    agree(alliance, "AG-2")


def test_settlement_runs_only_inside_a_completed_referral(alliance: Alliance) -> None:
    agree(alliance)
    assert alliance.refused(A, "clerk", "settlement", "Execute", "REF-1", A, T, "UP", "") == (
        403, "settlement executes only when a referral completes"
    )  # fmt: skip


def test_a_completed_referral_is_settled_under_the_agreement(alliance: Alliance) -> None:
    agree(alliance)
    done = json.loads(complete_referral(alliance, 1).payload)
    assert done["settlement"] == {
        "executed": True,
        "agreementId": "AG-1",
        "referralId": "REF-1",
        "period": "2025-11",
        "direction": "UP",
        "referralType": "outpatient",
        "rule": "flat",
        "payer": T,
        "payee": A,
        "amountCents": 5000,
        "at": done["history"][-1]["at"],
        "txId": done["history"][-1]["txId"],
    }
    complete_referral(alliance, 2)
    statement = alliance.ok(DISTRICT, "auditor", "settlement", "Statement", "AG-1", "2025-11")
    assert [e["referralId"] for e in statement["entries"]] == ["REF-1", "REF-2"]
    assert statement["netCents"] == {A: 10000, T: -10000}
    assert alliance.ok(A, "clerk", "settlement", "Balance", A, "2025-11") == {
        "hospital": A, "period": "2025-11", "receivableCents": 10000, "payableCents": 0,
        "netCents": 10000,
    }  # fmt: skip
    assert alliance.ok(T, "clerk", "settlement", "Balance", T, "2025-12")["netCents"] == 0


def test_settlements_are_for_the_parties_and_their_regulators(alliance: Alliance) -> None:
    agree(alliance)
    for caller in (S2, "OtherHCMSP"):
        assert alliance.refused(caller, "auditor", "settlement", "Statement", "AG-1", "2025-11") == (
            403, f"{caller} is neither a party to agreement AG-1 nor their regulator"
        )  # fmt: skip
    assert alliance.refused(A, "clerk", "settlement", "Balance", A, "2025/11") == (
        400, "period must be YYYY-MM (e.g. 2026-11), not '2025/11'"
    )  # fmt: skip


def test_completions_between_the_same_hospitals_never_conflict(alliance: Alliance) -> None:
    agree(alliance)
    first = complete_referral(alliance, 1, commit=False)
    second = complete_referral(alliance, 2, commit=False)
    assert first.status == second.status == 200
    assert not written_keys(first) & written_keys(second)


V2 = {
    "version": 2,
    "fees": {"UP": {"outpatient": {"amountCents": 5000, "payer": "target"},
                    "inpatient": {"amountCents": 30000, "payer": "target"}}},
    "shares": {"UP": {"basisPoints": 250, "payer": "target"}},
    "consultation": {"amountCents": 12000, "payer": "requester"},
}  # fmt: skip


def test_a_finished_consultation_is_charged_by_the_consultation_contract(
    alliance: Alliance,
) -> None:
    agree(alliance, terms=V2)
    charged = alliance.ok(A, "doctor", "consultation", "Finish", "C-1", A, T)
    assert charged == {
        "executed": True,
        "agreementId": "AG-1",
        "period": "2025-11",
        "consultationId": "C-1",
        "payer": A,
        "payee": T,
        "rule": "consultation",
        "amountCents": 12000,
        "at": "2025-11-28T12:00:03.000Z",
        "txId": "tx00003",
    }
    statement = alliance.ok(T, "clerk", "settlement", "Statement", "AG-1", "2025-11")
    assert statement["entries"] == [{k: v for k, v in charged.items() if k != "executed"}]
    assert statement["netCents"] == {A: -12000, T: 12000}
    # Replayed by the consultation contract: refused, nothing written twice.
    assert alliance.refused(A, "doctor", "consultation", "Finish", "C-1", A, T) == (
        409, "consultation C-1 is already settled"
    )  # fmt: skip


def test_a_consultation_fee_cannot_be_forged_by_calling_settlement_directly(
    alliance: Alliance,
) -> None:
    agree(alliance, terms=V2)
    for msp, role in ((T, "clerk"), (A, "doctor"), (DISTRICT, "auditor")):
        assert alliance.refused(msp, role, "settlement", "ExecuteConsultation", "C-1", A, T) == (
            403, "settlement charges a consultation only when one finishes"
        )  # fmt: skip


def test_a_consultation_without_a_fee_term_is_not_charged(alliance: Alliance) -> None:
    assert alliance.ok(A, "doctor", "consultation", "Finish", "C-1", A, T) == {
        "executed": False, "reason": "no active agreement"
    }  # fmt: skip
    agree(alliance)  # v1 terms: referral fees only
    assert alliance.ok(A, "doctor", "consultation", "Finish", "C-1", A, T) == {
        "executed": False, "reason": "agreement has no consultation term"
    }  # fmt: skip


def test_an_entry_written_before_terms_v2_is_read_as_a_flat_fee(alliance: Alliance) -> None:
    agree(alliance)
    old = {"agreementId": "AG-1", "referralId": "REF-0", "period": "2025-11", "direction": "UP",
           "payer": T, "payee": A, "amountCents": 5000, "at": "2025-11-01T00:00:00.000Z",
           "txId": "tx-old"}  # fmt: skip
    key = create_composite_key("settlemententry", ["AG-1", "2025-11", "REF-0"])
    alliance.state.put("settlement", key, json.dumps(old).encode())
    statement = alliance.ok(A, "clerk", "settlement", "Statement", "AG-1", "2025-11")
    assert statement["entries"] == [{**old, "rule": "flat"}]
    assert statement["netCents"] == {A: 5000, T: -5000}
