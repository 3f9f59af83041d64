"""What a node must remember across a crash (consensus-design §2.4, §2.8) and the typed stops.

Pure: the host writes and fsyncs a `HardState` before it sends anything from the same `Ready`.
Losing the lock or LAST would let a correct node contradict itself after a restart ("amnesia"),
so these records are safety state, not a cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from medalliance.consensus.messages import Kind, Signed, Value, Vote
from medalliance.errors import MedallianceError


class Step(IntEnum):
    PROPOSE = 0
    PREVOTE = 1
    PRECOMMIT = 2


@dataclass(frozen=True, slots=True)
class LastSigned:
    """LAST: the newest (height, round, kind) this node signed and what it signed."""

    height: int
    round: int
    kind: Kind
    value_id: bytes | None

    @property
    def position(self) -> tuple[int, int, int]:
        return (self.height, self.round, int(self.kind))


@dataclass(frozen=True, slots=True)
class HardState:
    """Everything of the current height that must survive a crash, as of the end of a `Ready`."""

    height: int
    round: int
    step: Step
    locked_round: int
    locked_value: Value | None
    valid_round: int
    valid_value: Value | None
    valid_pol: tuple[Vote, ...]
    last_signed: LastSigned | None
    sent: tuple[Signed, ...]  # own signed messages of the current round, re-sent as they are
    # q precommits of the round this node left by timeout: shown to peers still in that round.
    round_proof: tuple[Vote, ...] = ()


class ConsensusHalted(MedallianceError):
    """The node stopped rather than break a safety rule; an operator must look at its state."""


class WouldEquivocate(ConsensusHalted):
    """The core was about to sign a second, different message for one slot, or below LAST."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"refusing to sign: {detail}; the node stops so it cannot equivocate, "
            "check its hard state and report the bug"
        )


class CorruptHardState(ConsensusHalted):
    """The stored hard state is ahead of the ledger, which a correct host never writes."""

    def __init__(self, state_height: int, ledger_height: int) -> None:
        super().__init__(
            f"hard state is for height {state_height} but the ledger ends below {ledger_height}; "
            "restore the consensus directory and the ledger from the same node"
        )
        self.state_height = state_height
        self.ledger_height = ledger_height
