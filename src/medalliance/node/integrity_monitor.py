"""The integrity monitor's shell on a commission's peer: ask, compare, report, alarm.

On a schedule (`integrity_monitor.interval_s` of the peer's config) it asks every other peer's
operations endpoint (`GET /status?state_hash=1`) for, per channel, its height, last block header
hash and world-state hash, adds its own, and lets `audit.integrity` judge. The latest check is
in this peer's `/status` (`integrity`), so `network status` shows it; each new finding is logged
at WARNING once and passed to the `on_finding` hooks (the alarms contract raises an on-chain
alarm from there: docs/audit.md, "Integrity monitor").
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from medalliance.audit.integrity import (
    Finding,
    IntegrityCheck,
    LedgerDigest,
    compare_ledgers,
    new_findings,
)

log = logging.getLogger(__name__)

FindingHook = Callable[[Finding], None]
_MAX_ANSWER_BYTES = 1024 * 1024  # a status answer is a few kilobytes; refuse to buffer more


@dataclass(frozen=True, slots=True)
class WatchedPeer:
    host: str  # e.g. peer0.org1.example.com
    organization: str  # MSP id
    operations: str  # host:port of its operations endpoint


class IntegrityMonitor:
    """Runs on one peer; `own` gives this peer's digests (called on the event loop)."""

    def __init__(
        self,
        *,
        host: str,
        organization: str,
        own: Callable[[], Mapping[str, Mapping[str, Any]]],
        peers: list[WatchedPeer],
        interval_s: float,
        timeout_s: float,
        now: Callable[[], dt.datetime],
    ) -> None:
        self._host = host
        self._organization = organization
        self._own = own
        self._peers = peers
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._now = now
        self.latest: IntegrityCheck | None = None
        self.on_finding: list[FindingHook] = []  # e.g. raise an alarm on the chain
        self.on_check: list[Callable[[IntegrityCheck], None]] = []  # e.g. metrics

    async def run(self) -> None:
        """Check every interval, until cancelled; a failed round is logged. The first round
        waits one interval: at start-up the other peers are starting or catching up too."""
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.check_once()
            except Exception:  # the schedule must survive one bad round
                log.error("integrity check failed", exc_info=True, extra={"peer": self._host})

    async def check_once(self) -> IntegrityCheck:
        """One round: ask everyone, compare, log and hand over what is new."""
        answers = await asyncio.gather(*(self._ask(p) for p in self._peers))
        digests = _digests(self._host, self._organization, self._own())
        unreachable = []
        for peer, answer in zip(self._peers, answers, strict=True):
            if answer is None:
                unreachable.append(peer.host)
            else:
                digests.extend(_digests(peer.host, peer.organization, answer))
        at = self._now().astimezone(dt.UTC).isoformat(timespec="seconds")
        check = compare_ledgers(digests, at=at, unreachable=unreachable)
        fresh = new_findings(self.latest, check)
        before = set(self.latest.unreachable) if self.latest else set()
        self.latest = check
        for host in sorted(set(check.unreachable) - before):  # once, not every round
            log.info("integrity check: peer unreachable", extra={"peer": host})
        for finding in fresh:
            log.warning(
                "integrity finding: a peer's ledger diverges",
                extra={
                    "channel": finding.channel_id,
                    "height": finding.height,
                    "divergent_peer": finding.peer,
                    "msp_id": finding.organization,
                    "kind": finding.kind,
                    "expected": finding.expected,
                    "found": finding.found,
                },
            )
            for hook in self.on_finding:
                _call_hook(hook, finding)
        for observe in self.on_check:
            _call_hook(observe, check)
        return check

    def status(self) -> dict[str, Any]:
        """The latest check for `/status` (None before the first round)."""
        if self.latest is None:
            return {"checked": None, "findings": [], "unreachable": [], "channels": []}
        check = self.latest
        return {
            "checked": check.at,
            "findings": [
                {**dataclasses.asdict(f), "agreeing": list(f.agreeing), "message": f.describe()}
                for f in check.findings
            ],
            "unreachable": list(check.unreachable),
            "channels": [dataclasses.asdict(c) for c in check.channels],
        }

    async def _ask(self, peer: WatchedPeer) -> Mapping[str, Any] | None:
        url = f"http://{peer.operations}/status?state_hash=1"
        try:
            return await asyncio.to_thread(_fetch_ledgers, url, self._timeout_s)
        except (OSError, ValueError, urllib.error.URLError) as exc:
            log.debug(
                "integrity check: peer did not answer",
                extra={"peer": peer.host, "reason": type(exc).__name__},
            )
            return None


def _call_hook(hook: Callable[[Any], None], argument: object) -> None:
    """A failing hook (an alarm that could not be submitted) is logged; it must not stop the
    other hooks or the round, which has already recorded the finding."""
    try:
        hook(argument)
    except Exception:
        log.error("integrity hook failed", exc_info=True, extra={"hook": repr(hook)[:80]})


def _fetch_ledgers(url: str, timeout_s: float) -> Mapping[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout_s) as reply:  # noqa: S310 - http only
        body = reply.read(_MAX_ANSWER_BYTES + 1)
    if len(body) > _MAX_ANSWER_BYTES:
        raise ValueError("status answer too large")
    ledgers = json.loads(body).get("ledgers")
    if not isinstance(ledgers, dict):
        raise ValueError("status answer without ledgers")
    return ledgers


def _digests(host: str, organization: str, ledgers: Mapping[str, Any]) -> list[LedgerDigest]:
    """The well-formed entries of a `ledgers` answer; a malformed one is left out (its peer
    then simply is not compared on that channel)."""
    found = []
    for channel_id, entry in ledgers.items():
        if not isinstance(entry, Mapping):
            continue
        height, block_hash, state_hash = (
            entry.get("height"),
            entry.get("blockHash"),
            entry.get("stateHash"),
        )
        if isinstance(height, int) and isinstance(block_hash, str) and isinstance(state_hash, str):
            found.append(
                LedgerDigest(host, organization, str(channel_id), height, block_hash, state_hash)
            )
    return found
