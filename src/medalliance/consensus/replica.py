"""One ordering replica of one channel: admission, cutting, valid(v), consensus. Pure.

`step(event)` takes one event and returns the effects (effects.py) its host must execute, in
order. No clock, disk, network or asyncio: time arrives as `Tick`s (and as the `at` of a
submission), the chain is read through the `Application`, and everything the replica wants done
comes back as an effect. The node (node/bft_channel.py) and the simulator
(tests/simulation/host.py) run this same class; they differ only in their `Application` and in
how they perform effects.

Around the consensus machine (machine.py) the replica
- admits submissions (`Application.admit`: signature, policy, duplicates in the chain), holds
  them in `Pending` (bounded) and forwards the ones clients gave it to the other replicas;
- answers the machine's `NeedValue` with a batch the cutter's rules release (on a later `Tick`
  if none is due yet), built into a value by `Application.propose`;
- answers `CheckValue` with `Application.valid`, a deterministic function of the proposal and
  the chain below it — never of what happens to be pending here (consensus-design §3.3);
- drops ordered transactions from `Pending` when a block is decided or synced, and tells the
  machine transactions are waiting whenever some are;
- reconfigures: a decided or synced config block (`Application.reconfiguration`) ends the
  machine at its height. The next height starts with a fresh machine under the block's
  validators and cut rules, or, voted out, the replica retires: it votes no more and follows the
  chain through `SyncedBlock`s, one of which may vote it in again. `Reconfigured` tells the host.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Protocol, assert_never

from medalliance.consensus.effects import (
    Effect,
    Forward,
    PersistHardState,
    Reconfigured,
    flatten,
)
from medalliance.consensus.hard_state import HardState
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
from medalliance.consensus.messages import Value
from medalliance.consensus.pending import Batch, CutRules, Pending
from medalliance.consensus.ready import CheckValue, Commit, Decided, NeedValue
from medalliance.consensus.validators import ValidatorSet
from medalliance.errors import DuplicateTransaction, Overloaded


@dataclass(frozen=True, slots=True)
class Admitted:
    tx_id: str
    alone: bool = False  # must be alone in its block (a config update)


@dataclass(frozen=True, slots=True)
class Submitted:
    """A transaction for ordering: from a client (forwarded on) or forwarded by another replica."""

    envelope: bytes = field(repr=False)
    at: dt.datetime
    forward: bool = True


@dataclass(frozen=True, slots=True)
class Tick:
    now_ticks: int  # never goes back


@dataclass(frozen=True, slots=True)
class Reconfiguration:
    """What a config block puts in force from the next height, read from the block alone."""

    config: object = field(repr=False)  # the host's reading of the block, passed on to it
    validators: ValidatorSet
    rules: CutRules


@dataclass(frozen=True, slots=True)
class _Reconfigure:
    """The machine decided a config block: end it there (internal to `step`)."""

    commit: Commit
    change: Reconfiguration


Event = Start | MessageReceived | Timeout | SyncedBlock | Tick


class Application(Protocol):
    """What is being ordered; every method is deterministic over its arguments and the chain."""

    def admit(self, envelope: bytes, at: dt.datetime) -> Admitted:
        """Check a submission; raise a MedallianceError to refuse it."""

    def propose(self, height: int, round: int, batch: Batch) -> Value | None:
        """The value proposing `batch` at `height`, or None when it cannot be proposed (a batch
        of one config update that no longer applies is then dropped)."""

    def valid(self, height: int, value: Value) -> bool: ...

    def unorderable(self, batch: Batch) -> tuple[str, ...]:
        """The tx ids of `batch` that `valid` would refuse in a block of it: admitted once, they
        no longer can be ordered (a creator revoked or removed by a config update, a certificate
        expired since). They leave `Pending`: kept, every proposal holding them would be invalid
        and the channel would order nothing more."""

    def tx_ids(self, value: Value) -> tuple[str, ...]:
        """The transactions a decided value orders (they leave `Pending`)."""

    def reconfiguration(self, height: int, value: Value) -> Reconfiguration | None:
        """What the decided value at `height` puts in force if it is a config block, else None."""


class Replica:
    def __init__(
        self, machine: ConsensusMachine, app: Application, rules: CutRules, pending_max: int
    ) -> None:
        self.machine = machine
        self.app = app
        self.rules = rules
        self.pending = Pending()
        self._pending_max = pending_max
        self._now = 0
        self._want: tuple[int, int] | None = None  # the machine asked us for a value
        self._cut_this_step = False
        self._started = False
        self._to_forward: list[bytes] = []  # admitted since the last step
        self._arrived = False  # Pending became non-empty since the last step
        self.proposals = 0
        self.last_cut_waited_ticks = 0
        self.validators: ValidatorSet | None = None  # the set in force, from `Start` on
        self.retired = False  # not a validator: follows the chain only
        self._follow_height = 0  # while retired: the next block expected
        self._durable: HardState | None = None  # the latest hard state handed to the host

    def restart(self, machine: ConsensusMachine) -> None:
        """A fresh machine (after a failure or a reconfiguration); what is pending stays.
        Feed `Start` next."""
        self.machine = machine
        self._want = None
        self._started = False

    @property
    def height(self) -> int:
        """The height being decided, or, retired, the next block followed."""
        return self._follow_height if self.retired else self.machine.height

    @property
    def wants_value(self) -> bool:
        """The machine waits for a value: feed `Tick`s until it is cut."""
        return self._want is not None

    def submit(self, event: Submitted) -> str:
        """Admit a transaction into `Pending`; its tx id. Raises what `Application.admit` raises,
        `DuplicateTransaction` or `Overloaded`, with nothing kept. Acted on (forwarded, offered
        to the machine) by the next `step`: the caller learns the verdict at once, the machine
        runs only in the host's loop."""
        admitted = self.app.admit(event.envelope, event.at)
        if admitted.tx_id in self.pending:
            raise DuplicateTransaction(admitted.tx_id)
        if len(self.pending) >= self._pending_max:
            raise Overloaded("the ordering service's queue is full")
        self._arrived |= not self.pending
        self.pending.add(admitted.tx_id, event.envelope, alone=admitted.alone, now_ticks=self._now)
        if event.forward:
            self._to_forward.append(event.envelope)
        return admitted.tx_id

    def step(self, event: Event) -> list[Effect]:
        """Apply one event; the effects to execute, in order."""
        inputs: deque[Input] = deque()
        out: list[Effect] = []
        self._cut_this_step = False
        if self._to_forward:
            out.append(Forward(tuple(self._to_forward)))
            self._to_forward = []
        match event:
            case Start():
                self.validators, self._durable = event.validators, event.hard_state
                self.retired = not event.validators.contains(self.machine.node_id)
                self._follow_height = event.height
                self._started = not self.retired
                if self._started:
                    inputs.append(event)
                    if self.pending:
                        inputs.append(TxAvailable())
            case MessageReceived() | Timeout():
                if not self.retired:
                    inputs.append(event)
            case SyncedBlock() if self.retired:
                out.extend(self._follow(event, inputs))
            case SyncedBlock():
                self.pending.remove(self.app.tx_ids(event.value))
                inputs.append(event)
            case Tick(now_ticks):
                self._now = max(self._now, now_ticks)
            case _:
                assert_never(event)
        if self._arrived and self._started and not isinstance(event, Start):
            inputs.append(TxAvailable())
        self._arrived = self._arrived and not self._started
        self._cut(inputs)
        while inputs:
            for item in self._machine_step(inputs.popleft()):
                match item:
                    case NeedValue(height, round_):
                        self._want = (height, round_)
                        self._cut(inputs)
                    case CheckValue(height, round_, value):
                        verdict = self.app.valid(height, value)
                        inputs.append(ProposalChecked(height, round_, value.value_id, verdict))
                    case Decided():
                        out.append(item)
                        if self.pending:
                            inputs.append(TxAvailable())
                    case _Reconfigure(commit, change):
                        inputs.clear()  # answers meant for the machine that just ended
                        out.append(self._reconfigure(commit, change, inputs))
                    case PersistHardState(state):
                        self._durable = state
                        out.append(item)
                    case _:
                        out.append(item)
        return out

    def _machine_step(self, event: Input) -> list[Effect | CheckValue | NeedValue | _Reconfigure]:
        result: list[Effect | CheckValue | NeedValue | _Reconfigure] = []
        for ready in self.machine.step(event):
            result.extend(flatten(ready))
            if ready.commit is not None:
                commit = ready.commit
                self.pending.remove(self.app.tx_ids(commit.value))
                change = self.app.reconfiguration(commit.height, commit.value)
                if change is not None:
                    # What this machine did at the next height never leaves the node: that
                    # height belongs to the machine the new configuration starts.
                    result.append(_Reconfigure(commit, change))
                    break
        return result

    def _reconfigure(
        self, commit: Commit, change: Reconfiguration, inputs: deque[Input]
    ) -> Reconfigured:
        """Put `change` in force from the height after `commit`: a fresh machine under the new
        validators (pending transactions stay), or retirement when this node is not one."""
        height = commit.height + 1
        # Followers' propose timeout must outlast the proposer's batch timeout (timeouts.py):
        # it moves with it, keeping the host's margin.
        timeouts = self.machine.timeouts
        shift = change.rules.timeout_ticks - self.rules.timeout_ticks
        base = max(1, timeouts.propose_base_ticks + shift)
        self.validators, self.rules = change.validators, change.rules
        self.retired = not change.validators.contains(self.machine.node_id)
        self._follow_height = height
        self.restart(self.machine.fresh(replace(timeouts, propose_base_ticks=base)))
        if not self.retired:
            self._started = True
            inputs.append(Start(height, change.validators, self._durable, commit))
            if self.pending:
                inputs.append(TxAvailable())
        return Reconfigured(height, change.config, change.validators, self.retired)

    def _follow(self, event: SyncedBlock, inputs: deque[Input]) -> list[Effect]:
        """A retired replica's view of the chain: only a config block can bring it back."""
        if event.height != self._follow_height:
            return []
        self._follow_height += 1
        self.pending.remove(self.app.tx_ids(event.value))
        change = self.app.reconfiguration(event.height, event.value)
        if change is None:
            return []
        commit = Commit(event.height, event.value, event.certificate)
        return [self._reconfigure(commit, change, inputs)]

    def _cut(self, inputs: deque[Input]) -> None:
        """Answer a pending NeedValue once the cutter's rules release a batch."""
        if self._want is None or self._cut_this_step:
            return  # one value per step: a run of decisions yields between heights
        height, round_ = self._want
        if (height, round_) != (self.machine.height, self.machine.round):
            self._want = None  # the machine moved on
            return
        batch = self.pending.batch(self.rules, self._now)
        while batch is not None and not batch.alone and (stale := self.app.unorderable(batch)):
            self.pending.remove(stale)  # each turn removes some: the loop ends
            batch = self.pending.batch(self.rules, self._now)
        if batch is None:
            return
        value = self.app.propose(height, round_, batch)
        if value is None:
            if batch.alone:  # a config update stale since admission: its submitter redoes it
                self.pending.remove(batch.tx_ids)
            return
        self._want = None
        self._cut_this_step = True
        self.proposals += 1
        self.last_cut_waited_ticks = batch.waited_ticks
        inputs.append(ValueReady(height, round_, value))
