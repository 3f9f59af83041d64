"""The commission reviewer's work: the queue of applications, decisions, and the rules it sets.

Paper fig. 5: a secondary hospital applies through the report contract to its commission, which
approves or rejects through the chain. The queue lists the applications of the hospitals the
commission supervises (and its child commissions', for a parent: it sees them, their own
commission decides), oldest first, with their age and the review deadline the contract recorded
from the commission's published rules (alliance/deadline.py). A decision is one
`ReviewApplication`; a rejection names a reason code and may carry a note, which is sealed for
the applicant hospital (app/referral_demo.py `seal_note`) — the chain gets only the note's
record id. Every input is checked before the first write, so a refused decision leaves nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from medalliance.alliance.report import DECISIONS, DOWNWARD_RULES, REVIEW_REASONS
from medalliance.app.alliance_network import AllianceNetwork
from medalliance.app.audit_queries import Auditor, AuditQueries
from medalliance.app.referral_demo import seal_note
from medalliance.errors import Conflict, InvalidArgument, NotFound, PermissionDenied
from medalliance.web.services.commission_index import IndexState, followed_index
from medalliance.web.services.commission_staff import (
    commission_caller,
    require_reviewer,
)
from medalliance.web.services.contract_refusal import translated
from medalliance.web.staff import Staff

__all__ = [
    "DECISIONS",
    "DOWNWARD_RULES",
    "NOTE_CHARS_MAX",
    "REVIEW_REASONS",
    "ApplicationNotFound",
    "DeadlineRulesView",
    "Decision",
    "DownwardRuleView",
    "QueueItem",
    "ReviewInput",
    "ReviewQueue",
    "RuleChange",
    "deadline_rules",
    "decide",
    "downward_rule",
    "review_queue",
    "set_deadline_rules",
    "set_downward_rule",
]

NOTE_CHARS_MAX = 2000
# How long a decision stays in the queue's view (with its transaction and block) after it is made.
RECENT = dt.timedelta(hours=24)
_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class ApplicationNotFound(NotFound):
    def __init__(self, application_id: str) -> None:
        super().__init__(
            f"no application {application_id} in your commission's queue; pick one from the queue"
        )


@dataclass(frozen=True, slots=True)
class QueueItem:
    application_id: str
    hospital: str  # the applicant
    target: str
    regulator: str  # the commission that decides it
    visit_no: str
    submitted_at: str
    age_hours: str  # exact decimal text, 2 places
    deadline: str  # the review deadline the contract recorded ("" if none)
    overdue: bool
    decidable: bool  # the caller's own commission decides it (a parent only watches)
    tx_id: str


@dataclass(frozen=True, slots=True)
class ReviewQueue:
    commission: str
    items: tuple[QueueItem, ...]
    index: IndexState
    may_decide: bool  # the caller is a reviewer
    recent: tuple[Decision, ...] = ()  # the commission's decisions of the last day, newest first
    watches: bool = False  # commissions below it exist: their queues are shown, not decided

    @property
    def own(self) -> tuple[QueueItem, ...]:
        """The applications the caller's own commission decides."""
        return tuple(i for i in self.items if i.decidable)

    @property
    def watched(self) -> tuple[QueueItem, ...]:
        """The applications of the commissions below it (their own commission decides)."""
        return tuple(i for i in self.items if not i.decidable)


@dataclass(frozen=True, slots=True)
class ReviewInput:
    application_id: str
    decision: str  # APPROVED | REJECTED
    reason_code: str = ""  # one of REVIEW_REASONS for a rejection, "" for an approval
    note: str = field(default="", repr=False)  # sealed for the applicant; never on the chain


@dataclass(frozen=True, slots=True)
class Decision:
    application_id: str
    decision: str
    reason_code: str
    note_ref: str
    tx_id: str
    block: int


@dataclass(frozen=True, slots=True)
class DownwardRuleView:
    commission: str
    rule: str  # APPROVAL_REQUIRED | NO_APPROVAL
    hospitals: tuple[str, ...]  # the hospitals it applies to (directly supervised)


