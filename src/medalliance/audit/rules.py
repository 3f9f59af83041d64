"""Rules over ledger facts: what a health commission must look at, found as blocks commit.

Each rule reads the audit facts (audit/facts.py) in block order and names, as an `AlarmToRaise`,
what the commission should record with the `alarm` contract (alliance/alarm.py). Rules are
versioned: a `RuleSet` carries its version and parameters, and every alarm names the rule id and
the version that found it, so a changed threshold is visible in each alarm it raises.

| rule id | finds | severity |
|---|---|---|
| `application.review_overdue` | an application not reviewed within `review_hours` | MEDIUM |
| `referral.accept_overdue` | a referral not accepted or rejected within `accept_hours` (escalated to the parent commission) | HIGH |
| `referral.ping_pong` | a visit sent A→B, back B→A and again A→B within `ping_pong_days` (a single return after treatment is the workflow) | HIGH |
| `record.access_without_grant` | a fetch or decrypt of a record by an organisation it was never shared with or granted to | CRITICAL |
| `access.volume` | more than `access_max` fetches/decrypts by one organisation in a window of `access_window_hours` | MEDIUM |
| `tx.endorsement_failure` | a transaction invalidated for ENDORSEMENT_POLICY_FAILURE: a write the policies refuse, e.g. a decision or a record access forged past the contracts (MVCC conflicts are ordinary and raise nothing) | HIGH |
| `network.change` | a channel configuration change (membership) or a contract definition change, after the set-up (the first business transaction) | MEDIUM |
| `integrity.divergence` | the commission's integrity monitor (audit/integrity.py) names a peer whose last block or world state differs from the majority's at the same height | CRITICAL |

Deduplicated: the same rule and subject raise once, whatever the batching of blocks. Overdue is
judged against the time of the latest block (`now`, an input: no clock here) and also when the
step finally comes: a step taken after its deadline raises even if no block fell in between.

`integrity.divergence` is not found in blocks (a divergent peer's ledger is exactly what the
blocks cannot show): `integrity_alarm` turns one integrity finding into its alarm, and the runner
(app/alarm_runner.py) feeds it the findings its peer's monitor reports.

Pure: no clock, no I/O; the same facts and times give the same alarms.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from medalliance.audit.facts import Fact
from medalliance.audit.integrity import Finding

__all__ = [
    "DEFAULT_RULES",
    "RULE_IDS",
    "AlarmToRaise",
    "RuleEngine",
    "RuleSet",
    "evaluate",
    "integrity_alarm",
]

RULE_IDS = (
    "application.review_overdue",
    "referral.accept_overdue",
    "referral.ping_pong",
    "record.access_without_grant",
    "access.volume",
    "tx.endorsement_failure",
    "network.change",
    "integrity.divergence",
)
MAX_TRIGGERS = 64  # the alarm contract's limit: the first ones are cited


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules' parameters, under one version number (bump it when any parameter changes)."""

    version: int = 1
    review_hours: int = 48
    accept_hours: int = 24
    ping_pong_days: int = 30
    access_window_hours: int = 24
    access_max: int = 100


DEFAULT_RULES = RuleSet()


@dataclass(frozen=True, slots=True)
class AlarmToRaise:
    """One finding for the commission to record (alarm contract `RaiseAlarm`)."""

    rule_id: str
    rule_version: int
    severity: str  # LOW, MEDIUM, HIGH, CRITICAL
    key: str  # what makes it the same finding: rule + key raise once
    subjects: tuple[str, ...]  # ids it is about (application, referral, visit, record, MSP ids)
    triggers: tuple[str, ...]  # the tx ids it was found from, in block order
    organizations: tuple[str, ...]  # the organisations concerned ("" none: network-wide)
    escalate: bool = False  # to the parent commission of the one that raises it


@dataclass(slots=True)
class _Pending:
    deadline: str
    subjects: tuple[str, ...]
    organizations: tuple[str, ...]
    triggers: list[str]


@dataclass(slots=True)
class _Waiting:
    """Steps waiting, by subject, with a heap of deadlines: time looks only at the due ones, so
    a step costs O(log n) however many are pending."""

    items: dict[str, _Pending] = field(default_factory=dict)
    by_deadline: list[tuple[str, str]] = field(default_factory=list)

    def add(self, subject: str, item: _Pending) -> None:
        self.items[subject] = item
        heapq.heappush(self.by_deadline, (item.deadline, subject))

    def pop(self, subject: str) -> _Pending | None:
        return self.items.pop(subject, None)

    def due(self, now: str) -> list[_Pending]:
        """The steps whose deadline passed before `now`; they stop waiting (raised once)."""
        found = []
        while self.by_deadline and self.by_deadline[0][0] < now:
            deadline, subject = heapq.heappop(self.by_deadline)
            item = self.items.get(subject)
            if item is not None and item.deadline == deadline:  # else resolved or replaced
                del self.items[subject]
                found.append(item)
        return found


