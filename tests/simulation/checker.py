"""Invariants of consensus-design §5.4, checked as the simulation runs.

The checker is an outside observer: it outlives crashes, sees every message a correct node sends
and every block it commits, and raises `InvariantViolated` at the first breach.
"""

from __future__ import annotations

from collections.abc import Callable

from medalliance.consensus.hard_state import HardState
from medalliance.consensus.messages import (
    Kind,
    Message,
    Proposal,
    Vote,
    certificate_problem,
)
from medalliance.consensus.ready import Commit
from medalliance.consensus.validators import ValidatorSet
from tests.simulation.fakes import CHANNEL, KeyTable, value_ok


class InvariantViolated(AssertionError):
    """A safety or liveness property failed: the run is a counterexample."""


class Checker:
    def __init__(
        self,
        validators: ValidatorSet | Callable[[int], ValidatorSet],  # by height, if it changes
        correct: tuple[str, ...],
        keys: KeyTable,
    ) -> None:
        fixed = validators
        self._validators_at = (lambda height: fixed) if isinstance(fixed, ValidatorSet) else fixed
        self._correct = correct
        self._keys = keys
        self.decided: dict[int, bytes] = {}  # height -> value id, first seen on a correct node
        self._decided_by: dict[int, str] = {}
        self._signed: dict[tuple[str, int, int, Kind], bytes | None] = {}
        self._progress: dict[str, tuple[int, int]] = {}  # this incarnation's (height, round)
        self._committed: dict[str, int] = {}  # blocks committed in this incarnation
        self._acknowledged: dict[str, int] = {}  # highest height reported decided (Decided)
        self._sent_position: dict[str, tuple[int, int, int]] = {}

    def on_commit(self, node: str, commit: Commit) -> None:
        """Certified chain (2), agreement (1), one decision per height per incarnation (7)."""
        height, value = commit.height, commit.value
        problem = certificate_problem(
            commit.certificate,
            self._validators_at(height),
            channel=CHANNEL,
            height=height,
            value_id=value.value_id,
        )
        if problem is not None:
            self.fail(f"{node} committed height {height} with a bad certificate: {problem}")
        if not value_ok(value):
            self.fail(f"{node} committed height {height} with a body that is not the decided one")
        if not self._keys.certificate_ok(commit.certificate, value):
            self.fail(f"{node} committed height {height} with a forged certificate signature")
        expected = self._committed.get(node, -1)
        if expected >= 0 and height != expected + 1:
            self.fail(f"{node} committed height {height} after {expected}: heights not contiguous")
        self._committed[node] = height
        if node not in self._correct:
            return
        first = self.decided.setdefault(height, value.value_id)
        self._decided_by.setdefault(height, node)
        if first != value.value_id:
            self.fail(
                f"agreement violated at height {height}: {self._decided_by[height]} decided "
                f"{first.hex()[:12]}, {node} decided {value.value_id.hex()[:12]}"
            )

    def on_decided(self, node: str, height: int, durable_height: int) -> None:
        if durable_height < height:
            self.fail(f"{node} reported height {height} decided before it was durable")
        self._acknowledged[node] = max(height, self._acknowledged.get(node, 0))

    def on_sent(self, node: str, message: Message) -> None:
        """No correct node signs two different messages for one (h, r, kind), restarts included."""
        if node not in self._correct or not isinstance(message, Proposal | Vote):
            return
        if message.signer != node:
            return  # a forwarded vote of someone else
        kind = Kind.PROPOSAL if isinstance(message, Proposal) else message.kind
        value_id = message.value.value_id if isinstance(message, Proposal) else message.value_id
        key = (node, message.height, message.round, kind)
        earlier = self._signed.setdefault(key, value_id)
        if earlier != value_id:
            self.fail(f"{node} equivocated: two {kind.name}s at height {key[1]} round {key[2]}")
        position = (message.height, message.round, int(kind))
        self._sent_position[node] = max(position, self._sent_position.get(node, position))

    def on_step(self, node: str, height: int, round: int) -> None:
        """Per node and incarnation, (height, round) never decreases."""
        before = self._progress.get(node, (height, round))
        if (height, round) < before:
            self.fail(f"{node} went back from (h, r) = {before} to {(height, round)}")
        self._progress[node] = (height, round)

    def on_crash(self, node: str, durable: HardState | None, durable_height: int) -> None:
        """Durability (6): what was sent or acknowledged is on disk when the node goes down."""
        self._progress.pop(node, None)
        self._committed[node] = durable_height
        if self._acknowledged.get(node, 0) > durable_height:
            self.fail(f"{node} lost acknowledged block {self._acknowledged[node]} in a crash")
        sent = self._sent_position.get(node)
        last = None if durable is None or durable.last_signed is None else durable.last_signed
        if sent is not None and (last is None or last.position < sent):
            self.fail(f"{node} sent a message signed at {sent} that its durable LAST misses")

    def fail(self, message: str) -> None:
        raise InvariantViolated(message)
