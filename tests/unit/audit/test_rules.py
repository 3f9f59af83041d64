"""The audit rules over facts: each rule's table of what raises and what does not, dedup, and
that the same facts give the same alarms however they are cut into blocks."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medalliance.audit.facts import Fact
from medalliance.audit.rules import AlarmToRaise, RuleEngine, RuleSet, evaluate

T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
SA, TA, TB, DISTRICT = "SecondaryAMSP", "TertiaryAMSP", "TertiaryBMSP", "DistrictHCMSP"
RULES = RuleSet(version=3, review_hours=48, accept_hours=24, ping_pong_days=30,
                access_window_hours=24, access_max=3)  # fmt: skip
_COUNTER = itertools.count()


def at(hours: float) -> str:
    when = T0 + dt.timedelta(hours=hours)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fact(kind: str, subject: str, hours: float, creator: str = SA, **attrs: str) -> Fact:
    n = next(_COUNTER)
    return Fact(kind=kind, tx_id=f"{n:064x}", block=n, tx_index=0, timestamp=at(hours),
                creator_msp=creator, creator_role="", subject=subject,
                attributes=tuple(sorted(attrs.items())))  # fmt: skip


def submitted(app: str, hours: float) -> Fact:
    return fact("application.submitted", app, hours, hospital=SA, regulator=DISTRICT, target=TA)


def reviewed(app: str, hours: float) -> Fact:
    return fact("application.reviewed", app, hours, DISTRICT, status="APPROVED")


def referred(
    ref: str, hours: float, origin: str = SA, target: str = TA, visit: str = "V-1"
) -> Fact:
    return fact("referral.created", ref, hours, origin, from_hospital=origin, to_hospital=target,
                visit_no=visit)  # fmt: skip


def accepted(ref: str, hours: float) -> Fact:
    return fact("referral.accepted", ref, hours, TA, status="ACCEPTED")


def shared(record: str, hours: float, *orgs: str) -> Fact:
    return fact("record.shared", record, hours, SA, authorised=",".join(orgs), version="1")


def accessed(record: str, hours: float, org: str) -> Fact:
    return fact("record.accessed", record, hours, org, org=org, action="decrypt")


def found(facts: list[Fact], now: float) -> list[tuple[str, tuple[str, ...]]]:
    return [(a.rule_id, a.subjects) for a in evaluate(facts, at(now), RULES)]


# --- one table per rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "now", "expected"),
    [
        pytest.param([submitted("APP-1", 0)], 47, [], id="an application within its 48 hours raises nothing"),
        pytest.param([submitted("APP-1", 0)], 49, [("application.review_overdue", ("APP-1",))], id="an application unreviewed after 48 hours raises"),
        pytest.param([submitted("APP-1", 0), reviewed("APP-1", 40)], 100, [], id="an application reviewed in time raises nothing"),
        pytest.param([submitted("APP-1", 0), reviewed("APP-1", 50)], 50, [("application.review_overdue", ("APP-1",))], id="a review after the deadline raises though no block fell between"),
    ],
)  # fmt: skip
def test_application_review_overdue(
    facts: list[Fact], now: float, expected: list[tuple[str, tuple[str, ...]]]
) -> None:
    assert found(facts, now) == expected


@pytest.mark.parametrize(
    ("facts", "now", "expected"),
    [
        pytest.param([referred("REF-1", 0)], 23, [], id="a referral within its 24 hours raises nothing"),
        pytest.param([referred("REF-1", 0)], 25, [("referral.accept_overdue", ("REF-1",))], id="a referral not accepted after 24 hours raises"),
        pytest.param([referred("REF-1", 0), accepted("REF-1", 20)], 90, [], id="a referral accepted in time raises nothing"),
        pytest.param([referred("REF-1", 0), fact("referral.rejected", "REF-1", 30, TA)], 30, [("referral.accept_overdue", ("REF-1",))], id="a late rejection raises"),
    ],
)  # fmt: skip
def test_referral_accept_overdue(
    facts: list[Fact], now: float, expected: list[tuple[str, tuple[str, ...]]]
) -> None:
    assert found(facts, now) == expected


def test_an_overdue_referral_is_escalated_and_names_both_hospitals() -> None:
    (alarm,) = evaluate([referred("REF-1", 0)], at(25), RULES)
    assert (alarm.severity, alarm.escalate, alarm.organizations) == ("HIGH", True, (SA, TA))
    assert alarm.rule_version == 3


PP = ("referral.ping_pong", ("V-1", "R1", "R2", "R3"))


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        pytest.param([referred("R1", 0, SA, TA), accepted("R1", 1), referred("R2", 24 * 5, TA, SA)], [], id="up and one return down is the workflow"),
        pytest.param([referred("R1", 0, SA, TA), referred("R2", 24, TA, SA), referred("R3", 48, SA, TA)], [PP], id="up, down and up again within 30 days is a ping-pong"),
        pytest.param([referred("R1", 0, SA, TA), referred("R2", 24, TA, SA), referred("R3", 24 * 31, SA, TA)], [], id="the third leg after 31 days is not"),
        pytest.param([referred("R1", 0, SA, TA), referred("R2", 24, TA, SA), referred("R3", 48, SA, TA, visit="V-2")], [], id="another visit is not"),
        pytest.param([referred("R1", 0, SA, TA), referred("R2", 24, TA, SA), referred("R3", 48, SA, TB)], [], id="up to a third hospital is not"),
        pytest.param([referred("R1", 0, SA, TA), referred("R2", 24, TA, SA), referred("R3", 48, SA, TA), referred("R4", 50, TA, SA), referred("R5", 52, SA, TA)], [PP], id="more legs between the same pair raise no second alarm"),
    ],
)  # fmt: skip
def test_referral_ping_pong(facts: list[Fact], expected: list[tuple[str, tuple[str, ...]]]) -> None:
    last = max(f.timestamp for f in facts)
    got = [(a.rule_id, a.subjects) for a in evaluate(facts, last, RULES)]
    assert [g for g in got if g[0] == "referral.ping_pong"] == expected


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        pytest.param([shared("REC-1", 0, SA, TA, DISTRICT), accessed("REC-1", 1, TA)], [], id="an organisation the record was shared with may decrypt it"),
        pytest.param([shared("REC-1", 0, SA, DISTRICT), accessed("REC-1", 1, TB)], [("record.access_without_grant", ("REC-1", TB))], id="an organisation never shared with raises"),
        pytest.param([shared("REC-1", 0, SA), fact("record.granted", "REC-1", 1, SA, target=TB), accessed("REC-1", 2, TB)], [], id="a grant authorises"),
        pytest.param([shared("REC-1", 0, SA), fact("record.granted", "REC-1", 1, SA, target=TB), fact("record.revoked", "REC-1", 2, SA, target=TB), accessed("REC-1", 3, TB)], [("record.access_without_grant", ("REC-1", TB))], id="an access after a revocation raises"),
        pytest.param([accessed("REC-9", 1, TA)], [("record.access_without_grant", ("REC-9", TA))], id="an access to a record never shared raises"),
    ],
)  # fmt: skip
def test_record_access_without_grant(
    facts: list[Fact], expected: list[tuple[str, tuple[str, ...]]]
) -> None:
    assert found(facts, 5) == expected


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        pytest.param([1, 2, 3], [], id="three accesses in a day are within the limit"),
        pytest.param([1, 2, 3, 4], [("access.volume", (TA,))], id="a fourth in the same day raises"),
        pytest.param([1, 2, 3, 4, 5, 6], [("access.volume", (TA,))], id="more in the same window raise no second alarm"),
        pytest.param([1, 13, 25, 37, 49], [], id="accesses spread over days do not raise"),
    ],
)  # fmt: skip
def test_access_volume(hours: list[float], expected: list[tuple[str, tuple[str, ...]]]) -> None:
    facts = [shared("REC-1", 0, TA)] + [accessed("REC-1", h, TA) for h in hours]
    assert found(facts, 60) == expected


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        pytest.param([fact("contract.changed", "referral", 0, TA), fact("config.changed", "alliance", 0, DISTRICT)], [], id="the set-up before any business raises nothing"),
        pytest.param([fact("visit.registered", "V-1", 0), fact("config.changed", "alliance", 1, DISTRICT)], [("network.change", ("alliance",))], id="a membership change raises"),
        pytest.param([fact("visit.registered", "V-1", 0), fact("contract.changed", "referral", 1, TA)], [("network.change", ("referral",))], id="a contract definition change raises"),
        pytest.param([fact("visit.registered", "V-1", 0), fact("contract.changed", "referral", 1, TA), fact("contract.changed", "referral", 2, TA)], [("network.change", ("referral",)), ("network.change", ("referral",))], id="each change is its own alarm"),
        pytest.param([fact("visit.registered", "V-1", 1)], [], id="ordinary facts do not"),
    ],
)  # fmt: skip
def test_network_change(facts: list[Fact], expected: list[tuple[str, tuple[str, ...]]]) -> None:
    assert found(facts, 5) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param("ENDORSEMENT_POLICY_FAILURE", [("tx.endorsement_failure", ("TXF", TA))], id="a write the policies refuse raises"),
        pytest.param("MVCC_READ_CONFLICT", [], id="a read conflict is ordinary and raises nothing"),
        pytest.param("DUPLICATE_TXID", [], id="a duplicate is refused by validation and raises nothing"),
    ],
)  # fmt: skip
def test_tx_endorsement_failure(code: str, expected: list[tuple[str, tuple[str, ...]]]) -> None:
    invalid = fact("tx.invalid", "TXF", 1, TA, code=code, contract="records")
    assert found([invalid], 2) == expected


# --- dedup, batching, hostile input ----------------------------------------------------------------


def test_the_same_rule_and_subject_raise_once_across_steps() -> None:
    engine = RuleEngine(RULES)
    first = engine.step([submitted("APP-1", 0)], at(49))
    again = engine.step([], at(60))
    late = engine.step([reviewed("APP-1", 70)], at(70))
    assert [a.subjects for a in first] == [("APP-1",)]
    assert again == late == []


def test_an_alarm_cites_at_most_64_transactions() -> None:
    rules = RuleSet(access_max=100)
    facts = [shared("REC-1", 0, TA)] + [accessed("REC-1", i / 100, TA) for i in range(300)]
    (alarm,) = evaluate(facts, at(5), rules)
    assert alarm.rule_id == "access.volume"
    assert len(alarm.triggers) == 64


def _timeline() -> list[Fact]:
    return [
        submitted("APP-1", 0), reviewed("APP-1", 60), referred("R1", 61, SA, TA),
        shared("REC-1", 61, SA, TA), accessed("REC-1", 62, TB), accepted("R1", 90),
        referred("R2", 100, TA, SA), referred("R3", 100.5, SA, TA), submitted("APP-2", 101),
        fact("contract.changed", "alarm", 102, TA),
    ]  # fmt: skip


@given(st.lists(st.integers(min_value=0, max_value=8), max_size=8))
def test_how_facts_are_cut_into_blocks_changes_no_alarm(cuts: list[int]) -> None:
    facts = _timeline()
    bounds = sorted({0, len(facts), *cuts})
    engine = RuleEngine(RULES)
    stepped: list[AlarmToRaise] = []
    for start, end in itertools.pairwise(bounds):
        block = facts[start:end]
        stepped += engine.step(block, block[-1].timestamp if block else at(0))
    stepped += engine.step([], at(200))
    assert sorted(stepped, key=repr) == sorted(evaluate(facts, at(200), RULES), key=repr)
    assert {a.rule_id for a in stepped} == {
        "application.review_overdue", "referral.accept_overdue", "referral.ping_pong",
        "record.access_without_grant", "network.change",
    }  # fmt: skip


def test_no_alarm_carries_text_beyond_ids() -> None:
    for alarm in evaluate(_timeline(), at(500), RULES):
        for value in (*alarm.subjects, *alarm.triggers, *alarm.organizations):
            assert value.replace("-", "").replace(".", "").isalnum()
