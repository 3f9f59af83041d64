"""The health of one channel's supervised consensus core: failures, a safety halt, problems.

`BftChannel.supervise` records here what happened to the core's task; `/status` shows it and
`/healthz` turns unhealthy on any of `problems` (node/operations.py).
"""

from __future__ import annotations

from dataclasses import dataclass

FAILURES_UNHEALTHY = 3  # failures without a block decided in between: report unhealthy


@dataclass
class CoreHealth:
    channel_id: str
    halted: str | None = None  # why a safety check stopped the core for good
    failures: int = 0  # times the core's task failed and was restarted
    failures_in_a_row: int = 0  # since the last decided block
    last_failure: str | None = None  # the exception's type name: no message, no data
    running: bool = False

    def failed(self, exc: Exception) -> None:
        self.failures += 1
        self.failures_in_a_row += 1
        self.last_failure = type(exc).__name__

    def problems(self, *, retired: bool) -> list[str]:
        """Why this channel's ordering is not healthy; empty when it is."""
        found = []
        if self.halted is not None:
            found.append(f"consensus on {self.channel_id} halted: {self.halted}")
        elif self.failures_in_a_row >= FAILURES_UNHEALTHY:
            found.append(
                f"consensus on {self.channel_id} failed {self.failures_in_a_row} times "
                f"without deciding a block (last: {self.last_failure}); see the node's log"
            )
        elif self.failures and not self.running and not retired:
            found.append(f"consensus on {self.channel_id} is restarting after a failure")
        return found
