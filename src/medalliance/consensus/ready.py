"""What the machine asks the host to do: `Ready` records, executed field by field, in order.

Contract (consensus-design §2.2, §2.8, etcd-raft's): for each `Ready`, the host
1. writes and fsyncs `persist` (hard state, with the block bodies it references),
2. appends `commit` to the ledger and fsyncs,
3. sends `send`,
4. arms `timers`,
5. serves `requests`,
and only then turns to the next `Ready`. Nothing unpersisted ever leaves the node, so a crash at
any point is safe. A step that decides returns one `Ready` closing the height and another opening
the next, because hard state of height h+1 may only be written once block h is durable.
"""

from __future__ import annotations

from dataclasses import dataclass

from medalliance.consensus.hard_state import HardState
from medalliance.consensus.messages import Certificate, Message, Signed, Value
from medalliance.consensus.timeouts import TimerKind
from medalliance.consensus.votes import Equivocation


@dataclass(frozen=True, slots=True)
class Commit:
    """A decided block with its commit certificate."""

    height: int
    value: Value
    certificate: Certificate


@dataclass(frozen=True, slots=True)
class Send:
    """Send `message` to peer `to`, or to every other validator when `to` is None."""

    message: Message
    to: str | None = None


@dataclass(frozen=True, slots=True)
class ArmTimer:
    """Fire `Timeout(kind, height, round)` after `ticks`. Timers are never cancelled: stale ones
    are ignored by the machine."""

    kind: TimerKind
    height: int
    round: int
    ticks: int


@dataclass(frozen=True, slots=True)
class NeedValue:
    """Ask the block cutter for a value to propose at (height, round); answer with `ValueReady`."""

    height: int
    round: int


@dataclass(frozen=True, slots=True)
class CheckValue:
    """Judge valid(value) against the ledger below `height`; answer with `ProposalChecked`."""

    height: int
    round: int
    value: Value


@dataclass(frozen=True, slots=True)
class NeedSync:
    """Fetch blocks from_height..to_height from `peer`, verify them, feed them as `SyncedBlock`."""

    from_height: int
    to_height: int
    peer: str


@dataclass(frozen=True, slots=True)
class Evidence:
    """Proof that a validator equivocated: keep it, it is usable between hospitals."""

    equivocation: Equivocation

    @property
    def culprit(self) -> str:
        first: Signed = self.equivocation.first
        return first.signer


@dataclass(frozen=True, slots=True)
class Decided:
    """Block `height` is durable in the ledger: tell Deliver and waiting clients."""

    height: int
    value_id: bytes


Request = NeedValue | CheckValue | NeedSync | Evidence | Decided


@dataclass(frozen=True, slots=True)
class Ready:
    """One batch of work for the host, fields in the order it must execute them."""

    persist: HardState | None = None
    commit: Commit | None = None
    send: tuple[Send, ...] = ()
    timers: tuple[ArmTimer, ...] = ()
    requests: tuple[Request, ...] = ()

    def is_empty(self) -> bool:
        return (
            self.persist is None
            and self.commit is None
            and not self.send
            and not self.timers
            and not self.requests
        )


class ReadyBuilder:
    """Collects one step's outputs; `build` turns them into a `Ready` and starts afresh."""

    def __init__(self) -> None:
        self.commit: Commit | None = None
        self.sends: list[Send] = []
        self.timers: list[ArmTimer] = []
        self.requests: list[Request] = []

    def send(self, message: Message, to: str | None = None) -> None:
        self.sends.append(Send(message, to))

    def request(self, request: Request) -> None:
        self.requests.append(request)

    def arm(self, kind: TimerKind, height: int, round: int, ticks: int) -> None:
        self.timers.append(ArmTimer(kind, height, round, ticks))

    def build(self, persist: HardState | None) -> Ready:
        ready = Ready(
            persist, self.commit, tuple(self.sends), tuple(self.timers), tuple(self.requests)
        )
        self.commit, self.sends, self.timers, self.requests = None, [], [], []
        return ready
