"""The host of one simulated node: the replica the ordering node runs, over simulated I/O.

The node's `Replica` (consensus/replica.py) with a workload `Application` of named values;
its effects run through the same `effects.execute` as in production. The simulator may crash
the node before any effect, and between the write and the fsync of hard state or a block.
Incoming messages are verified (signatures, value ids) before the core sees them. A retired
node (not in the set in force) stores the certified blocks it pulls itself, as the ordering
node does, and hands them to its replica, which a config block may vote in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from medalliance.consensus.effects import Reconfigured, execute, restart_rebuilds
from medalliance.consensus.hard_state import HardState
from medalliance.consensus.inputs import MessageReceived, Start, SyncedBlock, Timeout
from medalliance.consensus.machine import ConsensusMachine
from medalliance.consensus.messages import Message, Value, certificate_problem
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
from medalliance.consensus.validators import ValidatorSet
from tests.simulation.fakes import CHANNEL, FakeSigner, config_of, honest_value, is_valid
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


SIM_RULES = CutRules(1, 1 << 20, 1)


class SimApplication:
    """Values named after (height, proposer); valid(v) a pure function of value and height:
    at a height the plan reconfigures, the value must name exactly the planned validators."""

    def __init__(self, host: Host) -> None:
        self._host = host

    def admit(self, envelope: bytes, at: dt.datetime) -> Admitted:
        return Admitted(envelope.decode())

    def propose(self, height: int, round: int, batch: Batch) -> Value | None:
        return self._host.propose_value(height, round)

    def valid(self, height: int, value: Value) -> bool:
        return is_valid(value, height) and config_of(value) == self._host.sim.plan.get(height)

    def unorderable(self, batch: Batch) -> tuple[str, ...]:
        return ()  # what was admitted stays orderable

    def tx_ids(self, value: Value) -> tuple[str, ...]:
        return ()

    def reconfiguration(self, height: int, value: Value) -> Reconfiguration | None:
        names = config_of(value)
        return None if names is None else Reconfiguration(names, ValidatorSet(names), SIM_RULES)


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
        # The incarnation whose cutter tick is pending: one tick chain per process, as a node
        # has one clock. Without it every step that left the replica wanting a value started
        # another chain, and a lone validator (deciding in every step) multiplied them until
        # simulated time all but stopped (seed 7201, n = 1, swarm).
        self._ticking: int | None = None

    def _replica(self) -> Replica:
        machine = ConsensusMachine(CHANNEL, self.signer, TIMEOUTS)
        return Replica(machine, SimApplication(self), SIM_RULES, pending_max=8)

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
        height = len(ledger) + 1
        validators = self.sim.validators_at(height)  # as the config blocks of its ledger say
        start = Start(height, validators, self.storage.hard_state_durable, last)
        self.replica.submit(Submitted(WORKLOAD, EPOCH, forward=False))
        self.feed(start)
        if self.up and self._pulls:
            self.sim.follow_later(self)

    def crash(self) -> None:
        self.up = False
        self.incarnation += 1  # timers and answers of the old process never arrive
        self.storage.crash(self.sim.rng("storage"))

    def feed(self, event: Event) -> None:
        if not self.up:
            return
        if isinstance(event, Tick):
            self._ticking = None
        effects = self.replica.step(event)
        if self.node_id in self.sim.correct and not self.replica.retired:
            self.sim.checker.on_step(self.node_id, self.machine.height, self.machine.round)
        # stages: before each effect, and between write and fsync of hard state and blocks
        self._stage = 0
        self._crash_at = self.sim.crash_stage(self.node_id, 2 * len(effects) + 1)
        if (
            execute(effects, self)
            and self.replica.wants_value
            and self._ticking != self.incarnation
        ):
            ticks = self.sim.rng("workload").randint(1, 5)  # the cutter's next tick
            self._ticking = self.incarnation
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
                    if self.up and ok and self.replica.retired:
                        self._store_followed(commit)
                    elif self.up and ok and commit.height == self.machine.height:
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
        return honest_value(height, self.node_id, self.sim.plan.get(height))

    def send(self, message: Message, to: str | None) -> None:
        """Honest sending: one copy to `to`, or to every other validator."""
        for peer in self.peers() if to is None else (to,):
            self.sim.checker.on_sent(self.node_id, message)
            self.sim.transmit(self.node_id, peer, message)

    def peers(self) -> tuple[str, ...]:
        validators = self.replica.validators or self.sim.validators
        return tuple(i for i in validators.ids if i != self.node_id)

    @property
    def _pulls(self) -> bool:
        """Whether this node pulls blocks all the time, as an ordering node does: when retired,
        and with reconfigurations at all (a validator left behind in a set the others have
        left hears from no one: only a pull brings it the block that retires it)."""
        return self.replica.retired or self.sim.config.reconfigure

    def follow(self) -> None:
        """Ask another node for the blocks after ours, and again later."""
        if not self._pulls:
            return
        start = len(self.storage.ledger_written) + 1
        others = [i for i in self.sim.ids if i != self.node_id]
        if others:
            peer = self.sim.rng("workload").choice(others)
            self.sim.transmit(self.node_id, peer, SyncRequest(start, start + SYNC_BATCH_MAX - 1))
        self.sim.follow_later(self)

    def _store_followed(self, commit: Commit) -> None:
        """The next block, certified by the set in force: stored, then given to the replica."""
        validators = self.replica.validators
        if validators is None or commit.height != len(self.storage.ledger_written) + 1:
            return
        problem = certificate_problem(
            commit.certificate,
            validators,
            channel=CHANNEL,
            height=commit.height,
            value_id=commit.value.value_id,
        )
        if problem is not None:
            self.sim.rejected += 1
            return
        self.storage.append_block(commit)
        self.sim.checker.on_commit(self.node_id, commit)
        self.storage.fsync_ledger()
        self.feed(SyncedBlock(commit.height, commit.value, commit.certificate))

    # --- effects (EffectHost) -------------------------------------------------------------------

    def proceed(self) -> bool:
        """Crash here if the simulator chose this stage; False once down."""
        if self.up and self._stage == self._crash_at:
            self.sim.crash(self.node_id)
        self._stage += 1
        return self.up

    def persist_hard_state(self, state: HardState) -> None:
        if restart_rebuilds(
            state, self.storage.hard_state_durable, len(self.storage.ledger_durable) + 1
        ):
            return  # as the ordering node does (node/bft_channel.py)
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
        self.incarnation += 1  # the ended machine's timers (its resend chain too) end with it
        self.sim.follow_later(self)  # the pull chain of the old incarnation ended too

    def _serve_sync(self, from_height: int, to_height: int, peer: str) -> None:
        if not self.serves_sync:
            return
        ledger = self.storage.ledger_durable
        last = min(to_height, len(ledger), from_height + SYNC_BATCH_MAX - 1)
        if from_height <= last:
            commits = tuple(ledger[from_height - 1 : last])
            self.sim.transmit(self.node_id, peer, SyncResponse(commits))
