"""What a replica asks its host to do: typed effects, executed one by one, in order.

`Replica.step` (replica.py) returns a flat list of these. Every host — the ordering node
(node/bft_channel.py), the embedded network and the simulator (tests/simulation/host.py) —
runs them through `execute` below, so they share one reading of the contract
(consensus-design §2.2): hard state is on disk before anything that depends on it leaves the node,
a decided block is durable before the next height's hard state is written, then messages go out,
timers are armed and the remaining requests are served. A host only says *how* to do each one.

Hard states are cumulative: when a step yields several `PersistHardState` with nothing sent in
between, only the last is written (one fsync instead of several); a decided block may be
appended between them, which keeps "block h durable before h+1's state" (the state of h+1 is
still written after it). `restart_rebuilds` lets a host skip a state that a restart would
rebuild from what is on disk anyway.

`Reconfigured` follows the decided config block it comes from: the host installs what the replica
already acts on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, assert_never

from medalliance.consensus.hard_state import HardState, Step
from medalliance.consensus.ready import (
    ArmTimer,
    CheckValue,
    Commit,
    Decided,
    Evidence,
    NeedSync,
    NeedValue,
    Ready,
    Send,
)
from medalliance.consensus.validators import ValidatorSet


@dataclass(frozen=True, slots=True)
class PersistHardState:
    """Write and fsync the hard state before any later effect runs."""

    state: HardState


@dataclass(frozen=True, slots=True)
class AppendBlock:
    """Append the decided block with its commit certificate to the ledger and fsync it."""

    commit: Commit


@dataclass(frozen=True, slots=True)
class Forward:
    """Pass transactions this replica admitted to the other replicas, so any proposer has them."""

    envelopes: tuple[bytes, ...] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Reconfigured:
    """A config block decided (or synced) at `height - 1` is in force from `height`.

    The replica has already moved on: it runs `validators` with a fresh machine from `height`,
    or, `retired`, no longer votes and only follows the chain. The host installs `config` (its
    own reading of the block: a `ChannelConfig` on the node) and adapts its links.
    """

    height: int
    config: object = field(repr=False)
    validators: ValidatorSet
    retired: bool


Effect = (
    PersistHardState
    | AppendBlock
    | Send
    | ArmTimer
    | Forward
    | NeedSync
    | Evidence
    | Decided
    | Reconfigured
)
# NeedValue and CheckValue never leave the replica: it answers them itself (replica.py).
Internal = NeedValue | CheckValue


def flatten(ready: Ready) -> list[Effect | Internal]:
    """One `Ready` as effects in the order the contract requires."""
    out: list[Effect | Internal] = []
    if ready.persist is not None:
        out.append(PersistHardState(ready.persist))
    if ready.commit is not None:
        out.append(AppendBlock(ready.commit))
    out.extend(ready.send)
    out.extend(ready.timers)
    out.extend(ready.requests)
    return out


class EffectHost(Protocol):
    """How one host performs each effect; `execute` decides when."""

    def proceed(self) -> bool:
        """False stops the run (the process died mid-way: only the simulator says so)."""

    def persist_hard_state(self, state: HardState) -> None: ...
    def append_block(self, commit: Commit) -> None: ...
    def send_message(self, send: Send) -> None: ...
    def arm_timer(self, timer: ArmTimer) -> None: ...
    def forward_envelopes(self, envelopes: tuple[bytes, ...]) -> None: ...
    def request_sync(self, request: NeedSync) -> None: ...
    def record_evidence(self, evidence: Evidence) -> None: ...
    def note_decided(self, decided: Decided) -> None: ...
    def reconfigure(self, reconfigured: Reconfigured) -> None: ...


def execute(effects: Iterable[Effect], host: EffectHost) -> bool:
    """Run `effects` in order on `host`; False if the host stopped part-way."""
    effects = list(effects)
    superseded = _superseded(effects)
    for index, effect in enumerate(effects):
        if not host.proceed():
            return False
        match effect:
            case PersistHardState(state):
                if index not in superseded:
                    host.persist_hard_state(state)
            case AppendBlock(commit):
                host.append_block(commit)
            case Send():
                host.send_message(effect)
            case ArmTimer():
                host.arm_timer(effect)
            case Forward(envelopes):
                host.forward_envelopes(envelopes)
            case NeedSync():
                host.request_sync(effect)
            case Evidence():
                host.record_evidence(effect)
            case Decided():
                host.note_decided(effect)
            case Reconfigured():
                host.reconfigure(effect)
            case _:
                assert_never(effect)
    return True


def _superseded(effects: list[Effect]) -> set[int]:
    """Indexes of hard states followed by a later one before anything leaves the node."""
    found: set[int] = set()
    later = False  # a hard state follows, with nothing sent before it
    for index in range(len(effects) - 1, -1, -1):
        effect = effects[index]
        if isinstance(effect, PersistHardState):
            if later:
                found.add(index)
            later = True
        elif isinstance(effect, Send | Forward):
            later = False
    return found


def restart_rebuilds(state: HardState, stored: HardState | None, ledger_height: int) -> bool:
    """True when writing `state` is needless: it opens the ledger's next height at round 0 with
    nothing signed, locked, valid or proven there, and LAST is the stored one — exactly what
    `Start` rebuilds from `stored` after a crash (the machine's `_on_start`). A host that skips
    it still has `stored`, the newest state it wrote, on disk."""
    last = None if stored is None else stored.last_signed
    fresh = HardState(state.height, 0, Step.PROPOSE, -1, None, -1, None, (), last, ())
    return (
        state == fresh
        and state.height == ledger_height
        and (stored is None or stored.height < state.height)
    )
