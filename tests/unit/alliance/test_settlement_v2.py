"""Benefit-sharing terms v2: fees per direction and type, shares of declared amounts, monthly
caps, consultation fees, and the close of a period by both hospitals' signatures."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.unit.alliance.harness import Alliance
from tests.unit.alliance.test_referral import DISTRICT, written_keys
from tests.unit.alliance.test_settlement import S2, V2, A, T, agree, complete_referral
from tests.unit.alliance.test_settlement import settlement_alliance as make

from medalliance.alliance.settlement import SettlementContract
from medalliance.alliance.settlement_terms import parse_terms, referral_fee, share_of
from medalliance.contracts import Context, Contract, transaction
from medalliance.errors import ContractError

PERIOD = "2025-11"


@pytest.fixture
def alliance() -> Alliance:
    return make()


def declare(alliance: Alliance, n: int, cents: str, who: str = T) -> Any:
    return alliance.ok(who, "clerk", "settlement", "DeclareAmount", "AG-1", f"REF-{n}", cents)


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ({"version": 3, "fees": {}}, "terms.version must be 2 (or absent for flat v1 terms)"),
        ({"version": 2}, "terms need at least one of fees, shares, consultation"),
        ({"version": 2, "fees": {"UP": {}}, "bonus": 1},
         "terms has unknown field 'bonus'; allowed: version, fees, shares, monthlyCapCents, "
         "consultation"),
        ({"version": 2, "fees": {"UP": {"surgery": {"amountCents": 1, "payer": "target"}}}},
         "terms.fees.UP has unknown field 'surgery'; allowed: outpatient, examination, inpatient"),
        ({"version": 2, "fees": {"UP": {"inpatient": {"amountCents": -1, "payer": "target"}}}},
         "terms.fees.UP.inpatient.amountCents must be whole cents from 0 to 1000000000"),
        ({"version": 2, "fees": {"UP": {"inpatient": {"amountCents": 10**10, "payer": "target"}}}},
         "terms.fees.UP.inpatient.amountCents must be whole cents from 0 to 1000000000"),
        ({"version": 2, "fees": {"UP": {"inpatient": {"amountCents": True, "payer": "target"}}}},
         "terms.fees.UP.inpatient.amountCents must be whole cents from 0 to 1000000000"),
        ({"version": 2, "shares": {"DOWN": {"basisPoints": 10001, "payer": "origin"}}},
         "terms.shares.DOWN.basisPoints must be a whole number from 1 to 10000"),
        ({"version": 2, "shares": {"DOWN": {"basisPoints": 100, "payer": "requester"}}},
         "terms.shares.DOWN.payer must be one of origin, target"),
        ({"version": 2, "consultation": {"amountCents": 1, "payer": "target"}},
         "terms.consultation.payer must be one of requester, consultant"),
        ({"version": 2, "consultation": {"amountCents": 1, "payer": "requester"},
          "monthlyCapCents": "lots"},
         "terms.monthlyCapCents must be whole cents from 0 to 1000000000"),
    ],
)  # fmt: skip
def test_v2_terms_are_validated_strictly(terms: object, message: str) -> None:
    with pytest.raises(ContractError) as refused:
        parse_terms(json.dumps(terms))
    assert (refused.value.status_code, str(refused.value)) == (400, message)


def test_fees_depend_on_direction_and_type_and_v1_ignores_the_type() -> None:
    v2 = parse_terms(json.dumps(V2))
    assert referral_fee(v2, "UP", "inpatient") == {"amountCents": 30000, "payer": "target"}
    assert referral_fee(v2, "UP", "examination") is None
    assert referral_fee(v2, "DOWN", "outpatient") is None
    v1 = parse_terms('{"UP": {"amountCents": 5000, "payer": "target"}}')
    assert referral_fee(v1, "UP", "inpatient") == {"amountCents": 5000, "payer": "target"}


def test_shares_round_down_to_the_cent() -> None:
    assert share_of(1_234_567, 250) == 30_864  # 30864.175
    assert share_of(39, 250) == 0  # 0.975 of a cent
    assert share_of(10**9, 10_000) == 10**9


def test_a_referral_type_without_a_fee_is_not_settled(alliance: Alliance) -> None:
    agree(alliance, terms={"version": 2, "fees": {"UP": {"inpatient": {"amountCents": 1, "payer": "target"}}}})  # fmt: skip
    done = json.loads(complete_referral(alliance, 1).payload)
    assert done["settlement"] == {
        "executed": False, "agreementId": "AG-1", "reason": "agreement has no UP outpatient term"
    }  # fmt: skip


def test_the_paying_side_declares_an_amount_and_the_share_is_an_entry(alliance: Alliance) -> None:
    agree(alliance, terms=V2)
    complete_referral(alliance, 1)
    entry = declare(alliance, 1, "1234567")
    assert entry == {
        "agreementId": "AG-1", "period": PERIOD, "referralId": "REF-1", "direction": "UP",
        "referralType": "outpatient", "payer": T, "payee": A, "declaredCents": 1234567,
        "basisPoints": 250, "rule": "share", "amountCents": 30864, "at": entry["at"],
        "txId": entry["txId"],
    }  # fmt: skip
    statement = alliance.ok(A, "clerk", "settlement", "Statement", "AG-1", PERIOD)
    assert [(e["rule"], e["amountCents"]) for e in statement["entries"]] == [
        ("flat", 5000), ("share", 30864)
    ]  # fmt: skip
    assert statement["paidByPayerCents"] == {A: 0, T: 35864}
    assert statement["netCents"] == {A: 35864, T: -35864}
    assert {e["txId"] for e in statement["entries"]} == {
        alliance.ok(T, "doctor", "referral", "GetReferral", "REF-1")["history"][-1]["txId"],
        entry["txId"],
    }


def test_declaring_is_refused_to_everyone_else_and_twice(alliance: Alliance) -> None:
    agree(alliance, terms=V2)
    refused = lambda who, role, ref, cents: alliance.refused(  # noqa: E731
        who, role, "settlement", "DeclareAmount", "AG-1", ref, cents
    )
    complete_referral(alliance, 1)
    assert refused(A, "clerk", "REF-1", "100") == (
        403, "caller of SecondaryAMSP cannot declare the amount of referral REF-1 for TertiaryAMSP"
    )  # fmt: skip
    assert refused(S2, "clerk", "REF-1", "100") == (
        403, "SecondaryBMSP is not a party to agreement AG-1"
    )  # fmt: skip
    assert refused(T, "doctor", "REF-1", "100") == (403, "role clerk required, caller has doctor")
    bad_amount = (400, "amountCents must be whole cents (digits only) from 1 to 1000000000")
    for cents in ("-5", "0", "1000000001", "99999999999999", "1e5", "12.5", " 7", ""):
        assert refused(T, "clerk", "REF-1", cents) == bad_amount, cents
    declare(alliance, 1, "100")
    assert refused(T, "clerk", "REF-1", "100") == (
        409, "the amount of referral REF-1 is already declared"
    )  # fmt: skip


def test_only_completed_referrals_of_the_pair_can_be_declared(alliance: Alliance) -> None:
    agree(alliance, terms=V2)
    complete_referral(alliance, 1, commit=False)  # REF-1 stays ACCEPTED
    assert alliance.refused(T, "clerk", "settlement", "DeclareAmount", "AG-1", "REF-1", "9") == (
        409, "referral REF-1 is ACCEPTED"
    )  # fmt: skip
    # Another pair's agreement (SecondaryB and TertiaryA) cannot take REF-1's share.
    alliance.ok(S2, "clerk", "settlement", "ProposeAgreement", "AG-2", T, json.dumps(V2))
    alliance.ok(T, "clerk", "settlement", "AcceptAgreement", "AG-2")
    assert alliance.refused(T, "clerk", "settlement", "DeclareAmount", "AG-2", "REF-1", "9") == (
        403, "referral REF-1 is not between the parties of agreement AG-2"
    )  # fmt: skip


def test_a_monthly_cap_caps_entries_and_says_so(alliance: Alliance) -> None:
    agree(alliance, terms={**V2, "monthlyCapCents": 8000})
    flat = [json.loads(complete_referral(alliance, n).payload)["settlement"] for n in (1, 2, 3)]
    assert [(e["rule"], e["amountCents"]) for e in flat] == [
        ("flat", 5000), ("capped", 3000), ("capped", 0)
    ]  # fmt: skip
    assert (flat[1]["cappedRule"], flat[1]["uncappedCents"]) == ("flat", 5000)
    share = declare(alliance, 1, "1000000000")  # the largest amount: 2.5 % is 25 000 000
    assert (share["rule"], share["amountCents"], share["uncappedCents"]) == (
        "capped",
        0,
        25_000_000,
    )
    # The cap is per payer: the other hospital pays its consultation fee up to its own cap.
    charged = alliance.ok(A, "doctor", "consultation", "Finish", "C-1", A, T)
    assert (charged["rule"], charged["amountCents"], charged["uncappedCents"]) == (
        "capped", 8000, 12000
    )  # fmt: skip
    statement = alliance.ok(T, "clerk", "settlement", "Statement", "AG-1", PERIOD)
    assert statement["paidByPayerCents"] == {A: 8000, T: 8000}
    assert statement["netCents"] == {A: 0, T: 0}


def test_both_clerks_sign_to_close_a_period_which_then_refuses_entries(alliance: Alliance) -> None:
    agree(alliance, terms=V2)
    complete_referral(alliance, 1)
    sign = lambda who: alliance.ok(who, "clerk", "settlement", "SignStatement", "AG-1", PERIOD)  # noqa: E731
    first = sign(A)
    assert (first["closed"], list(first["signatures"])) == (False, [A])
    # A new entry changes the digest: A's signature no longer counts when T signs.
    alliance.ok(T, "clerk", "settlement", "DeclareAmount", "AG-1", "REF-1", "400000")
    second = sign(T)
    assert (second["digest"] != first["digest"], second["closed"]) == (True, False)
    closed = sign(A)
    assert (closed["closed"], closed["digest"]) == (True, second["digest"])
    assert alliance.refused(A, "clerk", "settlement", "SignStatement", "AG-1", PERIOD) == (
        409, "period 2025-11 of agreement AG-1 is already closed"
    )  # fmt: skip
    # The completing referral fails as a whole: no entry, and the referral stays ACCEPTED.
    attempt = complete_referral(alliance, 2, commit=False)
    assert (attempt.status, attempt.message) == (
        409,
        "period 2025-11 of agreement AG-1 is closed (both hospitals signed its statement); "
        "no entry can be added to it",
    )
    assert alliance.refused(T, "doctor", "referral", "CompleteReferral", "REF-2", "FB-2")[0] == 409
    assert alliance.ok(T, "doctor", "referral", "GetReferral", "REF-2")["status"] == ("ACCEPTED")
    assert alliance.refused(A, "doctor", "consultation", "Finish", "C-1", A, T)[0] == 409
    after = alliance.ok(DISTRICT, "auditor", "settlement", "Statement", "AG-1", PERIOD)
    assert (after["closed"], after["digest"]) == (True, closed["digest"])


def test_signing_is_for_the_parties_once_per_digest(alliance: Alliance) -> None:
    agree(alliance, terms=V2)
    refused = lambda who, role, period: alliance.refused(  # noqa: E731
        who, role, "settlement", "SignStatement", "AG-1", period
    )
    assert refused(S2, "clerk", PERIOD) == (403, "SecondaryBMSP is not a party to agreement AG-1")
    assert refused(DISTRICT, "auditor", PERIOD) == (403, "role clerk required, caller has auditor")
    assert refused(A, "clerk", "2025-12") == (400, "period 2025-12 has not begun; nothing to sign")
    assert refused(A, "clerk", "2025-13") == (
        400, "period must be YYYY-MM (e.g. 2026-11), not '2025-13'"
    )  # fmt: skip
    alliance.ok(A, "clerk", "settlement", "SignStatement", "AG-1", PERIOD)
    assert refused(A, "clerk", PERIOD) == (
        409, "SecondaryAMSP already signed the 2025-11 statement of agreement AG-1"
    )  # fmt: skip


def test_a_share_is_declared_only_under_the_agreement_the_referral_completed_under(
    alliance: Alliance,
) -> None:
    """Terminating and agreeing anew does not give a second share of the same referral."""
    agree(alliance, terms=V2)
    complete_referral(alliance, 1)
    declare(alliance, 1, "1000")
    alliance.ok(T, "clerk", "settlement", "TerminateAgreement", "AG-1")
    assert alliance.refused(T, "clerk", "settlement", "DeclareAmount", "AG-1", "REF-1", "9") == (
        409, "agreement AG-1 is TERMINATED"
    )  # fmt: skip
    agree(alliance, "AG-2", terms=V2)
    assert alliance.refused(T, "clerk", "settlement", "DeclareAmount", "AG-2", "REF-1", "9") == (
        409, "referral REF-1 was not completed under agreement AG-2"
    )  # fmt: skip
    complete_referral(alliance, 2)
    assert (
        alliance.ok(T, "clerk", "settlement", "DeclareAmount", "AG-2", "REF-2", "9")["agreementId"]
        == "AG-2"
    )


def test_a_consultation_id_is_checked(alliance: Alliance) -> None:
    agree(alliance, terms=V2)
    assert alliance.refused(A, "doctor", "consultation", "Finish", "C 1/x", A, T) == (
        400, "consultation id 'C 1/x' may use letters, digits and ._- (1-64)"
    )  # fmt: skip


class StandInReferral(Contract):
    """Completes a referral of a given care type, as the referral contract will once referrals
    carry one (`careType`): settlement's Execute then gets it as its fifth argument."""

    name = "referral"

    @transaction
    def Complete(self, ctx: Context, referral_id: str, care_type: str) -> Any:
        return json.loads(ctx.stub.invoke_chaincode(
            "settlement", ["Execute", referral_id, A, T, "UP", care_type]
        ))  # fmt: skip


