"""Block cutting: when pending transactions become a block. Pure: no clock, no I/O.

Fabric's rules (orderer BatchSize / BatchTimeout): a batch is cut when it holds
`count_max` transactions, when adding a transaction would push it past `preferred_max_bytes`
(that transaction starts the next batch; one larger than the preferred size goes alone), or when
its oldest transaction has waited `timeout_ticks`. Empty batches are never cut. Transactions above
`absolute_max_bytes` are refused before they get here (the ordering shell rejects them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import assert_never


@dataclass(frozen=True, slots=True)
class Submitted:
    tx_id: str
    envelope: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Tick:
    now_ticks: int  # time arrives as an input


@dataclass(frozen=True, slots=True)
class BlockCut:
    envelopes: tuple[bytes, ...] = field(repr=False)
    tx_ids: tuple[str, ...]


class BlockCutter:
    """Turns a stream of accepted transactions into batches by count, size and age."""

    def __init__(self, count_max: int, preferred_max_bytes: int, timeout_ticks: int) -> None:
        assert count_max >= 1
        assert preferred_max_bytes >= 1
        assert timeout_ticks >= 1
        self._count_max = count_max
        self._preferred_max_bytes = preferred_max_bytes
        self._timeout_ticks = timeout_ticks
        self._pending: list[Submitted] = []
        self._pending_bytes = 0
        self._now_ticks = 0
        self._oldest_ticks = 0

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def step(self, event: Submitted | Tick) -> list[BlockCut]:
        match event:
            case Submitted():
                return self._submit(event)
            case Tick(now_ticks):
                assert now_ticks >= self._now_ticks, "ticks never go back"
                self._now_ticks = now_ticks
                expired = now_ticks - self._oldest_ticks >= self._timeout_ticks
                return [self._cut()] if self._pending and expired else []
            case _:
                assert_never(event)

    def _submit(self, tx: Submitted) -> list[BlockCut]:
        cuts: list[BlockCut] = []
        size = len(tx.envelope)
        if self._pending and self._pending_bytes + size > self._preferred_max_bytes:
            cuts.append(self._cut())
        if not self._pending:
            # Time the batch from its first transaction, not from the last block, so a
            # transaction arriving after an idle spell still waits for others to join it.
            self._oldest_ticks = self._now_ticks
        self._pending.append(tx)
        self._pending_bytes += size
        if (
            len(self._pending) >= self._count_max
            or self._pending_bytes >= self._preferred_max_bytes
        ):
            cuts.append(self._cut())
        return cuts

    def _cut(self) -> BlockCut:
        block = BlockCut(
            envelopes=tuple(t.envelope for t in self._pending),
            tx_ids=tuple(t.tx_id for t in self._pending),
        )
        self._pending = []
        self._pending_bytes = 0
        return block
