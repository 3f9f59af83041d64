"""A replica's admitted, not yet ordered transactions, and when they make a block. Pure.

FIFO by arrival, one entry per tx id, bounded by the caller. `batch` applies Fabric's block
cutter rules (orderer BatchSize / BatchTimeout, as `block_cutter.py`) to the head of the queue:
up to MaxMessageCount transactions or PreferredMaxBytes (one larger transaction goes alone),
released when full or once the oldest has waited the timeout; an entry marked `alone` (a config
update) always goes alone. Time arrives as ticks; transactions leave when a decided block holds
them, whoever proposed it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class CutRules:
    max_count: int
    preferred_bytes: int
    timeout_ticks: int


@dataclass(frozen=True, slots=True)
class Batch:
    envelopes: tuple[bytes, ...] = field(repr=False)
    tx_ids: tuple[str, ...]
    alone: bool  # one entry that must be alone in its block (a config update)
    waited_ticks: int  # how long its first transaction waited (blockcutter metric)


@dataclass(frozen=True, slots=True)
class _Entry:
    envelope: bytes = field(repr=False)
    alone: bool
    arrived: int


class Pending:
    def __init__(self) -> None:
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        # kept as entries come and go, so that a Tick that finds nothing to cut (most of them,
        # 100 a second while a value is wanted) answers without walking the entries
        self._bytes = 0
        self._alone = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._entries

    def add(self, tx_id: str, envelope: bytes, *, alone: bool, now_ticks: int) -> None:
        self._drop(self._entries.get(tx_id))
        self._entries[tx_id] = entry = _Entry(envelope, alone, now_ticks)
        self._bytes += len(entry.envelope)
        self._alone += entry.alone

    def remove(self, tx_ids: Iterable[str]) -> None:
        for tx_id in tx_ids:
            self._drop(self._entries.pop(tx_id, None))

    def _drop(self, entry: _Entry | None) -> None:
        if entry is not None:
            self._bytes -= len(entry.envelope)
            self._alone -= entry.alone

    def batch(self, rules: CutRules, now_ticks: int) -> Batch | None:
        """The next block's transactions if the cutter's rules release them now, else None."""
        if not self._entries:
            return None
        first_id, first = next(iter(self._entries.items()))
        waited = now_ticks - first.arrived
        if first.alone:
            return Batch((first.envelope,), (first_id,), True, waited)
        if (
            waited < rules.timeout_ticks
            and len(self._entries) < rules.max_count
            and self._bytes <= rules.preferred_bytes
            and not self._alone
        ):
            return None  # every entry would fit one block that is neither full nor due
        envelopes: list[bytes] = []
        tx_ids: list[str] = []
        size = 0
        for tx_id, entry in self._entries.items():
            if entry.alone:
                break  # it goes alone, in the next block
            if envelopes and (
                len(envelopes) >= rules.max_count
                or size + len(entry.envelope) > rules.preferred_bytes
            ):
                break
            envelopes.append(entry.envelope)
            tx_ids.append(tx_id)
            size += len(entry.envelope)
        full = len(envelopes) < len(self._entries) or len(envelopes) >= rules.max_count
        if waited >= rules.timeout_ticks or full:
            return Batch(tuple(envelopes), tuple(tx_ids), False, waited)
        return None
