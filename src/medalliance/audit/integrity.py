"""The integrity monitor's judgement: which peers hold a ledger the others do not.

The commission's node asks every peer it can reach for, per channel, its height, the header
hash of its last block and the hash of its world state at that height (docs/audit.md,
"Integrity monitor"). This module compares those answers; the node's shell does the asking,
the logging and the alarm. Pure: no clock, no I/O; the time of a check arrives as an input.

A peer is named only when a strict majority of the peers compared at the same height agree
and it does not: with two peers that differ, nobody can tell which one is wrong, so the
channel is reported as `undecided` and no peer is named.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

FindingKind = Literal["block-hash", "state-hash"]


@dataclass(frozen=True, slots=True)
class LedgerDigest:
    """What one peer says of one channel: its height and the hashes at that height."""

    peer: str  # host name, e.g. peer0.org1.example.com
    organization: str  # MSP id
    channel_id: str
    height: int  # blocks stored; the state hash is over the state after block height - 1
    block_hash: str  # hex header hash of block height - 1
    state_hash: str  # hex world-state digest at that height


@dataclass(frozen=True, slots=True)
class Finding:
    """A peer whose ledger differs from what the majority holds at the same height."""

    channel_id: str
    height: int
    peer: str
    organization: str
    kind: FindingKind  # which hash differs (a different block implies a different state)
    expected: str  # the majority's hash
    found: str  # the peer's hash
    agreeing: tuple[str, ...]  # the majority's peers, sorted

    def describe(self) -> str:
        what = "last block header hash" if self.kind == "block-hash" else "world-state hash"
        return (
            f"{self.peer} ({self.organization}) diverges on channel {self.channel_id} at height "
            f"{self.height}: its {what} {self.found[:16]}… differs from {self.expected[:16]}… "
            f"held by {len(self.agreeing)} peers"
        )


@dataclass(frozen=True, slots=True)
class ChannelCheck:
    """One channel in one round of checks."""

    channel_id: str
    height: int  # the height compared: the one most peers are at (the higher on a tie)
    compared: tuple[str, ...]  # peers at that height, sorted
    other_height: tuple[str, ...]  # peers answering at another height: not compared this time
    undecided: bool  # the compared peers disagree and no strict majority exists


@dataclass(frozen=True, slots=True)
class IntegrityCheck:
    """One round of the monitor: what was compared and who diverges."""

    at: str  # ISO 8601 UTC time of the round (an input)
    channels: tuple[ChannelCheck, ...]
    findings: tuple[Finding, ...]
    unreachable: tuple[str, ...]  # peers that gave no usable answer, sorted

    @property
    def divergent_peers(self) -> tuple[str, ...]:
        return tuple(sorted({f.peer for f in self.findings}))


def compare_ledgers(
    digests: Iterable[LedgerDigest], *, at: str, unreachable: Iterable[str] = ()
) -> IntegrityCheck:
    """Compare every channel's digests at a common height and name the peers that diverge."""
    by_channel: dict[str, list[LedgerDigest]] = {}
    for digest in digests:
        by_channel.setdefault(digest.channel_id, []).append(digest)
    channels: list[ChannelCheck] = []
    findings: list[Finding] = []
    for channel_id in sorted(by_channel):
        check, found = _compare_channel(channel_id, by_channel[channel_id])
        channels.append(check)
        findings.extend(found)
    return IntegrityCheck(at, tuple(channels), tuple(findings), tuple(sorted(set(unreachable))))


def new_findings(previous: IntegrityCheck | None, current: IntegrityCheck) -> list[Finding]:
    """Findings of `current` that `previous` did not have (by channel, peer and kind): what to
    log and alarm once, rather than at every round while the divergence lasts."""
    seen = {_identity(f) for f in previous.findings} if previous else set()
    return [f for f in current.findings if _identity(f) not in seen]


def _identity(finding: Finding) -> tuple[str, str, str]:
    return finding.channel_id, finding.peer, finding.kind


def _compare_channel(
    channel_id: str, digests: Sequence[LedgerDigest]
) -> tuple[ChannelCheck, list[Finding]]:
    heights = Counter(d.height for d in digests)
    # The height most peers are at; on a tie the higher one (the network is moving forward).
    height = max(heights, key=lambda h: (heights[h], h))
    at_height = sorted((d for d in digests if d.height == height), key=lambda d: d.peer)
    others = tuple(sorted(d.peer for d in digests if d.height != height))
    compared = tuple(d.peer for d in at_height)
    findings, undecided = _minority(at_height, "block-hash")
    if not undecided:
        same_block = [d for d in at_height if d.peer not in {f.peer for f in findings}]
        state_findings, undecided = _minority(same_block, "state-hash")
        findings += state_findings
    check = ChannelCheck(channel_id, height, compared, others, undecided)
    return check, findings


def _minority(digests: Sequence[LedgerDigest], kind: FindingKind) -> tuple[list[Finding], bool]:
    """The digests outside a strict majority on one hash; (findings, undecided)."""

    def value(d: LedgerDigest) -> str:
        return d.block_hash if kind == "block-hash" else d.state_hash

    votes = Counter(value(d) for d in digests)
    if len(votes) <= 1:
        return [], False
    majority, count = votes.most_common(1)[0]
    if 2 * count <= len(digests):
        return [], True
    agreeing = tuple(sorted(d.peer for d in digests if value(d) == majority))
    findings = [
        Finding(d.channel_id, d.height, d.peer, d.organization, kind, majority, value(d), agreeing)
        for d in digests
        if value(d) != majority
    ]
    return findings, False
