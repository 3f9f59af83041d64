"""Region-wide audit queries over the audit index, for the commission's auditors and reviewers.

docs/audit.md §3. One service for the CLI (`medalliance audit ...`) and the web client. Who asks
is proven, not claimed: `authenticate` loads the user's certificate and key from the network
folder, checks the certificate against its organisation's MSP and that the key signs for it, and
reads the alliance role from the certificate. Only an `auditor` or `reviewer` of a regulator gets
answers (`AuditDenied`, exit 4, for anyone else), and only about the hospitals its commission
supervises — directly, or through its child commissions (a city sees its districts' hospitals).
"""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from medalliance.app.audit_index import AuditIndex
from medalliance.audit.facts import Fact
from medalliance.audit.figures import Figure, indicators
from medalliance.errors import InvalidArgument, NotFound, PermissionDenied
from medalliance.identity import Msp, load_signer
from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.config import HOSPITAL_TYPES, NetworkConfig

__all__ = [
    "ALARM_STATES",
    "AUDIT_ROLES",
    "AccessEvent",
    "AlarmRow",
    "AuditDenied",
    "AuditQueries",
    "Auditor",
    "PendingApplication",
    "ReferralRow",
    "RejectionCount",
    "authenticate",
    "require_auditor",
    "supervised_hospitals",
]

AUDIT_ROLES = ("auditor", "reviewer")
_HOURS = Decimal("0.01")
_STATUSES = ("REFERRED", "ACCEPTED", "REJECTED", "COMPLETED")
_DIRECTIONS = ("UP", "DOWN")
ALARM_STATES = ("open", "acknowledged", "closed", "all")
_ALARM_KINDS = ("alarm.raised", "alarm.acknowledged", "alarm.closed")


class AuditDenied(PermissionDenied):
    """The caller may not see audit answers (wrong role or organisation, or no valid identity)."""


@dataclass(frozen=True, slots=True)
class Auditor:
    """A proven caller: its organisation, user name and the role its certificate carries."""

    msp_id: str
    user: str
    role: str


@dataclass(frozen=True, slots=True)
class PendingApplication:
    application_id: str
    hospital: str
    target: str
    regulator: str
    submitted_at: str
    age_hours: str  # exact decimal text, 2 places
    tx_id: str


@dataclass(frozen=True, slots=True)
class ReferralRow:
    referral_id: str
    from_hospital: str
    to_hospital: str
    direction: str
    status: str  # the latest status in the index
    referred_at: str
    updated_at: str
    reason_code: str
    tx_ids: tuple[str, ...]  # every transaction of the referral, in ledger order


@dataclass(frozen=True, slots=True)
class RejectionCount:
    stage: str  # "application" (the regulator's review) or "referral" (the target's)
    reason_code: str
    count: int
    tx_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AccessEvent:
    record_id: str
    org: str
    action: str  # fetch, decrypt, grant, revoke
    version: str
    at: str
    tx_id: str


@dataclass(frozen=True, slots=True)
class AlarmRow:
    """One alarm as the index last saw it (alarm contract: raise, acknowledge, close)."""

    alarm_id: str
    rule_id: str
    rule_version: str
    severity: str
    status: str  # OPEN, ACKNOWLEDGED or CLOSED
    subjects: tuple[str, ...]
    raised_by: str  # the commission's MSP id
    raised_at: str
    escalate_to: str  # "" or the parent commission that must see to it
    updated_by: str  # the organisation of the latest step
    updated_at: str
    note_ref: str  # the latest step's sealed note ("" for none): a record id, never the note
    tx_ids: tuple[str, ...]  # raise, acknowledge, close, in ledger order


def authenticate(layout: NetworkLayout, organization: str, user: str) -> Auditor:
    """The user `user` of `organization` (name or MSP id), proven by its own certificate and key
    in the network folder. Raises `AuditDenied` when it has none, the certificate is not its
    organisation's, or the key does not sign for it."""
    msp_id = layout.config.organization(organization).msp_id
    try:
        signer = load_signer(layout.user_msp_dir(msp_id, user), msp_id)
    except (NotFound, InvalidArgument):
        raise AuditDenied(
            f"no certificate and key of user {user} of {msp_id} in this network folder; audit "
            "queries answer only a user who holds its own identity"
        ) from None
    msp = Msp.from_dir(layout.org_msp_dir(msp_id), msp_id)
    identity = msp.validate(signer.cert_pem, at=dt.datetime.now(dt.UTC))
    challenge = os.urandom(32)
    if not identity.verify(signer.sign(challenge), challenge):
        raise AuditDenied(f"the key of user {user} of {msp_id} does not match its certificate")
    return Auditor(msp_id, user, identity.alliance_role or "")