def test_the_fee_follows_the_referral_type_and_an_empty_type_is_outpatient() -> None:
    alliance = Alliance({"settlement": SettlementContract(), "referral": StandInReferral()})
    agree(alliance, terms=V2)
    fees = [alliance.ok(T, "doctor", "referral", "Complete", f"REF-{n}", care_type)
            for n, care_type in enumerate(("inpatient", "", "examination"))]  # fmt: skip
    assert [(f["executed"], f.get("referralType"), f.get("amountCents")) for f in fees] == [
        (True, "inpatient", 30000), (True, "outpatient", 5000), (False, None, None)
    ]  # fmt: skip
    assert fees[2]["reason"] == "agreement has no UP examination term"


def test_completions_conflict_only_under_a_capped_agreement(alliance: Alliance) -> None:
    """The cap's running total is one key per payer and month: capped completions serialise
    (MVCC retries one), uncapped ones (test_settlement.py) never conflict."""
    agree(alliance, terms={**V2, "monthlyCapCents": 8000})
    first = complete_referral(alliance, 1, commit=False)
    second = complete_referral(alliance, 2, commit=False)
    assert first.status == second.status == 200
    shared = written_keys(first) & written_keys(second)
    assert [ns for ns, _ in shared] == ["settlement"]
    assert all("settlementpaid" in key for _, key in shared)
