"""Indicators from a small, hand-written month of facts, with exact expected numbers."""

from __future__ import annotations

import itertools
import random

import pytest

from medalliance.audit.facts import Fact
from medalliance.audit.figures import Figure, indicators
from medalliance.errors import InvalidArgument

S, T, T2 = "SecMSP", "TerMSP", "Ter2MSP"
_blocks = itertools.count(1)


def fact(kind: str, tx: str, when: str, subject: str, **attributes: str) -> Fact:
    return Fact(kind, tx, next(_blocks), 0, when, "OrgMSP", "doctor", subject,
                tuple(sorted(attributes.items())))  # fmt: skip


def referral(kind: str, tx: str, when: str, rid: str, frm: str, to: str, direction: str,
             visit: str, referred_at: str) -> Fact:  # fmt: skip
    return fact(kind, tx, when, rid, from_hospital=frm, to_hospital=to, direction=direction,
                visit_no=visit, referred_at=referred_at)  # fmt: skip


def month() -> list[Fact]:
    """Applications of S: 3 reviewed in November (2 approved); 4 referrals (one in October);
    one return; one shared result opened twice by S and once by a stranger; a recognised result
    recorded by T, taken over by T2 (and one in October) and ordered again by S; settlements."""
    return [
        fact("application.submitted", "a3s", "2026-10-31T22:00:00.000Z", "A3", hospital=S),
        fact("application.reviewed", "a3r", "2026-11-01T00:00:00.000Z", "A3", hospital=S,
             status="APPROVED", submitted_at="2026-10-31T22:00:00.000Z"),
        referral("referral.created", "r4c", "2026-10-31T20:00:00.000Z", "R4", S, T, "UP", "V4",
                 "2026-10-31T20:00:00.000Z"),
        referral("referral.accepted", "r4a", "2026-11-01T00:00:00.000Z", "R4", S, T, "UP", "V4",
                 "2026-10-31T20:00:00.000Z"),
        fact("application.reviewed", "a1r", "2026-11-01T03:00:00.000Z", "A1", hospital=S,
             status="APPROVED", submitted_at="2026-11-01T00:00:00.000Z"),
        fact("application.reviewed", "a2r", "2026-11-02T04:30:00.000Z", "A2", hospital=S,
             status="REJECTED", reason_code="NOT_INDICATED",
             submitted_at="2026-11-02T00:00:00.000Z"),
        referral("referral.created", "r1c", "2026-11-01T05:00:00.000Z", "R1", S, T, "UP", "V1",
                 "2026-11-01T05:00:00.000Z"),
        referral("referral.accepted", "r1a", "2026-11-01T07:00:00.000Z", "R1", S, T, "UP", "V1",
                 "2026-11-01T05:00:00.000Z"),
        referral("referral.created", "r2c", "2026-11-02T05:00:00.000Z", "R2", S, T2, "UP", "V2",
                 "2026-11-02T05:00:00.000Z"),
        referral("referral.rejected", "r2x", "2026-11-02T06:00:00.000Z", "R2", S, T2, "UP", "V2",
                 "2026-11-02T05:00:00.000Z"),
        referral("referral.completed", "r1d", "2026-11-03T00:00:00.000Z", "R1", S, T, "UP", "V1",
                 "2026-11-01T05:00:00.000Z"),
        fact("settlement.entry", "r1d", "2026-11-03T00:00:00.000Z", "R1", period="2026-11",
             payer=T, payee=S, amount="50.00"),
        fact("settlement.entry", "old", "2026-10-03T00:00:00.000Z", "R0", period="2026-10",
             payer=T, payee=S, amount="7.00"),
        fact("result.shared", "x1", "2026-11-03T01:00:00.000Z", "X1", hospital=T,
             shared_with=S, record_id="REC1"),
        fact("record.accessed", "acc1", "2026-11-04T00:00:00.000Z", "REC1", org=S),
        fact("record.accessed", "acc2", "2026-11-06T00:00:00.000Z", "REC1", org=S),
        fact("record.accessed", "acc3", "2026-11-06T00:00:00.000Z", "REC1", org=T2),
        fact("result.recorded", "rr1", "2026-11-07T00:00:00.000Z", "RES1", hospital=T,
             code="718-7", record_id="REC2"),
        fact("result.reused", "ru1", "2026-11-08T00:00:00.000Z", "RES1", requester=T2,
             hospital=T, code="718-7", record_id="REC2"),
        fact("result.duplicate", "rd1", "2026-11-09T00:00:00.000Z", "ORD1", hospital=S,
             code="718-7", reason_code="CONDITION_CHANGED", recognised="1"),
        fact("result.reused", "ru0", "2026-10-08T00:00:00.000Z", "RES0", requester=T2,
             hospital=T, code="718-7", record_id="REC0"),
        referral("referral.created", "r3c", "2026-11-05T00:00:00.000Z", "R3", T, S, "DOWN", "V1",
                 "2026-11-05T00:00:00.000Z"),
        referral("referral.accepted", "r3a", "2026-11-05T10:00:00.000Z", "R3", T, S, "DOWN",
                 "V1", "2026-11-05T00:00:00.000Z"),
        fact("report.submitted", "rep", "2026-11-30T00:00:00.000Z", "REP1", period="2026-11",
             submitter=S, **{"metric.referralsUp": "3", "metric.outpatientVisits": "900"}),
        fact("tx.invalid", "bad", "2026-11-06T00:00:00.000Z", "bad", code="MVCC_READ_CONFLICT"),
    ]  # fmt: skip


