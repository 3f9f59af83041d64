"""Commit notifications inside one node process: wait for a height or for a transaction.

A `BlockFeed` is fed by whatever appends blocks (a peer's commit path, an orderer's block store)
and read by the Deliver, CommitStatus and ChaincodeEvents handlers. Waiters register before they
look at the ledger, so a block that lands in between wakes them (protocol doc §0 step 4).
Everything runs on the node's event loop; no locks are needed.

A transaction waiter is completed with where its transaction committed (block, position,
validation code), the same first occurrence the block store indexes, so CommitStatus answers
without reading the index again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from medalliance.ledger.block_store import TxLocation


class BlockFeed:
    """The height of one channel's ledger, and futures for heights and transaction ids."""

    def __init__(self, height: int) -> None:
        self._height = height
        self._changed = asyncio.Event()
        self._tx_waiters: dict[str, list[asyncio.Future[TxLocation]]] = {}
        self._closed = False

    @property
    def height(self) -> int:
        return self._height

    @property
    def closed(self) -> bool:
        return self._closed

    def published(self, height: int, txs: Sequence[tuple[str, int]]) -> None:
        """Record that the ledger grew to `height`, block `height - 1` committing `txs`
        ((tx id, validation code) in block order)."""
        self._height = max(self._height, height)
        if self._tx_waiters:
            for tx_num, (tx_id, code) in enumerate(txs):
                # pop: a tx id repeated later in the block is not its first location
                waiters = self._tx_waiters.pop(tx_id, None)
                if waiters:
                    location = TxLocation(height - 1, tx_num, code)
                    for future in waiters:
                        if not future.done():
                            future.set_result(location)
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for_height(self, height: int) -> bool:
        """Wait until the ledger holds `height` blocks; False if the feed closed first."""
        while self._height < height:
            if self._closed:
                return False
            await self._changed.wait()
        return True

    def tx_waiter(self, tx_id: str) -> tuple[asyncio.Future[TxLocation], Callable[[], None]]:
        """A future completed with `tx_id`'s location when it commits, and a function that
        drops the interest."""
        future: asyncio.Future[TxLocation] = asyncio.get_running_loop().create_future()
        self._tx_waiters.setdefault(tx_id, []).append(future)

        def cancel() -> None:
            waiters = self._tx_waiters.get(tx_id)
            if waiters and future in waiters:
                waiters.remove(future)
                if not waiters:
                    del self._tx_waiters[tx_id]

        return future, cancel

    def close(self) -> None:
        """Wake every waiter: the node is shutting down."""
        self._closed = True
        for waiters in self._tx_waiters.values():
            for future in waiters:
                if not future.done():
                    future.cancel()
        self._tx_waiters.clear()
        self._changed.set()
