"""Commit notifications: heights and transactions, registered before the ledger is read."""

from __future__ import annotations

import asyncio

import pytest

from medalliance.ledger.block_store import TxLocation
from medalliance.network.block_feed import BlockFeed


def test_a_tx_waiter_registered_first_is_woken_by_its_commit() -> None:
    async def scenario() -> None:
        feed = BlockFeed(height=1)
        future, cancel = feed.tx_waiter("tx1")
        other, _ = feed.tx_waiter("tx2")
        feed.published(2, [("other", 0), ("tx1", 11)])
        assert await asyncio.wait_for(future, 1) == TxLocation(1, 1, 11)
        assert not other.done()
        assert feed.height == 2
        cancel()  # after completion: harmless

    asyncio.run(scenario())


def test_waiting_for_a_height_returns_when_it_is_reached() -> None:
    async def scenario() -> None:
        feed = BlockFeed(height=1)
        waiter = asyncio.create_task(feed.wait_for_height(3))
        await asyncio.sleep(0)
        feed.published(2, [])
        await asyncio.sleep(0)
        assert not waiter.done()
        feed.published(3, [])
        assert await asyncio.wait_for(waiter, 1) is True
        assert await feed.wait_for_height(2) is True  # already there: no wait

    asyncio.run(scenario())


def test_closing_wakes_every_waiter() -> None:
    async def scenario() -> None:
        feed = BlockFeed(height=1)
        height = asyncio.create_task(feed.wait_for_height(5))
        future, _ = feed.tx_waiter("tx")
        await asyncio.sleep(0)
        feed.close()
        assert await asyncio.wait_for(height, 1) is False
        with pytest.raises(asyncio.CancelledError):
            await future

    asyncio.run(scenario())


def test_a_cancelled_interest_is_forgotten() -> None:
    async def scenario() -> None:
        feed = BlockFeed(height=1)
        future, cancel = feed.tx_waiter("tx")
        cancel()
        feed.published(2, [("tx", 0)])
        assert not future.done()

    asyncio.run(scenario())


def test_a_tx_id_repeated_in_a_block_is_located_at_its_first_occurrence() -> None:
    """As the block store indexes it: the replay later in the block (DUPLICATE_TXID) does not
    overwrite the first transaction's location, nor does a replay in a later block."""

    async def scenario() -> None:
        feed = BlockFeed(height=4)
        first, _ = feed.tx_waiter("tx")
        second, _ = feed.tx_waiter("tx")
        feed.published(5, [("a", 0), ("tx", 0), ("tx", 12)])
        assert await first == TxLocation(4, 1, 0)
        assert await second == TxLocation(4, 1, 0)
        feed.published(6, [("tx", 12)])  # nobody waits any more: nothing to complete
        assert await first == TxLocation(4, 1, 0)

    asyncio.run(scenario())
