"""Deadlines of the next step (SLA): the regulator's published rules, the deadline each
application and referral records as it enters a state, and the overdue queues."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from tests.unit.alliance.harness import START_MS, Alliance

from medalliance.alliance.records import RecordsContract
from medalliance.alliance.referral import ReferralContract
from medalliance.alliance.report import ReportContract
from medalliance.alliance.settlement import SettlementContract
from medalliance.alliance.visit import VisitContract

PATIENT = "9f86d081884c7d65"
DIGEST = "ab" * 32
A, T, DISTRICT, OTHER, CITY = (
    "SecondaryAMSP", "TertiaryAMSP", "DistrictHCMSP", "OtherHCMSP", "CityHCMSP",
)  # fmt: skip
HOUR_MS = 3_600_000


@pytest.fixture
def alliance() -> Alliance:
    alliance = Alliance(
        {
            "visit": VisitContract(),
            "report": ReportContract(),
            "referral": ReferralContract(),
            "records": RecordsContract(),
            "settlement": SettlementContract(),
        }
    )
    alliance.ok(A, "doctor", "visit", "RegisterVisit", "V-1", PATIENT, A)
    alliance.ok(
        A, "doctor", "records", "RegisterRecord", "R-1", PATIENT, DIGEST, "[]", json.dumps([T]),
    )  # fmt: skip
    return alliance


def at(offset_ms: int) -> str:
    """The harness's clock plus an offset, as the contracts write times."""
    when = dt.datetime.fromtimestamp((START_MS + offset_ms) / 1000, tz=dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def plus(iso_time: str, hours: int) -> str:
    when = dt.datetime.fromisoformat(iso_time.replace("Z", "+00:00")) + dt.timedelta(hours=hours)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def submitted(alliance: Alliance, app_id: str = "APP-1") -> dict[str, Any]:
    found: dict[str, Any] = alliance.ok(
        A, "doctor", "report", "SubmitApplication", app_id, "V-1", T, "R-1"
    )
    return found


def approved_referral(alliance: Alliance) -> dict[str, Any]:
    submitted(alliance)
    alliance.ok(DISTRICT, "reviewer", "report", "ReviewApplication", "APP-1", "APPROVED", "", "")
    found: dict[str, Any] = alliance.ok(
        A, "doctor", "referral", "Refer", "REF-1", "APP-1", "V-1", A, T, "UP", "R-1"
    )
    return found


def publish(alliance: Alliance, review: str, accept: str, complete: str) -> dict[str, Any]:
    found: dict[str, Any] = alliance.ok(
        DISTRICT, "reviewer", "report", "SetDeadlineRules", review, accept, complete
    )
    return found


# --- the rules ---------------------------------------------------------------------------------


def test_rules_default_until_published_then_each_publication_is_the_next_version(
    alliance: Alliance,
) -> None:
    get = ("report", "DeadlineRules", DISTRICT)
    assert alliance.ok(T, "doctor", *get) == {
        "regulator": DISTRICT, "version": 0, "reviewHours": 48, "acceptHours": 24,
        "completeDays": 30,
    }  # fmt: skip
    first = publish(alliance, "12", "6", "10")
    second = publish(alliance, "24", "8", "14")
    assert (first["version"], second["version"]) == (1, 2)
    assert alliance.ok(T, "doctor", *get) == second
    assert alliance.ok(T, "doctor", "report", "DeadlineRules", OTHER)["version"] == 0


@pytest.mark.parametrize(
    ("msp_id", "role", "args", "status", "message"),
    [
        pytest.param(
            T,
            "doctor",
            ["1", "1", "1"],
            403,
            "role reviewer or admin required",
            id="a hospital doctor cannot publish deadline rules",
        ),
        pytest.param(
            T,
            "reviewer",
            ["1", "1", "1"],
            403,
            "TertiaryAMSP is not a regulator",
            id="a hospital user with a reviewer role cannot publish them either",
        ),
        pytest.param(
            DISTRICT,
            "auditor",
            ["1", "1", "1"],
            403,
            "role reviewer or admin",
            id="a commission's auditor cannot publish them",
        ),
        pytest.param(
            DISTRICT,
            "reviewer",
            ["0", "1", "1"],
            400,
            "reviewHours must be a whole",
            id="no zero review time",
        ),
        pytest.param(
            DISTRICT,
            "reviewer",
            ["1", "-3", "1"],
            400,
            "acceptHours must be a whole",
            id="no negative accept time",
        ),
        pytest.param(
            DISTRICT,
            "reviewer",
            ["1", "1", "9" * 5000],
            400,
            "completeDays must be",
            id="a huge number is refused without echoing it whole",
        ),
        pytest.param(DISTRICT, "reviewer", ["1", "1"], 400, "", id="a missing argument is refused"),
    ],
)
def test_who_may_publish_deadline_rules_and_what(
    alliance: Alliance, msp_id: str, role: str, args: list[str], status: int, message: str
) -> None:
    refused = alliance.refused(msp_id, role, "report", "SetDeadlineRules", *args)
    assert refused[0] == status
    assert message in refused[1]
    assert len(refused[1]) < 300
    assert alliance.ok(T, "doctor", "report", "DeadlineRules", DISTRICT)["version"] == 0


# --- deadlines set and moved on each transition --------------------------------------------------


def test_each_transition_sets_the_deadline_of_the_next_step_from_the_transaction_time(
    alliance: Alliance,
) -> None:
    publish(alliance, "12", "6", "10")
    application = submitted(alliance)
    assert application["deadline"] == plus(application["submittedAt"], 12)
    assert application["deadlineRules"] == 1
    referral = approved_referral_after(alliance)
    referred_at = referral["history"][-1]["at"]
    assert (referral["deadline"], referral["deadlineRules"]) == (plus(referred_at, 6), 1)
    alliance.clock_ms += 5 * HOUR_MS
    accepted = alliance.ok(T, "doctor", "referral", "AcceptReferral", "REF-1")
    assert accepted["deadline"] == plus(accepted["history"][-1]["at"], 10 * 24)
    reviewed = alliance.ok(DISTRICT, "auditor", "report", "GetApplication", "APP-1")
    assert (reviewed["status"], reviewed["deadline"]) == ("USED", "")


def approved_referral_after(alliance: Alliance) -> dict[str, Any]:
    alliance.ok(DISTRICT, "reviewer", "report", "ReviewApplication", "APP-1", "APPROVED", "", "")
    reviewed = alliance.ok(DISTRICT, "auditor", "report", "GetApplication", "APP-1")
    assert reviewed["deadline"] == ""  # reviewed: nothing of the regulator's is due
    found: dict[str, Any] = alliance.ok(
        A, "doctor", "referral", "Refer", "REF-1", "APP-1", "V-1", A, T, "UP", "R-1"
    )
    return found


def test_a_rejected_referral_has_no_next_step(alliance: Alliance) -> None:
    approved_referral(alliance)
    rejected = alliance.ok(T, "doctor", "referral", "RejectReferral", "REF-1", "NO_BED", "")
    assert (rejected["status"], rejected["deadline"]) == ("REJECTED", "")


def test_new_rules_apply_to_new_items_and_waiting_items_keep_their_deadline(
    alliance: Alliance,
) -> None:
    before = submitted(alliance, "APP-1")
    publish(alliance, "2", "1", "1")
    after = submitted(alliance, "APP-2")
    assert alliance.ok(DISTRICT, "auditor", "report", "GetApplication", "APP-1") == before
    assert (before["deadlineRules"], after["deadlineRules"]) == (0, 1)
    assert after["deadline"] == plus(after["submittedAt"], 2)


# --- overdue queues ---------------------------------------------------------------------------


def test_overdue_applications_appear_after_their_deadline_and_leave_when_reviewed(
    alliance: Alliance,
) -> None:
    publish(alliance, "12", "6", "10")
    application = submitted(alliance)
    queue = ("report", "OverdueApplications", DISTRICT)
    just_before = plus(application["submittedAt"], 12)
    assert alliance.ok(DISTRICT, "reviewer", *queue, just_before) == []
    late = plus(application["submittedAt"], 13)
    assert [a["applicationId"] for a in alliance.ok(DISTRICT, "reviewer", *queue, late)] == [
        "APP-1"
    ]
    assert len(alliance.ok(CITY, "auditor", *queue, late)) == 1  # the parent commission sees it
    alliance.ok(DISTRICT, "reviewer", "report", "ReviewApplication", "APP-1", "APPROVED", "", "")
    assert alliance.ok(DISTRICT, "reviewer", *queue, late) == []


def test_overdue_referrals_appear_after_the_accept_deadline(alliance: Alliance) -> None:
    referral = approved_referral(alliance)
    queue = ("referral", "OverdueReferrals", DISTRICT)
    referred_at = referral["history"][-1]["at"]
    assert alliance.ok(DISTRICT, "auditor", *queue, plus(referred_at, 23)) == []
    late = alliance.ok(DISTRICT, "auditor", *queue, plus(referred_at, 25))
    assert [(r["referralId"], r["status"]) for r in late] == [("REF-1", "REFERRED")]
    assert alliance.ok(CITY, "reviewer", *queue, plus(referred_at, 25)) == late
    alliance.ok(T, "doctor", "referral", "AcceptReferral", "REF-1")
    assert alliance.ok(DISTRICT, "auditor", *queue, plus(referred_at, 25)) == []
    assert len(alliance.ok(DISTRICT, "auditor", *queue, plus(referred_at, 31 * 24))) == 1


@pytest.mark.parametrize(
    ("msp_id", "role", "args", "status", "message"),
    [
        pytest.param(
            OTHER,
            "auditor",
            ["report", "OverdueApplications", DISTRICT],
            403,
            "OtherHCMSP is neither a party",
            id="another district cannot read the queue",
        ),
        pytest.param(
            T,
            "doctor",
            ["referral", "OverdueReferrals", DISTRICT],
            403,
            "role reviewer or auditor",
            id="a hospital cannot read the queue",
        ),
        pytest.param(
            DISTRICT,
            "auditor",
            ["report", "OverdueApplications", T],
            400,
            "TertiaryAMSP is not a regulator",
            id="a hospital has no queue",
        ),
    ],
)
def test_who_may_read_the_overdue_queues(
    alliance: Alliance, msp_id: str, role: str, args: list[str], status: int, message: str
) -> None:
    submitted(alliance)
    refused = alliance.refused(msp_id, role, *args, at(100 * HOUR_MS))
    assert refused[0] == status
    assert message in refused[1]


@pytest.mark.parametrize(
    "when",
    [
        pytest.param("yesterday", id="words are not a time"),
        pytest.param("2026-11-28T12:00:00", id="a time without a zone is refused"),
        pytest.param("9" * 10_000, id="a huge argument is refused"),
    ],
)
def test_an_overdue_query_needs_an_instant_with_a_zone(alliance: Alliance, when: str) -> None:
    refused = alliance.refused(DISTRICT, "auditor", "report", "OverdueApplications", DISTRICT, when)
    assert refused[0] == 400
    assert "ISO 8601" in refused[1] or "time zone" in refused[1]
