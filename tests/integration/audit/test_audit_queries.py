"""Region-wide queries of the district commission over an index of a real workflow ledger."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from tests.integration.audit.conftest import REGULATOR

from medalliance.app.alliance_network import EmbeddedAlliance
from medalliance.app.audit_index import AuditIndex
from medalliance.app.audit_queries import AuditQueries, authenticate
from medalliance.database_url import parse_database_url
from medalliance.errors import InvalidArgument

A, B, B2 = "SecondaryAMSP", "TertiaryAMSP", "TertiaryBMSP"


def district(alliance: EmbeddedAlliance, directory: Path) -> AuditQueries:
    caller = authenticate(alliance.layout, "DistrictHC", "Auditor1")
    return AuditQueries(indexed(alliance, directory), alliance.layout.config, caller)


def indexed(alliance: EmbeddedAlliance, directory: Path) -> AuditIndex:
    """The district's index brought up to its peer (the same file on every call)."""
    index = AuditIndex(parse_database_url(str(directory / "audit.db")), "alliance")
    index.catch_up(alliance.blocks(REGULATOR, index.next_block(), None))
    return index


def test_referrals_by_status_direction_pair_and_month(
    alliance: EmbeddedAlliance, tmp_path: Path
) -> None:
    queries = district(alliance, tmp_path)
    everything = queries.referrals()
    assert [(r.direction, r.from_hospital, r.to_hospital, r.status) for r in everything] == [
        ("UP", A, B, "COMPLETED"),
        ("DOWN", B, A, "COMPLETED"),
    ]
    assert all(len(r.tx_ids) == 3 for r in everything)  # referred, accepted, completed
    month = everything[0].referred_at[:7]
    assert queries.referrals(status="COMPLETED", period=month) == everything
    assert queries.referrals(direction="DOWN") == everything[1:]
    assert queries.referrals(from_org=A, to_org=B) == everything[:1]
    assert queries.referrals(status="REJECTED") == []
    assert queries.referrals(period="1999-01") == []


def test_rejections_by_reason_and_access_events(alliance: EmbeddedAlliance, tmp_path: Path) -> None:
    queries = district(alliance, tmp_path)
    rejections = queries.rejections()
    assert [(r.stage, r.reason_code, r.count) for r in rejections] == [
        ("application", "TARGET_NO_CAPACITY", 1)
    ]
    events = queries.access()
    # B opens the referral; A opens B's feedback on it, then the downward referral's package
    assert [(e.org, e.action) for e in events] == [(B, "decrypt"), (A, "decrypt"), (A, "decrypt")]
    assert queries.access(org=B) == events[:1]
    assert queries.access(record=events[2].record_id) == events[2:]


def test_pending_applications_with_their_age(alliance: EmbeddedAlliance, tmp_path: Path) -> None:
    assert district(alliance, tmp_path).pending(dt.datetime.now(dt.UTC)) == []
    index = indexed(alliance, tmp_path)
    visit = index.facts(["visit.registered"])[0].subject
    record = next(f.subject for f in index.facts(["record.shared"]) if f.attribute("org") == A)
    alliance.submit(A, "User1", "report", "SubmitApplication", "APP-LATE", visit, B2, record)
    queries = district(alliance, tmp_path)
    submitted = indexed(alliance, tmp_path).facts(["application.submitted"], subjects=["APP-LATE"])[
        0
    ]
    at = dt.datetime.fromisoformat(submitted.timestamp.replace("Z", "+00:00"))
    late = queries.pending(at + dt.timedelta(hours=5, minutes=30))
    assert [(p.application_id, p.hospital, p.target, p.age_hours) for p in late] == [
        ("APP-LATE", A, B2, "5.50")
    ]
    assert late[0].tx_id == submitted.tx_id


