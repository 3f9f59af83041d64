"""Submissions to a channel's host: a run of them costs the core one step, not one each.

One-consenter channel, real block store and hard-state log, real signatures; no sockets."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import NOW
from tests.unit.consensus.test_replica import transaction
from tests.unit.node.test_bft_channel_supervision import (
    ORDERERS,
    genesis,
    one_consenter_channel,
    until,
)

from medalliance.consensus.replica import Tick
from medalliance.ledger.block_store import BlockStore
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.network.block_feed import BlockFeed
from medalliance.node.bft_channel import BftChannel


def test_submissions_before_the_next_step_share_one_tick_and_one_forward(
    tmp_path: Path,
) -> None:
    asyncio.run(_scenario(tmp_path))


async def _scenario(tmp_path: Path) -> None:
    forwarded: list[list[bytes]] = []
    channel, store = one_consenter_channel(tmp_path, forwarded.append)
    task = channel.start()
    try:
        await until(lambda: channel.health.running, "the core running")
        first = [transaction(f"a{i}") for i in range(5)]
        for tx in first:
            channel.submit(tx)
        queued = list(channel._inbox._internal)
        assert len([e for e in queued if isinstance(e, Tick)]) == 1  # not one per submission
        await until(lambda: len(forwarded) == 1, "the first arrivals forwarded")
        assert forwarded == [first]  # all five in one Forward
        later = transaction("b")
        channel.submit(later)  # after a step: a Tick again, so it is not left waiting
        await until(lambda: len(forwarded) == 2, "the later arrival forwarded")
        assert forwarded[1] == [later]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        channel.close()
        store.close()


def test_only_the_proposer_ticks_while_transactions_wait(tmp_path: Path) -> None:
    """A Tick only feeds a core that wants a value: the nodes that do not propose park their
    ticker though a transaction waits (waking 100 times a second cost each of them CPU), the
    proposer keeps ticking until its block is cut."""
    asyncio.run(_four_consenters(tmp_path))


async def _four_consenters(tmp_path: Path) -> None:
    signers = tuple(ORDERERS.signer(f"orderer{i}", ou="orderer") for i in range(4))
    block = genesis(signers)
    config = ChannelConfig.from_block(block)
    roles: list[str] = []
    for i, (signer, consenter) in enumerate(zip(signers, config.consenter_set, strict=True)):
        store = BlockStore.open(tmp_path / f"o{i}" / "blocks")
        store.append(block)
        channel = BftChannel(
            config=config,
            store=store,
            feed=BlockFeed(store.height),
            directory=tmp_path / f"o{i}",
            name=consenter.name,
            signer=signer,
            send=lambda to, data: None,
            forward=lambda envelopes: None,
            now=lambda: NOW,
        )
        task = channel.start()
        try:
            await until(lambda: channel.health.running, "the core running")  # noqa: B023
            channel.submit(transaction("t"))
            await until(lambda: not channel._arrival_queued, "the arrival stepped")  # noqa: B023
            if channel.replica.wants_value:
                await until(lambda: not channel.ticker_parked, "the proposer ticking")  # noqa: B023
                roles.append("ticks")
            else:
                await until(lambda: channel.ticker_parked, "the ticker parked")  # noqa: B023
                roles.append("parked")
            assert len(channel.replica.pending) == 1
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            channel.close()
            store.close()
    assert sorted(roles) == ["parked", "parked", "parked", "ticks"]