def require_auditor(config: NetworkConfig, caller: Auditor) -> None:
    """`AuditDenied` unless the caller is an auditor or reviewer of a health commission."""
    org = config.organization(caller.msp_id)
    if org.type != "regulator" or caller.role not in AUDIT_ROLES:
        raise AuditDenied(
            f"audit queries answer auditors and reviewers of a health commission; "
            f"{caller.user} of {caller.msp_id} is {caller.role or 'without a role'} of a "
            f"{org.type} organisation"
        )


def supervised_hospitals(config: NetworkConfig, regulator: str) -> tuple[str, ...]:
    """MSP ids of the hospitals `regulator` supervises: its own, and its child commissions'
    (the regulator hierarchy of the network config: a hospital's `regulator`, a commission's
    `parent`)."""
    found = []
    for org in config.organizations:
        if org.type not in HOSPITAL_TYPES or not org.regulator:
            continue
        if regulator in _regulators_above(config, org.regulator):
            found.append(org.msp_id)
    return tuple(sorted(found))


class AuditQueries:
    """The queries of one proven auditor or reviewer over one audit index."""

    def __init__(self, index: AuditIndex, config: NetworkConfig, caller: Auditor) -> None:
        require_auditor(config, caller)
        self._index = index
        self.caller = caller
        self.hospitals = supervised_hospitals(config, caller.msp_id)
        self._scope = frozenset(self.hospitals)
        # The commissions whose alarms the caller's may read: itself and those below it (as
        # the alarm contract's AlarmsByStatus answers).
        self._commissions = frozenset(
            o.msp_id
            for o in config.organizations
            if o.type == "regulator" and caller.msp_id in _regulators_above(config, o.msp_id)
        )

    def pending(self, now: dt.datetime) -> list[PendingApplication]:
        """Applications of supervised hospitals submitted and not yet reviewed, oldest first,
        with their age at `now`."""
        facts = self._index.facts(["application.submitted", "application.reviewed"])
        reviewed = {f.subject for f in facts if f.kind == "application.reviewed"}
        rows = []
        for f in facts:
            if f.kind != "application.submitted" or f.subject in reviewed:
                continue
            if f.attribute("hospital") not in self._scope:
                continue
            age = Decimal((now - _when(f.timestamp)) // dt.timedelta(milliseconds=1)) / 3_600_000
            rows.append(PendingApplication(
                f.subject, f.attribute("hospital"), f.attribute("target"),
                f.attribute("regulator"), f.timestamp,
                str(age.quantize(_HOURS, ROUND_HALF_EVEN)), f.tx_id,
            ))  # fmt: skip
        return rows

    def referrals(
        self,
        *,
        status: str = "",
        direction: str = "",
        from_org: str = "",
        to_org: str = "",
        period: str = "",
    ) -> list[ReferralRow]:
        """Referrals touching a supervised hospital, by their latest status, direction, hospital
        pair and the month they were made in (each filter empty: any)."""
        _check_choice(status, "--status", _STATUSES)
        _check_choice(direction, "--direction", _DIRECTIONS)
        _check_period(period)
        self._require_supervised(from_org, to_org)
        kinds = ["referral.created", "referral.accepted", "referral.rejected", "referral.completed"]
        by_id: dict[str, list[Fact]] = defaultdict(list)
        for f in self._index.facts(kinds):
            by_id[f.subject].append(f)
        rows = []
        for referral_id, history in by_id.items():
            first, last = history[0], history[-1]
            row = ReferralRow(
                referral_id, last.attribute("from_hospital"), last.attribute("to_hospital"),
                last.attribute("direction"), last.attribute("status"),
                last.attribute("referred_at") or first.timestamp, last.timestamp,
                last.attribute("reason_code"), tuple(f.tx_id for f in history),
            )  # fmt: skip
            if not {row.from_hospital, row.to_hospital} & self._scope:
                continue
            if (
                status in ("", row.status)
                and direction in ("", row.direction)
                and from_org in ("", row.from_hospital)
                and to_org in ("", row.to_hospital)
                and period in ("", row.referred_at[:7])
            ):
                rows.append(row)
        return sorted(rows, key=lambda r: (r.referred_at, r.referral_id))

    def rejections(self, *, period: str = "") -> list[RejectionCount]:
        """Rejected applications (by the regulator) and referrals (by the target) of supervised
        hospitals, counted by reason code, in a month or overall."""
        _check_period(period)
        groups: dict[tuple[str, str], list[str]] = defaultdict(list)
        facts = self._index.facts(["application.reviewed", "referral.rejected"], period=period)
        for f in facts:
            if f.kind == "application.reviewed":
                if (
                    f.attribute("status") != "REJECTED"
                    or f.attribute("hospital") not in self._scope
                ):
                    continue
                groups[("application", f.attribute("reason_code"))].append(f.tx_id)
            elif {f.attribute("from_hospital"), f.attribute("to_hospital")} & self._scope:
                groups[("referral", f.attribute("reason_code"))].append(f.tx_id)
        return [
            RejectionCount(stage, reason, len(txs), tuple(txs))
            for (stage, reason), txs in sorted(groups.items())
        ]

    def access(self, *, org: str = "", record: str = "") -> list[AccessEvent]:
        """Grants, revocations, fetches and decrypts of records owned by a supervised hospital or
        made by one, by the accessing organisation and the record (each empty: any)."""
        self._require_supervised(org)
        kinds = ["record.shared", "record.accessed", "record.granted", "record.revoked"]
        facts = self._index.facts(kinds, subjects=[record] if record else ())
        owners: dict[str, str] = {}
        for f in facts:
            if f.kind == "record.shared":
                owners.setdefault(f.subject, f.attribute("org"))
        events = []
        for f in facts:
            if f.kind == "record.shared" or org not in ("", f.attribute("org")):
                continue
            if not {f.attribute("org"), owners.get(f.subject, "")} & self._scope:
                continue
            events.append(AccessEvent(f.subject, f.attribute("org"), f.attribute("action"),
                                      f.attribute("version"), f.timestamp, f.tx_id))  # fmt: skip
        return events

    def indicators(self, period: str) -> list[Figure]:
        """docs/audit.md §2 for the supervised hospitals (and over them, as "" region-wide)."""
        _check_period(period)
        facts = [f for f in self._index.facts() if self._in_scope(f)]
        return indicators(facts, period, self.hospitals)

    def alarms(
        self,
        *,
        state: str = "all",
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
    ) -> list[AlarmRow]:
        """Alarms raised by the caller's commission or one below it, or escalated to it, in
        their latest state (`open`, `acknowledged`, `closed` or `all`), raised in
        [`since`, `until`) (None: unbounded), oldest first."""
        _check_choice(state, "--state", ALARM_STATES)
        if since is not None and until is not None and since >= until:
            raise InvalidArgument("--since must be before --until")
        by_id: dict[str, list[Fact]] = defaultdict(list)
        for f in self._index.facts(_ALARM_KINDS):
            by_id[f.subject].append(f)
        rows = []
        for alarm_id, history in by_id.items():
            last = history[-1]
            if not (
                last.attribute("raised_by") in self._commissions
                or last.attribute("escalate_to") == self.caller.msp_id
            ):
                continue
            if state != "all" and last.attribute("status").lower() != state:
                continue
            raised = _when(last.attribute("raised_at") or history[0].timestamp)
            if (since is not None and raised < since) or (until is not None and raised >= until):
                continue
            rows.append(AlarmRow(
                alarm_id, last.attribute("rule_id"), last.attribute("rule_version"),
                last.attribute("severity"), last.attribute("status"),
                tuple(s for s in last.attribute("subjects").split(",") if s),
                last.attribute("raised_by"), last.attribute("raised_at"),
                last.attribute("escalate_to"), last.attribute("by"),
                last.attribute("at") or last.timestamp, last.attribute("note_ref"),
                tuple(f.tx_id for f in history),
            ))  # fmt: skip
        return sorted(rows, key=lambda r: (r.raised_at, r.alarm_id))

    def _require_supervised(self, *organizations: str) -> None:
        """Refuse a filter naming a hospital outside the caller's chain: an empty answer would
        still say something (e.g. that a foreign hospital made no referral)."""
        for org in organizations:
            if org and org not in self._scope:
                raise AuditDenied(
                    f"{self.caller.msp_id} does not supervise {org}; ask its own commission"
                )

    def _in_scope(self, fact: Fact) -> bool:
        """A fact naming a supervised hospital in any organisation attribute."""
        names: Iterable[str] = (v for k, v in fact.attributes if k in _ORG_ATTRIBUTES)
        return any(n in self._scope for name in names for n in name.split(","))


_ORG_ATTRIBUTES = frozenset(
    {"hospital", "from_hospital", "to_hospital", "target", "payer", "payee", "submitter", "org",
     "shared_with"}
)  # fmt: skip


def _regulators_above(config: NetworkConfig, regulator: str) -> list[str]:
    """MSP ids of `regulator` (a name or MSP id) and its parents, nearest first."""
    found: list[str] = []
    name: str | None = regulator
    while name:
        org = config.organization(name)
        if org.msp_id in found:
            break  # a cycle in a hand-edited config: stop rather than loop
        found.append(org.msp_id)
        name = org.parent
    return found


def _when(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _check_choice(value: str, option: str, choices: tuple[str, ...]) -> None:
    if value and value not in choices:
        raise InvalidArgument(f"{option} must be one of {', '.join(choices)}, not {value!r}")


def _check_period(period: str) -> None:
    if period and not (
        len(period) == 7 and period.isascii() and period[4] == "-" and period[:4].isdigit() and period[5:].isdigit()
        and 1 <= int(period[5:]) <= 12
    ):  # fmt: skip
        raise InvalidArgument(f"--period must be YYYY-MM (e.g. 2026-11), not {period!r}")