@dataclass(slots=True)
class _State:
    started: bool = False  # a business fact was seen: the network's set-up is over
    applications: _Waiting = field(default_factory=_Waiting)
    referrals: _Waiting = field(default_factory=_Waiting)
    # visit -> (origin, target, referral id, time, tx id) of its referrals, oldest first
    moves: dict[str, list[tuple[str, str, str, str, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    authorised: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    accesses: dict[str, deque[tuple[str, str]]] = field(default_factory=lambda: defaultdict(deque))


class RuleEngine:
    """Feed it each committed block's facts with that block's time; it answers the alarms to
    raise, each finding once. Keep one engine per ledger read from genesis: a rule's state (what
    is pending, who was granted what) is built from every fact before."""

    def __init__(self, rules: RuleSet = DEFAULT_RULES) -> None:
        self.rules = rules
        self._state = _State()
        self._raised: set[tuple[str, str]] = set()

    def step(self, facts: Iterable[Fact], now: str) -> list[AlarmToRaise]:
        """The new alarms found by `facts` (one block's, in order) and by time reaching `now`
        (ISO 8601 UTC, the latest block's time)."""
        found: list[AlarmToRaise] = []
        for fact in facts:
            found.extend(self._fact(fact))
        found.extend(self._overdue(now))
        return [a for a in found if self._first(a)]

    # --- one fact -------------------------------------------------------------------------------

    def _fact(self, fact: Fact) -> list[AlarmToRaise]:
        kind = fact.kind
        if kind not in ("config.changed", "contract.changed", "tx.invalid"):
            self._state.started = True
        if kind == "application.submitted":
            self._state.applications.add(
                fact.subject,
                _Pending(
                    _plus(fact.timestamp, hours=self.rules.review_hours),
                    (fact.subject,),
                    _orgs(fact.attribute("hospital"), fact.attribute("regulator")),
                    [fact.tx_id],
                ),
            )
        elif kind in ("application.reviewed", "application.used"):
            return self._resolve(self._state.applications, fact, "application.review_overdue")
        elif kind == "referral.created":
            return self._referral_created(fact)
        elif kind in ("referral.accepted", "referral.rejected"):
            return self._resolve(self._state.referrals, fact, "referral.accept_overdue")
        elif kind == "record.shared":
            authorised = fact.attribute("authorised")
            self._state.authorised[fact.subject].update(o for o in authorised.split(",") if o)
        elif kind == "record.granted":
            self._state.authorised[fact.subject].add(fact.attribute("target"))
        elif kind == "record.revoked":
            self._state.authorised[fact.subject].discard(fact.attribute("target"))
        elif kind == "record.accessed":
            return self._accessed(fact)
        elif kind == "tx.invalid" and fact.attribute("code") == "ENDORSEMENT_POLICY_FAILURE":
            return [self._alarm("tx.endorsement_failure", "HIGH", fact.tx_id,
                                (fact.subject, fact.creator_msp), [fact.tx_id],
                                _orgs(fact.creator_msp))]  # fmt: skip
        elif kind in ("config.changed", "contract.changed"):
            if not self._state.started:
                return []  # the network's set-up (contracts deployed before any business)
            return [self._alarm("network.change", "MEDIUM", fact.tx_id, (fact.subject,),
                                [fact.tx_id], ())]  # fmt: skip
        return []

    def _referral_created(self, fact: Fact) -> list[AlarmToRaise]:
        origin, target = fact.attribute("from_hospital"), fact.attribute("to_hospital")
        visit = fact.attribute("visit_no")
        self._state.referrals.add(
            fact.subject,
            _Pending(
                _plus(fact.timestamp, hours=self.rules.accept_hours),
                (fact.subject,),
                _orgs(origin, target),
                [fact.tx_id],
            ),
        )
        since = _plus(fact.timestamp, days=-self.rules.ping_pong_days)
        moves = self._state.moves[visit]
        # A return after treatment (A→B, then B→A) is the workflow; the patient sent back to B
        # again within the window (A→B, B→A, A→B) is the ping-pong.
        legs = [m for m in moves if {m[0], m[1]} == {origin, target} and m[3] >= since]
        moves.append((origin, target, fact.subject, fact.timestamp, fact.tx_id))
        if len(legs) < 2 or legs[-1][:2] != (target, origin) or legs[-2][:2] != (origin, target):
            return []
        pair = "|".join(sorted((origin, target)))
        return [self._alarm("referral.ping_pong", "HIGH", f"{visit}|{pair}",
                            (visit, legs[-2][2], legs[-1][2], fact.subject),
                            [legs[-2][4], legs[-1][4], fact.tx_id], _orgs(origin, target))]  # fmt: skip

    def _accessed(self, fact: Fact) -> list[AlarmToRaise]:
        org = fact.attribute("org") or fact.creator_msp
        found: list[AlarmToRaise] = []
        if org not in self._state.authorised.get(fact.subject, set()):
            found.append(self._alarm("record.access_without_grant", "CRITICAL",
                                     f"{fact.subject}|{org}", (fact.subject, org), [fact.tx_id],
                                     (org,)))  # fmt: skip
        window = self._state.accesses[org]
        window.append((fact.timestamp, fact.tx_id))
        start = _plus(fact.timestamp, hours=-self.rules.access_window_hours)
        while window and window[0][0] <= start:
            window.popleft()
        if len(window) > self.rules.access_max:
            # One alarm per organisation and window: the window opened by its first access.
            opened = window[0][0][:13]  # to the hour
            found.append(self._alarm("access.volume", "MEDIUM", f"{org}|{opened}", (org,),
                                     [t for _, t in window], (org,)))  # fmt: skip
        return found

    # --- time -------------------------------------------------------------------------------

    def _resolve(self, pending: _Waiting, fact: Fact, rule_id: str) -> list[AlarmToRaise]:
        item = pending.pop(fact.subject)
        if item is None or fact.timestamp <= item.deadline:
            return []
        return [self._late(rule_id, item, fact.tx_id)]

    def _overdue(self, now: str) -> list[AlarmToRaise]:
        found: list[AlarmToRaise] = []
        for rule_id, pending in (
            ("application.review_overdue", self._state.applications),
            ("referral.accept_overdue", self._state.referrals),
        ):
            found.extend(self._late(rule_id, item) for item in pending.due(now))
        return found

    def _late(self, rule_id: str, item: _Pending, *more: str) -> AlarmToRaise:
        severity = "HIGH" if rule_id == "referral.accept_overdue" else "MEDIUM"
        return self._alarm(rule_id, severity, item.subjects[0], item.subjects,
                           [*item.triggers, *more], item.organizations,
                           escalate=rule_id == "referral.accept_overdue")  # fmt: skip

    # --- alarms -----------------------------------------------------------------------------

    def _alarm(
        self,
        rule_id: str,
        severity: str,
        key: str,
        subjects: tuple[str, ...],
        triggers: list[str],
        organizations: tuple[str, ...],
        *,
        escalate: bool = False,
    ) -> AlarmToRaise:
        return AlarmToRaise(
            rule_id=rule_id,
            rule_version=self.rules.version,
            severity=severity,
            key=key,
            subjects=tuple(dict.fromkeys(s for s in subjects if s)),
            triggers=tuple(dict.fromkeys(triggers))[:MAX_TRIGGERS],
            organizations=organizations,
            escalate=escalate,
        )

    def _first(self, alarm: AlarmToRaise) -> bool:
        key = (alarm.rule_id, alarm.key)
        if key in self._raised:
            return False
        self._raised.add(key)
        return True


def evaluate(facts: Iterable[Fact], now: str, rules: RuleSet = DEFAULT_RULES) -> list[AlarmToRaise]:
    """Every alarm of `facts` (in block order) as of `now`, in one go."""
    return RuleEngine(rules).step(facts, now)


def integrity_alarm(finding: Finding, rules: RuleSet = DEFAULT_RULES) -> AlarmToRaise:
    """The alarm of one integrity finding: it names the divergent peer, its organisation, the
    channel and the height compared (`height-N`). The key holds the height at which it was
    first seen, so one divergence raises once however long it lasts (the runner remembers it
    while it lasts) and a divergence that ends and comes back later raises again. Network-wide
    (no organisation): a commission raises what its own monitor found, whoever's peer it is."""
    return AlarmToRaise(
        rule_id="integrity.divergence",
        rule_version=rules.version,
        severity="CRITICAL",
        key=f"{finding.channel_id}|{finding.peer}|{finding.kind}|{finding.height}",
        subjects=tuple(
            dict.fromkeys(
                (finding.peer, finding.organization, finding.channel_id, f"height-{finding.height}")
            )
        ),
        triggers=(),
        organizations=(),
    )


def _plus(iso_time: str, *, hours: int = 0, days: int = 0) -> str:
    """An ISO 8601 UTC time moved by hours or days, in the facts' form (compares as text)."""
    when = dt.datetime.fromisoformat(iso_time.replace("Z", "+00:00"))
    moved = when + dt.timedelta(hours=hours, days=days)
    return moved.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _orgs(*msp_ids: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m for m in msp_ids if m))
