"""The alarms and queues of a generated month equal what the generator produced (issue 14,
"Done when"): the district's alarm runner, run once over a copy of the month's ledger, raises
exactly the overdue reviews, the overdue acceptances (escalated to the city), the ping-pong
patient and the forged access the truth holds; the pending queue lists the unreviewed
applications with their ages, and the contracts' overdue queue the late referrals.

Every expected number is computed here from the generator's truth (`MonthTruth`) and the rules'
parameters, never written down."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections import Counter
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from fabric_protos.common import common_pb2
from tests.generated_month import generated_month
from tests.networks import DEMO_ALLIANCE

from medalliance.app.activity_generator import LATE_ACCEPTANCE, LATE_REVIEW, MonthTruth
from medalliance.app.alarm_checkpoint import AlarmCheckpoint
from medalliance.app.alarm_runner import AlarmRunner, RunReport
from medalliance.app.alliance_network import EmbeddedAlliance
from medalliance.app.audit_index import AuditIndex
from medalliance.app.audit_queries import (
    AlarmRow,
    AuditQueries,
    PendingApplication,
    authenticate,
)
from medalliance.audit.facts import iso_time
from medalliance.audit.rules import RuleSet
from medalliance.database_url import parse_database_url
from medalliance.ledger.tx import MalformedTransaction, parse_envelope
from medalliance.node.config import load_network_config
from medalliance.node.embedded import EmbeddedNetwork

DISTRICT, CITY = "DistrictHCMSP", "CityHCMSP"


# The commission's rules as a new version whose limits are the generator's definition of late
# (a review after 24 hours, an acceptance after 48): the month has both kinds.
RULES = RuleSet(
    version=2,
    review_hours=LATE_REVIEW // dt.timedelta(hours=1),
    accept_hours=LATE_ACCEPTANCE // dt.timedelta(hours=1),
)


@dataclass(frozen=True)
class Ran:
    truth: MonthTruth
    now: str  # the time of the month's last block: the rules' and the queues' "now"
    report: RunReport
    district: AuditQueries
    city: AuditQueries
    overdue_referrals: list[dict[str, object]]  # the referral contract's queue at `now`
    midway: str  # a block's time within the month, while applications wait
    pending_midway: list[PendingApplication]  # the queue over an index read to that block


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Ran:
    """The runner over a copy of the session's month, through the month's last block only (the
    alarms it commits come later and must not move the rules' clock), then the index."""
    source, truth = generated_month(tmp_path_factory)
    directory = tmp_path_factory.mktemp("month-alarms") / "net"
    shutil.copytree(source, directory)
    base = directory.parent
    with EmbeddedNetwork.open(load_network_config(DEMO_ALLIANCE), directory) as network:
        alliance = EmbeddedAlliance(network, "alliance")
        last = network.peers[0].channel("alliance").height - 1
        blocks = list(alliance.blocks(DISTRICT, 0, last))
        times = [_block_time(b) for b in blocks]
        store = AlarmCheckpoint(parse_database_url(str(base / "alarms.db")), "alliance")
        report = AlarmRunner(alliance, DISTRICT, "Auditor1", store, RULES).run(until=last)
        store.close()
        queue = alliance.evaluate(DISTRICT, "Auditor1", "referral", "OverdueReferrals", DISTRICT,
                                  max(times))  # fmt: skip
        index = AuditIndex(parse_database_url(str(base / "audit.db")), "alliance")
        index.catch_up(alliance.blocks(DISTRICT, 0, None))
        layout = alliance.layout
        alliance.close()
    # Midway: half a day after the slowest-reviewed application was submitted, at a block whose
    # successor is strictly later, so "by then" is one cut of the ledger.
    slowest = max(truth.applications, key=lambda a: _when(a.reviewed_at) - _when(a.submitted_at))
    target = iso_time(int((_when(slowest.submitted_at).timestamp() + 12 * 3600) * 1000))
    middle = max(k for k in range(len(blocks) - 1) if times[k] <= target < times[k + 1])
    partial = AuditIndex(parse_database_url(str(base / "midway.db")), "alliance")
    partial.catch_up(blocks[: middle + 1])
    auditor = authenticate(layout, "DistrictHC", "Auditor1")
    pending = AuditQueries(partial, layout.config, auditor).pending(_when(times[middle]))
    return Ran(
        truth,
        max(times),
        report,
        AuditQueries(index, layout.config, auditor),
        AuditQueries(index, layout.config, authenticate(layout, "CityHC", "Auditor1")),
        json.loads(queue),
        times[middle],
        pending,
    )


def test_the_runner_raises_exactly_what_the_generator_made(ran: Ran) -> None:
    truth, now = ran.truth, ran.now
    review, accept = LATE_REVIEW, LATE_ACCEPTANCE
    late_reviews = {
        a.application_id
        for a in truth.applications
        if _late(a.submitted_at, a.reviewed_at, review, now)
    }
    late_acceptances = {
        r.referral_id for r in truth.referrals if _late(r.referred_at, r.decided_at, accept, now)
    }
    raised = Counter(r.rule_id for r in ran.report.raised)
    assert raised == Counter(
        {
            "application.review_overdue": len(late_reviews),
            "referral.accept_overdue": len(late_acceptances),
            "referral.ping_pong": 1,
            "tx.endorsement_failure": len(truth.forged_access),
        }
    )
    # The truth's own counts of late decisions; the rules add those still undecided at `now`.
    counts = truth.counts()
    assert len(late_reviews) == counts[("applications.reviewed_late", "")] > 0
    decided_late = {r.referral_id for r in truth.referrals if r.decided_at} & late_acceptances
    assert len(decided_late) == counts[("referrals.decided_late", "")] > 0
    assert late_acceptances - decided_late  # and some never answered (the ping-pong's last)
    by_rule = {rule: [r for r in ran.report.raised if r.rule_id == rule] for rule in raised}
    assert {r.subjects[0] for r in by_rule["application.review_overdue"]} == late_reviews
    assert {r.subjects[0] for r in by_rule["referral.accept_overdue"]} == late_acceptances
    # The ping-pong patient: its three referrals, up, down and up again.
    (ping_pong,) = by_rule["referral.ping_pong"]
    assert ping_pong.subjects[1:] == truth.ping_pong
    # The forged access: the invalid transaction and the organisation that built it.
    assert sorted(r.subjects for r in by_rule["tx.endorsement_failure"]) == sorted(
        (tx_id, org) for tx_id, org, _, _ in truth.forged_access
    )
    # Every VALID access in the truth was granted: no access without a grant, no volume alarm,
    # and the attempt the contract refused never reached the ledger.
    assert truth.refused_access
    assert ran.report.ignored == 0  # every finding concerns the district's hospitals


def test_the_alarms_on_the_chain_and_their_escalation(ran: Ran) -> None:
    """The district lists every alarm it raised as OPEN; the overdue acceptances are escalated
    to the city, which lists exactly those as escalated to it."""
    listed = ran.district.alarms(state="open")
    assert sorted(a.alarm_id for a in listed) == sorted(r.alarm_id for r in ran.report.raised)
    assert ran.district.alarms(state="closed") == []
    escalated = [a for a in listed if a.escalate_to == CITY]
    assert {a.rule_id for a in escalated} == {"referral.accept_overdue"}
    assert (
        len(escalated) == Counter(r.rule_id for r in ran.report.raised)["referral.accept_overdue"]
    )
    assert {(a.raised_by, a.rule_version) for a in listed} == {(DISTRICT, str(RULES.version))}
    city: list[AlarmRow] = ran.city.alarms()
    assert city == listed  # the city reads its district's alarms, the escalated ones too


def test_the_pending_queue_holds_the_unreviewed_applications_with_their_ages(ran: Ran) -> None:
    """The queue as it stood midway through the month (an index read to that block): every
    application submitted by then and reviewed later or never, aged at that moment."""
    at = _when(ran.midway)
    expected = sorted(
        (a.submitted_at, a.application_id, a.hospital, _age(a.submitted_at, at))
        for a in ran.truth.applications
        if a.submitted_at <= ran.midway and not (a.reviewed_at and a.reviewed_at <= ran.midway)
    )
    assert expected  # applications were waiting then
    found = [
        (p.submitted_at, p.application_id, p.hospital, p.age_hours) for p in ran.pending_midway
    ]
    assert sorted(found) == expected
    # At the month's end the generator has had every application reviewed.
    assert ran.district.pending(_when(ran.now)) == []
    assert all(a.status != "SUBMITTED" for a in ran.truth.applications)


def test_the_contracts_overdue_queue_holds_the_late_unanswered_referrals(ran: Ran) -> None:
    accept = dt.timedelta(hours=24)  # the contracts' default acceptance deadline
    complete = dt.timedelta(days=30)
    expected = {
        r.referral_id
        for r in ran.truth.referrals
        if (r.status == "REFERRED" and _late(r.referred_at, "", accept, ran.now))
        or (r.status == "ACCEPTED" and _late(r.decided_at, "", complete, ran.now))
    }
    assert {str(r["referralId"]) for r in ran.overdue_referrals} == expected
    assert ran.truth.ping_pong[-1] in expected  # the ping-pong's last referral, unanswered


def _late(start: str, end: str, allowed: dt.timedelta, now: str) -> bool:
    """The rules' judgement: the step came after its deadline, or has not come and the
    deadline is before `now` (times as the ledger holds them, ISO 8601 UTC)."""
    deadline = iso_time(int((_when(start) + allowed).timestamp() * 1000))
    return end > deadline if end else deadline < now


def _age(submitted_at: str, at: dt.datetime) -> str:
    age = Decimal((at - _when(submitted_at)) // dt.timedelta(milliseconds=1)) / 3_600_000
    return str(age.quantize(Decimal("0.01"), ROUND_HALF_EVEN))


def _when(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _block_time(block: common_pb2.Block) -> str:
    """The latest transaction time of a block, as the runner takes it for `now`."""
    latest = ""
    for data in block.data.data:
        try:
            latest = max(latest, iso_time(parse_envelope(bytes(data)).header.timestamp_ms))
        except MalformedTransaction:
            continue
    return latest