@dataclass(frozen=True, slots=True)
class DeadlineRulesView:
    commission: str
    version: int  # 0: the defaults, nothing published yet
    review_hours: int
    accept_hours: int
    complete_days: int


@dataclass(frozen=True, slots=True)
class RuleChange:
    what: str
    tx_id: str
    block: int


def review_queue(network: AllianceNetwork, staff: Staff, now: dt.datetime) -> ReviewQueue:
    """Pending applications of the supervised hospitals, oldest first, with age and deadline."""
    caller = commission_caller(network, staff)
    with followed_index(network, caller.msp_id) as (index, state):
        pending = AuditQueries(index, network.layout.config, caller).pending(now)
        reviewed = index.facts(["application.reviewed"])
    since = _iso(now - RECENT)
    recent = tuple(
        Decision(f.subject, f.attribute("status"), f.attribute("reason_code"), "", f.tx_id, f.block)
        for f in reversed(reviewed)
        if f.attribute("regulator") == caller.msp_id and f.timestamp >= since
    )
    at = _iso(now)
    items = []
    for row in pending:
        application = _application(network, caller, row.application_id)
        deadline = str(application.get("deadline", ""))
        items.append(
            QueueItem(
                row.application_id, row.hospital, row.target, row.regulator,
                str(application.get("visitNo", "")), row.submitted_at, row.age_hours, deadline,
                bool(deadline) and deadline < at, row.regulator == caller.msp_id, row.tx_id,
            )
        )  # fmt: skip
    config = network.layout.config
    own = config.organization(caller.msp_id)
    watches = any(
        o.type == "regulator" and o.parent in (own.name, own.msp_id) for o in config.organizations
    )
    return ReviewQueue(
        caller.msp_id, tuple(items), state, caller.role == "reviewer", recent, watches
    )


def decide(network: AllianceNetwork, staff: Staff, review: ReviewInput) -> Decision:
    """Approve or reject one application of the caller's commission. Raises `InvalidArgument`
    for a bad decision, reason or note, `ApplicationNotFound` for an id not in the queue,
    `PermissionDenied` for another commission's application or a non-reviewer, `Conflict` for
    an application already decided; nothing is written then."""
    caller = commission_caller(network, staff)
    require_reviewer(caller)
    _check_review(review)
    application = _application(network, caller, review.application_id)
    if application["regulator"] != caller.msp_id:
        raise PermissionDenied(
            f"application {review.application_id} is decided by {application['regulator']}, "
            f"not {caller.msp_id}; it is in your view because you supervise that commission"
        )
    if application["status"] != "SUBMITTED":
        raise Conflict(
            f"application {review.application_id} is already {application['status']}; reload "
            "the queue"
        )
    note_ref = ""
    if review.note:
        note_ref = f"NOTE-{secrets.token_hex(8)}"
        seal_note(network, caller.msp_id, caller.user, [application["hospital"]], note_ref,
                  application["patientRef"], "review-note", review.note)  # fmt: skip
    done = translated(
        lambda: network.submit(
            caller.msp_id,
            caller.user,
            "report",
            "ReviewApplication",
            review.application_id,
            review.decision,
            review.reason_code,
            note_ref,
        )
    )
    return Decision(
        review.application_id, review.decision, review.reason_code, note_ref, done.tx_id,
        done.block,
    )  # fmt: skip


def downward_rule(network: AllianceNetwork, staff: Staff) -> DownwardRuleView:
    """Whether downward referrals of the commission's own hospitals need an application."""
    caller = commission_caller(network, staff)
    hospitals = _direct_hospitals(network, caller.msp_id)
    rule = "NO_APPROVAL"
    if hospitals:
        raw = translated(
            lambda: network.evaluate(
                caller.msp_id, caller.user, "report", "DownwardRule", hospitals[0]
            )
        )
        rule = str(json.loads(raw)["rule"])
    return DownwardRuleView(caller.msp_id, rule, hospitals)


