"""An ordering node's pending transactions for one channel, and when they make a block.

FIFO by arrival, one entry per tx id, bounded by the caller. `batch` applies Fabric's block
cutter rules to the head of the queue: up to MaxMessageCount transactions or PreferredMaxBytes
(one larger transaction goes alone), emitted when full or once the oldest has waited
BatchTimeout; a config update always goes alone. Transactions leave when a decided block holds
them, whoever proposed it. The digests of admitted envelopes are remembered so that validating a
proposal does not verify their signatures again.
"""

from __future__ import annotations

import collections
import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from medalliance.ledger.config_update import CONFIG_UPDATE
from medalliance.ledger.tx import parse_envelope


@dataclass(frozen=True, slots=True)
class Batch:
    """What the head of the mempool makes: a config update alone, or endorser transactions."""

    envelopes: tuple[bytes, ...] = field(repr=False)
    config_update: str | None = None  # the update's tx id when the batch is one config update
    fill_seconds: float = 0.0  # how long its first transaction waited (blockcutter metric)


class Mempool:
    def __init__(self) -> None:
        self._pending: collections.OrderedDict[str, tuple[bytes, float]] = collections.OrderedDict()
        self._verified: set[bytes] = set()

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._pending

    def add(self, tx_id: str, envelope: bytes) -> None:
        """An admitted envelope (its signature was verified)."""
        self._pending[tx_id] = (envelope, time.monotonic())
        self._verified.add(_digest(envelope))

    def verified(self, envelope: bytes) -> bool:
        return _digest(envelope) in self._verified

    def remove(self, tx_ids: Iterable[str]) -> None:
        for tx_id in tx_ids:
            entry = self._pending.pop(tx_id, None)
            if entry is not None:
                self._verified.discard(_digest(entry[0]))

    def batch(
        self, *, max_count: int, preferred_bytes: int, timeout_ms: int, now: float | None = None
    ) -> Batch | None:
        """The next block's transactions if the cutter's rules release them now, else None."""
        if not self._pending:
            return None
        first_id, (first, arrived) = next(iter(self._pending.items()))
        now = now or time.monotonic()
        if _is_update(first):
            return Batch((first,), config_update=first_id, fill_seconds=now - arrived)
        envelopes: list[bytes] = []
        size = 0
        for envelope, _ in self._pending.values():
            if _is_update(envelope):
                break  # a config update goes alone, in the next block
            if envelopes and (
                len(envelopes) >= max_count or size + len(envelope) > preferred_bytes
            ):
                break
            envelopes.append(envelope)
            size += len(envelope)
        waited = (now - arrived) * 1000 >= timeout_ms
        full = len(envelopes) < len(self._pending) or len(envelopes) >= max_count
        return Batch(tuple(envelopes), fill_seconds=now - arrived) if waited or full else None


def _is_update(envelope: bytes) -> bool:
    return bool(parse_envelope(envelope).header.header_type == CONFIG_UPDATE)


def _digest(envelope: bytes) -> bytes:
    return hashlib.sha256(envelope).digest()
