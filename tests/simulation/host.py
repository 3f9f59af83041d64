"""The host shim of one simulated node: executes `Ready` records as production must.

Per `Ready`: write + fsync hard state, append + fsync the block, send, arm timers, serve
requests, in that order. The simulator may crash the node between any two of those stages.
Incoming messages are verified (signatures, value ids) before the core sees them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from medalliance.consensus.inputs import (
    Input,
    MessageReceived,
    ProposalChecked,
    Start,
    SyncedBlock,
    Timeout,
    TxAvailable,
    ValueReady,
)
from medalliance.consensus.machine import ConsensusMachine
from medalliance.consensus.messages import Message, Value
from medalliance.consensus.ready import (
    CheckValue,
    Commit,
    Decided,
    Evidence,
    NeedSync,
    NeedValue,
    Ready,
    Send,
)
from medalliance.consensus.timeouts import Timeouts
from tests.simulation.fakes import CHANNEL, FakeSigner, honest_value, is_valid
from tests.simulation.storage import SimStorage

if TYPE_CHECKING:
    from tests.simulation.simulator import Simulation

TIMEOUTS = Timeouts()
SYNC_BATCH_MAX = 16


@dataclass(frozen=True, slots=True)
class SyncRequest:
    from_height: int
    to_height: int


@dataclass(frozen=True, slots=True)
class SyncResponse:
    commits: tuple[Commit, ...]


Payload = Message | SyncRequest | SyncResponse


class Host:
    """An honest node: the real state machine plus simulated disk, ledger and network."""

    def __init__(self, sim: Simulation, node_id: str) -> None:
        self.sim = sim
        self.node_id = node_id
        self.signer = FakeSigner.for_node(node_id)
        self.storage = SimStorage()
        self.up = False
        self.incarnation = 0
        self.machine = ConsensusMachine(CHANNEL, self.signer, TIMEOUTS)

    @property
    def durable_height(self) -> int:
        return len(self.storage.ledger_durable)

    def boot(self) -> None:
        """Start (or restart) from durable storage only."""
        self.incarnation += 1
        self.up = True
        ledger = self.storage.ledger_durable
        self.machine = ConsensusMachine(CHANNEL, self.signer, TIMEOUTS)
        last = ledger[-1] if ledger else None
        start = Start(len(ledger) + 1, self.sim.validators, self.storage.hard_state_durable, last)
        self.feed(start)
        self.feed(TxAvailable())  # the workload always has transactions waiting

    def crash(self) -> None:
        self.up = False
        self.incarnation += 1  # timers and answers of the old process never arrive
        self.storage.crash(self.sim.rng("storage"))

    def feed(self, event: Input) -> None:
        if not self.up:
            return
        readies = self.machine.step(event)
        if self.node_id in self.sim.correct:
            self.sim.checker.on_step(self.node_id, self.machine.height, self.machine.round)
        for ready in readies:
            if not self._execute(ready):
                return

    def receive(self, payload: Payload, link_sender: str) -> None:
        if not self.up:
            return
        match payload:
            case SyncRequest(from_height, to_height):
                self._serve_sync(from_height, to_height, link_sender)
            case SyncResponse(commits):
                for commit in commits:
                    ok = self.sim.keys.certificate_ok(commit.certificate, commit.value)
                    if self.up and ok and commit.height == self.machine.height:
                        self.feed(SyncedBlock(commit.height, commit.value, commit.certificate))
            case _:
                if self.sim.keys.message_ok(payload, link_sender):
                    self.on_verified(payload)
                else:
                    self.sim.rejected += 1

    def on_verified(self, message: Message) -> None:
        self.feed(MessageReceived(message))

    @property
    def serves_sync(self) -> bool:
        return True

    def propose_value(self, height: int, round: int) -> Value:
        return honest_value(height, self.node_id)

    def send(self, message: Message, to: str | None) -> None:
        """Honest sending: one copy to `to`, or to every other validator."""
        for peer in self.peers() if to is None else (to,):
            self.sim.checker.on_sent(self.node_id, message)
            self.sim.transmit(self.node_id, peer, message)

    def peers(self) -> tuple[str, ...]:
        return tuple(i for i in self.sim.validators.ids if i != self.node_id)

    # --- Ready ----------------------------------------------------------------------------------

    def _execute(self, ready: Ready) -> bool:
        stages = self._stages(ready)
        crash_at = self.sim.crash_stage(self.node_id, len(stages))
        for index, stage in enumerate(stages):
            if index == crash_at:
                self.sim.crash(self.node_id)
                return False
            stage()
        return True

    def _stages(self, ready: Ready) -> list[Callable[[], None]]:
        stages: list[Callable[[], None]] = []
        state, commit = ready.persist, ready.commit
        if state is not None:
            stages += [lambda: self.storage.write_hard_state(state), self.storage.fsync_hard_state]
        if commit is not None:
            stages += [lambda: self._append(commit), self.storage.fsync_ledger]
        stages += [lambda s=send: self._send(s) for send in ready.send]
        stages.append(lambda: self._timers_and_requests(ready))
        return stages

    def _append(self, commit: Commit) -> None:
        self.storage.append_block(commit)
        self.sim.checker.on_commit(self.node_id, commit)

    def _send(self, send: Send) -> None:
        self.send(send.message, send.to)

    def _timers_and_requests(self, ready: Ready) -> None:
        for timer in ready.timers:
            timeout = Timeout(timer.kind, timer.height, timer.round)
            self.sim.input_later(self, timer.ticks, timeout)
        rng = self.sim.rng("workload")
        for request in ready.requests:
            match request:
                case NeedValue(height, round):
                    value = self.propose_value(height, round)
                    self.sim.input_later(self, rng.randint(1, 5), ValueReady(height, round, value))
                case CheckValue(height, round, value):
                    verdict = ProposalChecked(
                        height, round, value.value_id, is_valid(value, height)
                    )
                    self.sim.input_later(self, rng.randint(1, 3), verdict)
                case NeedSync(from_height, to_height, peer):
                    self.sim.transmit(self.node_id, peer, SyncRequest(from_height, to_height))
                case Evidence():
                    self.sim.evidence.append((self.node_id, request))
                case Decided(height):
                    self.sim.checker.on_decided(self.node_id, height, self.durable_height)
                    self.sim.input_later(self, 0, TxAvailable())

    def _serve_sync(self, from_height: int, to_height: int, peer: str) -> None:
        if not self.serves_sync:
            return
        ledger = self.storage.ledger_durable
        last = min(to_height, len(ledger), from_height + SYNC_BATCH_MAX - 1)
        if from_height <= last:
            commits = tuple(ledger[from_height - 1 : last])
            self.sim.transmit(self.node_id, peer, SyncResponse(commits))
