"""What the host feeds the consensus machine (consensus-design §2.2), one at a time."""

from __future__ import annotations

from dataclasses import dataclass

from medalliance.consensus.hard_state import HardState
from medalliance.consensus.messages import Certificate, Message, Value
from medalliance.consensus.ready import Commit
from medalliance.consensus.timeouts import TimerKind
from medalliance.consensus.validators import ValidatorSet


@dataclass(frozen=True, slots=True)
class Start:
    """Begin at `height` (ledger tip + 1), restoring `hard_state` if it is of that height.

    `last_decision` is the ledger's tip with its certificate, relayed to peers one height behind.
    """

    height: int
    validators: ValidatorSet
    hard_state: HardState | None = None
    last_decision: Commit | None = None


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A peer's message whose signatures (including POL and certificate votes), membership and
    value id (matching the body) the host has already verified."""

    message: Message


@dataclass(frozen=True, slots=True)
class ProposalChecked:
    """The host's verdict of valid(v) for a value the machine asked about with `CheckValue`."""

    height: int
    round: int
    value_id: bytes
    is_valid: bool


@dataclass(frozen=True, slots=True)
class ValueReady:
    """The block cutter's answer to `NeedValue`: this node's own value to propose."""

    height: int
    round: int
    value: Value


@dataclass(frozen=True, slots=True)
class TxAvailable:
    """The mempool is non-empty: fed when it becomes so and after each decision while it stays so."""


@dataclass(frozen=True, slots=True)
class Timeout:
    """A timer the machine armed has fired; stale (height, round) pairs are ignored."""

    kind: TimerKind
    height: int
    round: int


@dataclass(frozen=True, slots=True)
class SyncedBlock:
    """A block fetched by block sync for the current height, its certificate already verified."""

    height: int
    value: Value
    certificate: Certificate


Input = Start | MessageReceived | ProposalChecked | ValueReady | TxAvailable | Timeout | SyncedBlock
