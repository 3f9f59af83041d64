"""The alarm runner a health commission runs: committed blocks in, alarms on the chain out.

It reads its organisation's peer from the genesis block (`AllianceNetwork.blocks`), turns each
block into facts (audit/facts.py) and feeds them, with the block's time, to the rules
(audit/rules.py). Each finding that concerns the commission's jurisdiction — a hospital it
supervises directly, the commission itself, or the network as a whole — is raised with the
`alarm` contract as the commission's user; an overdue referral is escalated to its parent.

Exactly once, across restarts: an alarm's id is derived from the commission, the rule and the
finding's key, the checkpoint (app/alarm_checkpoint.py) remembers what was raised and the last
block done, and the contract refuses an id it already holds — which the runner counts as raised.
The rules' state is rebuilt by reading from genesis on every start (the rules are pure and fast);
only the chain writes are skipped for blocks already done.

Integrity: given a source of its peer's integrity findings (app/integrity_status.py), the runner
also raises `integrity.divergence` (audit/rules.py `integrity_alarm`) for each peer the monitor
names on this channel — after the blocks it read, and while following at most every
`integrity_every_s` seconds as blocks arrive. A divergence is raised once while it lasts, across
restarts (the checkpoint remembers it until the monitor stops naming it).

Holds: with `hold_sweep`, each of those rounds also frees the slots held by referrals left
unanswered past their acceptance deadline (app/hold_sweep.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from fabric_protos.common import common_pb2

from medalliance.app.alarm_checkpoint import AlarmCheckpoint
from medalliance.app.alliance_network import AllianceNetwork
from medalliance.app.hold_sweep import now_iso, sweep_holds
from medalliance.audit.facts import facts_of_block, iso_time
from medalliance.audit.integrity import Finding
from medalliance.audit.rules import (
    DEFAULT_RULES,
    AlarmToRaise,
    RuleEngine,
    RuleSet,
    integrity_alarm,
)
from medalliance.errors import ContractError
from medalliance.ledger.tx import MalformedTransaction, parse_envelope

log = logging.getLogger(__name__)

ALARM_CONTRACT = "alarm"
# The findings of the commission's peer's integrity monitor; None: not known (no monitor, no
# check yet, not reachable).
IntegritySource = Callable[[], Sequence[Finding] | None]


@dataclass(frozen=True, slots=True)
class RaisedAlarm:
    alarm_id: str
    rule_id: str
    subjects: tuple[str, ...]
    tx_id: str  # "" when the chain already held it (a lost checkpoint)
    block: int  # the block whose facts found it


@dataclass(slots=True)
class RunReport:
    raised: list[RaisedAlarm] = field(default_factory=list)
    already: int = 0  # findings whose alarm was raised before (checkpoint or chain)
    ignored: int = 0  # findings outside the commission's jurisdiction
    last_block: int = -1


def alarm_id(commission: str, alarm: AlarmToRaise) -> str:
    """The id of a finding's alarm: the same commission, rule and key give the same id (a new
    rule version does not raise the same finding again)."""
    digest = hashlib.sha256(f"{commission}|{alarm.rule_id}|{alarm.key}".encode()).hexdigest()
    return f"ALM-{digest[:24]}"


class AlarmRunner:
    """One commission's runner on one channel, acting as one of its users (auditor/reviewer)."""

    def __init__(
        self,
        network: AllianceNetwork,
        org: str,
        user: str,
        checkpoint: AlarmCheckpoint,
        rules: RuleSet = DEFAULT_RULES,
        *,
        integrity: IntegritySource | None = None,
        integrity_every_s: float = 10.0,
        hold_sweep: bool = False,
    ) -> None:
        self._network = network
        self._org = org
        self._user = user
        self._checkpoint = checkpoint
        self._rules = rules
        self._integrity = integrity
        self._integrity_every_s = integrity_every_s
        self._hold_sweep = hold_sweep
        self.holds_released: list[tuple[str, str]] = []
        self.msp_id = network.layout.config.organization(org).msp_id

    def run(
        self, until: int | None = None, on_raise: Callable[[RaisedAlarm], None] | None = None
    ) -> RunReport:
        """Read from genesis through block `until` (None: the current height when embedded,
        forever over the network) and raise every new alarm; returns what was done."""
        jurisdiction, parent = self._jurisdiction()
        engine = RuleEngine(self._rules)
        done = self._checkpoint.last_block()
        report = RunReport(last_block=done)
        now = ""
        checked = time.monotonic()
        for block in self._network.blocks(self._org, 0, until):
            number = int(block.header.number)
            now = max(now, _block_time(block))
            found = engine.step(facts_of_block(block, self._network.channel), now)
            for alarm in found:
                if alarm.organizations and not jurisdiction.intersection(alarm.organizations):
                    report.ignored += 1
                    continue
                _tally(report, self._raise_once(alarm, number, parent), on_raise)
            if number > done:
                self._checkpoint.set_last_block(number)
                done = report.last_block = number
            if until is None and time.monotonic() - checked >= self._integrity_every_s:
                self._integrity_round(report, on_raise)
                self._sweep_round(now)
                checked = time.monotonic()
        self._integrity_round(report, on_raise)
        self._sweep_round(now)
        return report

    def _sweep_round(self, block_time: str) -> None:
        """Free the slots of referrals left unanswered past their deadline (app/hold_sweep.py),
        as of the later of the last block's time and the wall clock (both as `now_iso` writes)."""
        if self._hold_sweep:
            at = max(block_time, now_iso())
            found = sweep_holds(self._network, self._org, self._user, at)
            self.holds_released.extend(found.released)

    def _integrity_round(
        self, report: RunReport, on_raise: Callable[[RaisedAlarm], None] | None
    ) -> None:
        """Raise each divergence the peer's monitor names on this channel, once while it
        lasts; forget those it no longer names."""
        findings = self._integrity() if self._integrity is not None else None
        if findings is None:
            return
        current = {
            f"{f.channel_id}|{f.peer}|{f.kind}": f
            for f in findings
            if f.channel_id == self._network.channel
        }
        lasting = self._checkpoint.divergences()
        for identity in lasting.keys() - current.keys():
            self._checkpoint.end_divergence(identity)
        for identity, finding in sorted(current.items()):
            if identity in lasting:
                report.already += 1
                continue
            alarm = integrity_alarm(finding, self._rules)
            raised = self._raise_once(alarm, report.last_block, "")
            self._checkpoint.note_divergence(identity, alarm_id(self.msp_id, alarm))
            _tally(report, raised, on_raise)

    def _jurisdiction(self) -> tuple[frozenset[str], str]:
        """The organisations whose findings this commission raises (itself and the hospitals
        it supervises directly) and its parent commission ("" for none)."""
        raw = self._network.evaluate(self._org, self._user, "registry", "ListOrganizations")
        organizations: Iterable[dict[str, object]] = json.loads(raw)
        mine = {self.msp_id}
        parent = ""
        for org in organizations:
            above = org.get("regulatorsAbove")
            if isinstance(above, list) and above[:1] == [self.msp_id]:
                mine.add(str(org["mspId"]))
            if org.get("mspId") == self.msp_id:
                parent = str(org.get("parent") or "")
        return frozenset(mine), parent

    def _raise_once(self, alarm: AlarmToRaise, block: int, parent: str) -> RaisedAlarm | None:
        """Raise the alarm unless it is already on the chain; the raised alarm, or None."""
        ident = alarm_id(self.msp_id, alarm)
        if self._checkpoint.is_raised(ident):
            return None
        try:
            done = self._network.submit(
                self._org,
                self._user,
                ALARM_CONTRACT,
                "RaiseAlarm",
                ident,
                alarm.rule_id,
                str(alarm.rule_version),
                alarm.severity,
                json.dumps(list(alarm.subjects)),
                json.dumps(list(alarm.triggers)),
                parent if alarm.escalate else "",
            )
        except ContractError as exc:
            if exc.status_code != 409:
                raise
            # Raised by an earlier run whose checkpoint was lost: the chain is the judge.
            self._checkpoint.note_raised(ident, alarm.rule_id, "", block)
            return None
        self._checkpoint.note_raised(ident, alarm.rule_id, done.tx_id, block)
        log.info(
            "alarm raised",
            extra={"alarm": ident, "rule": alarm.rule_id, "block": block, "tx": done.tx_id},
        )
        return RaisedAlarm(ident, alarm.rule_id, alarm.subjects, done.tx_id, block)


def _tally(
    report: RunReport, raised: RaisedAlarm | None, on_raise: Callable[[RaisedAlarm], None] | None
) -> None:
    """Count one alarm of a run: raised now (and announced), or raised before."""
    if raised is None:
        report.already += 1
        return
    report.raised.append(raised)
    if on_raise is not None:
        on_raise(raised)


def _block_time(block: common_pb2.Block) -> str:
    """The latest transaction time of a block ("" for none): the rules' `now`."""
    latest = ""
    for data in block.data.data:
        try:
            header = parse_envelope(bytes(data)).header
        except MalformedTransaction:
            continue
        latest = max(latest, iso_time(header.timestamp_ms))
    return latest