def table(figures: list[Figure]) -> dict[tuple[str, str], str]:
    return {(f.indicator, f.hospital): f.value for f in figures}


EXPECTED = [
    # indicator, hospital, value
    ("referrals.upward", S, "2"), ("referrals.upward", "", "2"), ("referrals.upward", T, "0"),
    ("referrals.downward", T, "1"), ("referrals.downward", "", "1"),
    ("referrals.received", T, "1"), ("referrals.received", T2, "1"),
    ("referrals.received", S, "1"), ("referrals.received", "", "3"),
    ("referrals.downward_share", "", "0.3333"), ("referrals.downward_share", T, "0.5"),
    ("referrals.downward_share", T2, "0"), ("referrals.downward_share", S, "0.3333"),
    ("referrals.acceptance_rate", T, "1"), ("referrals.acceptance_rate", T2, "0"),
    ("referrals.acceptance_rate", "", "0.75"),
    ("referrals.acceptance_hours_median", T, "3"), ("referrals.acceptance_hours_median", S, "10"),
    ("referrals.acceptance_hours_median", "", "4"), ("referrals.acceptance_hours_median", T2, ""),
    ("referrals.completion_rate", T, "1"), ("referrals.completion_rate", T2, "0"),
    ("referrals.completion_rate", "", "0.3333"),
    ("referrals.returns", T, "1"), ("referrals.returns", S, "0"), ("referrals.returns", "", "1"),
    ("applications.approval_rate", S, "0.6667"), ("applications.approval_rate", T, ""),
    ("applications.decision_hours_median", S, "3"),
    ("results.shared", T, "2"), ("results.shared", S, "0"), ("results.repeat_avoided", S, "1"),
    ("results.repeat_avoided", T2, "1"), ("results.repeat_avoided", "", "2"),
    ("results.duplicated", S, "1"), ("results.duplicated", T2, "0"),
    ("results.duplicated", "", "1"),
    ("settlement.receivable", S, "50.00"), ("settlement.payable", T, "50.00"),
    ("settlement.net", S, "50.00"), ("settlement.net", T, "-50.00"),
    ("settlement.net", "", "0.00"), ("settlement.receivable", "", "50.00"),
    ("reported.referrals.upward", S, "3"), ("difference.referrals.upward", S, "1"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("indicator", "hospital", "value"),
    EXPECTED,
    ids=[f"{i} of {h or 'the region'} is {v or 'undefined'}" for i, h, v in EXPECTED],
)
def test_each_indicator_has_its_exact_value(indicator: str, hospital: str, value: str) -> None:
    assert table(indicators(month(), "2026-11", [S, T, T2]))[(indicator, hospital)] == value


def test_figures_cite_the_transactions_they_come_from() -> None:
    figures = {(f.indicator, f.hospital): f for f in indicators(month(), "2026-11", [S, T, T2])}
    assert figures[("referrals.returns", T)].sources == ("r1c", "r3c")
    assert figures[("results.repeat_avoided", S)].sources == ("acc1", "x1")
    assert figures[("applications.approval_rate", S)].sources == ("a1r", "a2r", "a3r")
    assert figures[("difference.referrals.upward", S)].sources == ("r1c", "r2c", "rep")
    assert figures[("reported.referrals.upward", S)].unit == "count"
    assert figures[("settlement.net", S)].unit == "CNY"


def test_the_order_of_the_facts_does_not_change_the_figures() -> None:
    facts = month()
    shuffled = facts[:]
    random.Random(7).shuffle(shuffled)
    assert indicators(shuffled, "2026-11", [T2, S, T]) == indicators(facts, "2026-11", [S, T, T2])


def test_a_month_without_facts_has_zero_counts_and_undefined_rates() -> None:
    got = table(indicators(month(), "2026-12", [S]))
    assert got[("referrals.upward", S)] == "0"
    assert got[("referrals.acceptance_rate", S)] == ""
    assert got[("settlement.net", S)] == "0.00"
    assert ("reported.referrals.upward", S) not in got


@pytest.mark.parametrize(
    "period",
    ["2026-13", "2026-1", "", "2026-11-01", "11/2026"],
    ids=["month 13 is refused", "a one-digit month is refused", "an empty period is refused",
         "a day is refused", "another date format is refused"],
)  # fmt: skip
def test_a_malformed_period_is_refused(period: str) -> None:
    with pytest.raises(InvalidArgument, match="YYYY-MM"):
        indicators(month(), period, [S])
