"""Free the slots held by referrals their target left unanswered past the acceptance deadline.

One round: ask the resource contract which holds lapsed before `at` (`LapsedHolds`), then submit
`referral.ReleaseLapsedHold` for each as the sweeping user (any member may; the contract checks
the deadline against the transaction's time). A hold released meanwhile — by the origin, a
rejection, another sweeper — or whose release lost an MVCC race is refused or invalidated with a
conflict; the round counts it as skipped, the next round sees it gone. Run by the alarm runner
(app/alarm_runner.py) and by `medalliance referral sweep-holds`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field

from medalliance.app.alliance_network import AllianceNetwork
from medalliance.errors import Conflict

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SweepReport:
    released: list[tuple[str, str]] = field(default_factory=list)  # (referral id, tx id)
    skipped: list[str] = field(default_factory=list)  # released elsewhere or not yet lapsed


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sweep_holds(network: AllianceNetwork, org: str, user: str, at: str = "") -> SweepReport:
    """Release every hold lapsed before `at` (default: now), as `user` of `org`."""
    report = SweepReport()
    raw = network.evaluate(org, user, "resource", "LapsedHolds", at or now_iso())
    for hold in json.loads(raw) if raw else []:
        referral_id = str(hold["referralId"])
        try:
            done = network.submit(org, user, "referral", "ReleaseLapsedHold", referral_id)
        except Conflict:
            report.skipped.append(referral_id)
            continue
        report.released.append((referral_id, done.tx_id))
        log.info("lapsed hold released", extra={"referral": referral_id, "tx": done.tx_id})
    return report
