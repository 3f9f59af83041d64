"""Submissions to a channel's host: a run of them costs the core one step, not one each.

One-consenter channel, real block store and hard-state log, real signatures; no sockets."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.unit.consensus.test_replica import transaction
from tests.unit.node.test_bft_channel_supervision import one_consenter_channel, until

from medalliance.consensus.replica import Tick


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
