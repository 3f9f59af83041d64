"""Round timeouts in ticks (consensus-design §2.1): linear growth per round, capped, per height."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class TimerKind(Enum):
    PROPOSE = "propose"
    PREVOTE = "prevote"
    PRECOMMIT = "precommit"
    RESEND = "resend"  # periodic retransmission (§2.10); not tied to a height or round


@dataclass(frozen=True, slots=True)
class Timeouts:
    """T_x(r) = base_x + r·delta_x, capped at `max_ticks`. Defaults are 10 ms ticks on a LAN.

    Followers' propose timeout must exceed the proposer's batch timeout plus a few message delays
    (§3.6), or they prevote NIL while an honest proposer is still filling its batch.
    """

    propose_base_ticks: int = 70  # BatchTimeout 0.2 s + 0.5 s
    propose_delta_ticks: int = 50
    prevote_base_ticks: int = 50
    prevote_delta_ticks: int = 25
    precommit_base_ticks: int = 50
    precommit_delta_ticks: int = 25
    max_ticks: int = 3000
    resend_ticks: int = 50

    def __post_init__(self) -> None:
        assert min(self.propose_base_ticks, self.prevote_base_ticks, self.precommit_base_ticks) > 0
        assert min(self.propose_delta_ticks, self.prevote_delta_ticks) >= 0
        assert self.precommit_delta_ticks >= 0
        assert self.max_ticks > 0
        assert self.resend_ticks > 0

    def ticks(self, kind: TimerKind, round: int) -> int:
        match kind:
            case TimerKind.PROPOSE:
                base, delta = self.propose_base_ticks, self.propose_delta_ticks
            case TimerKind.PREVOTE:
                base, delta = self.prevote_base_ticks, self.prevote_delta_ticks
            case TimerKind.PRECOMMIT:
                base, delta = self.precommit_base_ticks, self.precommit_delta_ticks
            case TimerKind.RESEND:
                return self.resend_ticks
        return min(base + round * delta, self.max_ticks)