def set_downward_rule(network: AllianceNetwork, staff: Staff, rule: str) -> RuleChange:
    caller = commission_caller(network, staff)
    require_reviewer(caller)
    if rule not in DOWNWARD_RULES:
        raise InvalidArgument(f"the rule must be one of {', '.join(DOWNWARD_RULES)}")
    done = translated(
        lambda: network.submit(caller.msp_id, caller.user, "report", "SetDownwardRule", rule)
    )
    return RuleChange(f"downward referrals: {rule}", done.tx_id, done.block)


def deadline_rules(network: AllianceNetwork, staff: Staff) -> DeadlineRulesView:
    """The time the commission allows for each next step (its latest published version)."""
    caller = commission_caller(network, staff)
    raw = translated(
        lambda: network.evaluate(
            caller.msp_id, caller.user, "report", "DeadlineRules", caller.msp_id
        )
    )
    rules = json.loads(raw)
    return DeadlineRulesView(
        caller.msp_id, int(rules["version"]), int(rules["reviewHours"]),
        int(rules["acceptHours"]), int(rules["completeDays"]),
    )  # fmt: skip


def set_deadline_rules(
    network: AllianceNetwork,
    staff: Staff,
    review_hours: int,
    accept_hours: int,
    complete_days: int,
) -> RuleChange:
    """Publish the next version of the deadline rules (the contract checks the bounds)."""
    caller = commission_caller(network, staff)
    require_reviewer(caller)
    values = (review_hours, accept_hours, complete_days)
    if any(v < 1 for v in values):
        raise InvalidArgument("each time allowed must be a whole number of at least 1")
    done = translated(
        lambda: network.submit(
            caller.msp_id, caller.user, "report", "SetDeadlineRules", *(str(v) for v in values)
        )
    )
    return RuleChange(
        f"review {review_hours} h, accept {accept_hours} h, complete {complete_days} d",
        done.tx_id,
        done.block,
    )


def _iso(when: dt.datetime) -> str:
    """`when` in the ledger's timestamp form (so the two compare as text)."""
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check_review(review: ReviewInput) -> None:
    if not _ID.fullmatch(review.application_id):
        raise InvalidArgument("an application id uses letters, digits and ._- (1-64 characters)")
    if review.decision not in DECISIONS:
        raise InvalidArgument(f"the decision must be one of {', '.join(DECISIONS)}")
    if review.decision == "REJECTED" and review.reason_code not in REVIEW_REASONS:
        raise InvalidArgument(
            f"a rejection needs a reason code: one of {', '.join(REVIEW_REASONS)}"
        )
    if review.decision == "APPROVED" and review.reason_code:
        raise InvalidArgument("an approval takes no reason code")
    if review.reason_code == "OTHER" and not review.note.strip():
        raise InvalidArgument("reason OTHER needs a note saying why")
    if len(review.note) > NOTE_CHARS_MAX:
        raise InvalidArgument(f"the note is longer than {NOTE_CHARS_MAX} characters; shorten it")


def _application(network: AllianceNetwork, caller: Auditor, application_id: str) -> dict[str, Any]:
    try:
        raw = translated(
            lambda: network.evaluate(
                caller.msp_id, caller.user, "report", "GetApplication", application_id
            )
        )
    except (NotFound, PermissionDenied):
        # The same answer for an unknown id and another chain's application: the refusal
        # must not tell a forger which ids exist elsewhere.
        raise ApplicationNotFound(application_id) from None
    application: dict[str, Any] = json.loads(raw)
    return application


def _direct_hospitals(network: AllianceNetwork, msp_id: str) -> tuple[str, ...]:
    config = network.layout.config
    own = config.organization(msp_id)
    return tuple(
        sorted(
            o.msp_id
            for o in config.organizations
            if o.type != "regulator" and o.regulator in (own.name, own.msp_id)
        )
    )