def test_alarms_by_state_with_who_when_and_rule(alliance: EmbeddedAlliance, tmp_path: Path) -> None:
    raise_alarm = ("alarm", "RaiseAlarm")
    alliance.submit(REGULATOR, "Auditor1", *raise_alarm, "ALM-Q1", "referral.accept_overdue", "1",
                    "HIGH", '["REF-Q1"]', "[]", "CityHCMSP")  # fmt: skip
    alliance.submit(REGULATOR, "Reviewer1", *raise_alarm, "ALM-Q2", "referral.ping_pong", "2",
                    "MEDIUM", '["V-Q2", "REF-Q2"]', "[]", "")  # fmt: skip
    alliance.submit(REGULATOR, "Auditor1", "records", "RegisterRecord", "NOTE-Q", "7c" * 16,
                    "ab" * 32, "[]", "[]")  # fmt: skip
    alliance.submit(REGULATOR, "Auditor1", "alarm", "AcknowledgeAlarm", "ALM-Q1", "")
    alliance.submit(REGULATOR, "Reviewer1", "alarm", "AcknowledgeAlarm", "ALM-Q2", "")
    closed = alliance.submit(REGULATOR, "Reviewer1", "alarm", "CloseAlarm", "ALM-Q2", "NOTE-Q")
    queries = district(alliance, tmp_path)

    every = queries.alarms()
    assert [(a.alarm_id, a.status, a.rule_id, a.rule_version) for a in every] == [
        ("ALM-Q1", "ACKNOWLEDGED", "referral.accept_overdue", "1"),
        ("ALM-Q2", "CLOSED", "referral.ping_pong", "2"),
    ]
    q1, q2 = every
    assert (q1.raised_by, q1.escalate_to, q1.subjects, len(q1.tx_ids)) == (
        REGULATOR, "CityHCMSP", ("REF-Q1",), 2)  # fmt: skip
    assert (q2.updated_by, q2.note_ref, q2.subjects, q2.tx_ids[-1]) == (
        REGULATOR, "NOTE-Q", ("V-Q2", "REF-Q2"), closed.tx_id)  # fmt: skip
    assert q1.raised_at <= q2.raised_at <= q2.updated_at
    assert queries.alarms(state="acknowledged") == [q1]
    assert queries.alarms(state="closed") == [q2]
    assert queries.alarms(state="open") == []
    raised = dt.datetime.fromisoformat(q2.raised_at.replace("Z", "+00:00"))
    assert queries.alarms(since=raised + dt.timedelta(milliseconds=1)) == []
    assert queries.alarms(until=raised + dt.timedelta(milliseconds=1))[-1] == q2
    # The facts say who did each step, as the ledger does.
    steps = indexed(alliance, tmp_path).facts(
        ["alarm.raised", "alarm.acknowledged", "alarm.closed"], subjects=["ALM-Q2"]
    )
    assert [(f.kind, f.creator_role, f.attribute("by")) for f in steps] == [
        ("alarm.raised", "reviewer", REGULATOR),
        ("alarm.acknowledged", "reviewer", REGULATOR),
        ("alarm.closed", "reviewer", REGULATOR),
    ]
    # The city, above the district, sees them; the escalated one is addressed to it.
    city = AuditQueries(indexed(alliance, tmp_path), alliance.layout.config,
                        authenticate(alliance.layout, "CityHC", "Auditor1"))  # fmt: skip
    assert city.alarms() == every


@pytest.mark.parametrize(
    ("ask", "message"),
    [(lambda q: q.referrals(status="LOST"), "--status must be one of"),
     (lambda q: q.referrals(direction="SIDEWAYS"), "--direction must be one of"),
     (lambda q: q.referrals(period="2026-00"), "--period must be YYYY-MM"),
     (lambda q: q.rejections(period="November"), "--period must be YYYY-MM"),
     (lambda q: q.indicators("2026/11"), "--period must be YYYY-MM"),
     (lambda q: q.alarms(state="OPENED"), "--state must be one of"),
     (lambda q: q.alarms(since=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
                         until=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)),
      "--since must be before --until")],
    ids=["an unknown status is refused", "an unknown direction is refused",
         "month 00 is refused", "a month name is refused", "a slashed period is refused",
         "an unknown alarm state is refused", "a period ending before it starts is refused"],
)  # fmt: skip
def test_bad_filters_are_refused_and_the_index_is_unchanged(
    alliance: EmbeddedAlliance, tmp_path: Path, ask: object, message: str
) -> None:
    queries = district(alliance, tmp_path)
    before = indexed(alliance, tmp_path).facts()
    with pytest.raises(InvalidArgument, match=message):
        ask(queries)  # type: ignore[operator]
    assert indexed(alliance, tmp_path).facts() == before
