"""The host of one simulated node: the replica the ordering node runs, over simulated I/O.

The node's `Replica` (consensus/replica.py) with a workload `Application` of named values;
its effects run through the same `effects.execute` as in production. The simulator may crash
the node before any effect, and between the write and the fsync of hard state or a block.
Incoming messages are verified (signatures, value ids) before the core sees them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from medalliance.consensus.effects import Reconfigured, execute
from medalliance.consensus.hard_state import HardState
from medalliance.consensus.inputs import MessageReceived, Start, SyncedBlock, Timeout
from medalliance.consensus.machine import ConsensusMachine
from medalliance.consensus.messages import Message, Value
from medalliance.consensus.pending import Batch, CutRules
from medalliance.consensus.ready import ArmTimer, Commit, Decided, Evidence, NeedSync, Send
from medalliance.consensus.replica import (
    Admitted,
    Event,
    Reconfiguration,
    Replica,
    Submitted,
    Tick,
)
from medalliance.consensus.timeouts import Timeouts
from tests.simulation.fakes import CHANNEL, FakeSigner, honest_value, is_valid
from tests.simulation.storage import SimStorage

if TYPE_CHECKING:
    from tests.simulation.simulator import Simulation

TIMEOUTS = Timeouts()
SYNC_BATCH_MAX = 16
WORKLOAD = b"workload"  # one transaction that never leaves: a proposer always has a batch
EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class SyncRequest:
    from_height: int
    to_height: int


@dataclass(frozen=True, slots=True)
class SyncResponse:
    commits: tuple[Commit, ...]


Payload = Message | SyncRequest | SyncResponse


class SimApplication:
    """Values named after (height, proposer); valid(v) a pure function of value and height."""

    def __init__(self, host: Host) -> None:
        self._host = host

    def admit(self, envelope: bytes, at: dt.datetime) -> Admitted:
        return Admitted(envelope.decode())

    def propose(self, height: int, round: int, batch: Batch) -> Value | None:
        return self._host.propose_value(height, round)

    def valid(self, height: int, value: Value) -> bool:
        return is_valid(value, height)

    def tx_ids(self, value: Value) -> tuple[str, ...]:
        return ()

    def reconfiguration(self, height: int, value: Value) -> Reconfiguration | None:
        return None


class Host:
    """An honest node: the real replica plus simulated disk, ledger and network."""

    def __init__(self, sim: Simulation, node_id: str) -> None:
        self.sim = sim
        self.node_id = node_id
        self.signer = FakeSigner.for_node(node_id)
        self.storage = SimStorage()
        self.up = False
        self.incarnation = 0
        self.replica = self._replica()
        self._stage = 0
        self._crash_at: int | None = None

    def _replica(self) -> Replica:
        machine = ConsensusMachine(CHANNEL, self.signer, TIMEOUTS)
        return Replica(machine, SimApplication(self), CutRules(1, 1 << 20, 1), pending_max=8)

    @property
    def machine(self) -> ConsensusMachine:
        return self.replica.machine

    @property
    def durable_height(self) -> int:
        return len(self.storage.ledger_durable)

    def boot(self) -> None:
        """Start (or restart) from durable storage only."""
        self.incarnation += 1
        self.up = True
        ledger = self.storage.ledger_durable
        self.replica = self._replica()
        last = ledger[-1] if ledger else None
        start = Start(len(ledger) + 1, self.sim.validators, self.storage.hard_state_durable, last)
        self.replica.submit(Submitted(WORKLOAD, EPOCH, forward=False))
        self.feed(start)

    def crash(self) -> None:
        self.up = False
        self.incarnation += 1  # timers and answers of the old process never arrive
        self.storage.crash(self.sim.rng("storage"))

    def feed(self, event: Event) -> None:
        if not self.up:
            return
        effects = self.replica.step(event)
        if self.node_id in self.sim.correct:
            self.sim.checker.on_step(self.node_id, self.machine.height, self.machine.round)
        # stages: before each effect, and between write and fsync of hard state and blocks
        self._stage = 0
        self._crash_at = self.sim.crash_stage(self.node_id, 2 * len(effects) + 1)
        if execute(effects, self) and self.replica.wants_value:
            ticks = self.sim.rng("workload").randint(1, 5)  # the cutter's next tick
            self.sim.input_later(self, ticks, Tick(self.sim.now + ticks))

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

    # --- effects (EffectHost) -------------------------------------------------------------------

    def proceed(self) -> bool:
        """Crash here if the simulator chose this stage; False once down."""
        if self.up and self._stage == self._crash_at:
            self.sim.crash(self.node_id)
        self._stage += 1
        return self.up

    def persist_hard_state(self, state: HardState) -> None:
        self.storage.write_hard_state(state)
        if self.proceed():
            self.storage.fsync_hard_state()

    def append_block(self, commit: Commit) -> None:
        self.storage.append_block(commit)
        self.sim.checker.on_commit(self.node_id, commit)
        if self.proceed():
            self.storage.fsync_ledger()

    def send_message(self, send: Send) -> None:
        self.send(send.message, send.to)

    def arm_timer(self, timer: ArmTimer) -> None:
        timeout = Timeout(timer.kind, timer.height, timer.round)
        self.sim.input_later(self, timer.ticks, timeout)

    def forward_envelopes(self, envelopes: tuple[bytes, ...]) -> None:
        pass  # the workload is the same on every node

    def request_sync(self, request: NeedSync) -> None:
        sync = SyncRequest(request.from_height, request.to_height)
        self.sim.transmit(self.node_id, request.peer, sync)

    def record_evidence(self, evidence: Evidence) -> None:
        self.sim.evidence.append((self.node_id, evidence))

    def note_decided(self, decided: Decided) -> None:
        self.sim.checker.on_decided(self.node_id, decided.height, self.durable_height)

    def reconfigure(self, reconfigured: Reconfigured) -> None:
        pass

    def _serve_sync(self, from_height: int, to_height: int, peer: str) -> None:
        if not self.serves_sync:
            return
        ledger = self.storage.ledger_durable
        last = min(to_height, len(ledger), from_height + SYNC_BATCH_MAX - 1)
        if from_height <= last:
            commits = tuple(ledger[from_height - 1 : last])
            self.sim.transmit(self.node_id, peer, SyncResponse(commits))
