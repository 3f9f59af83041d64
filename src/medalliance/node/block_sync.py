"""Pulling one channel's certified blocks from the other ordering nodes, only when needed.

A consenter pulls while it is behind (the replica's `NeedSync`, `catch_up_plan.py` decides),
and, when no block came for `IDLE_CHECK_S`, asks one other node (the next one each time) what
it holds (a validator left in a set the others have left hears from no one). A retired node takes no part in
consensus, so nothing would tell it it lags: it follows the chain all the time. Every pulled
block goes through `on_block` (`BftChannel.synced`: chain link and certificate checked), so a
lying source costs a call, never a bad block.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from fabric_protos.common import common_pb2

from medalliance.node.catch_up_plan import CatchUpPlan
from medalliance.node.orderer_link import OrdererLink

log = logging.getLogger(__name__)

IDLE_CHECK_S = 5.0  # no block this long: ask the others once (a few propose timeouts)


class BlockSync:
    """One channel's pulls: at most one catch-up at a time, or the retired node's follow."""

    def __init__(
        self,
        channel_id: str,
        source: OrdererLink,
        height: Callable[[], int],
        on_block: Callable[[common_pb2.Block], bool],
        *,
        idle_s: float = IDLE_CHECK_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._channel_id = channel_id
        self._source = source
        self._height = height
        self._on_block = on_block
        self._clock = clock
        self.plan = CatchUpPlan(idle_s)
        self.pulled = 0  # blocks stored from other ordering nodes
        self._pull: asyncio.Task[None] | None = None  # the catch-up, or the retired follow
        self._following = False
        self._idle: asyncio.Task[None] | None = None

    def start(self, *, retired: bool) -> None:
        """Begin the idle check (and, retired, the follow) on the running loop."""
        self._idle = asyncio.get_running_loop().create_task(self._idle_checks())
        self.set_retired(retired)

    def request(self, to_height: int, peer: str) -> None:
        """The replica lacks blocks up to `to_height`, which `peer` holds."""
        if self._following or self._idle is None:
            return  # the follow fetches them anyway (or not started: nothing to run on)
        if self.plan.request(self._height(), to_height, peer):
            self._pull = asyncio.get_running_loop().create_task(self._catch_up())

    def set_retired(self, retired: bool) -> None:
        """Voted out: follow the chain from now on; voted in: stop following."""
        if retired == self._following or self._idle is None:
            return
        if self._pull is not None:
            self._pull.cancel()
        self.plan.ended()
        self._following = retired
        self._pull = None
        if retired:
            pull = self._source.pull(self._channel_id, self._height, self._store)
            self._pull = asyncio.get_running_loop().create_task(pull)

    def status(self) -> dict[str, object]:
        return {
            "running": self.plan.running or self._following,
            "following": self._following,
            "catchUps": self.plan.runs,
            "blocksPulled": self.pulled,
        }

    def close(self) -> None:
        for task in (self._pull, self._idle):
            if task is not None:
                task.cancel()

    async def _catch_up(self) -> None:
        try:
            await self._source.catch_up(
                self._channel_id,
                self._height,
                self._store,
                lambda: self.plan.target,
                self.plan.prefer,
                # the quiet-spell check asks one node, the next one next time: it must not
                # make an idle network busy
                patience=1 if self.plan.target is None else None,
            )
        except Exception:  # a bug, not a bad source (those the link handles): the next asks again
            log.error("catch-up failed", exc_info=True, extra={"channel": self._channel_id})
        finally:
            if self._pull is asyncio.current_task():  # not one replaced by the follow
                self.plan.ended()

    async def _idle_checks(self) -> None:
        while True:
            await asyncio.sleep(self.plan.idle_s / 2)  # a quiet spell is seen within 1.5 idle_s
            if not self._following and self.plan.idle_check(self._height(), self._clock()):
                self._pull = asyncio.get_running_loop().create_task(self._catch_up())

    def _store(self, block: common_pb2.Block) -> None:
        if self._on_block(block):
            self.pulled += 1
