"""Other peers' ledger heights, as the discovery service reports them.

Fabric's peers learn each other's heights by gossip; ours have no gossip, so a peer asks the
others' operations endpoints (`GET /status`, plain HTTP, the heights `network status` shows).
A refresh runs at most once per `min_interval_s` and concurrent callers share it, so a flood of
discovery requests never becomes a flood of requests to other peers. A peer that does not
answer keeps the heights last learnt (none: 0, which sorts it last in Fabric's SDKs).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

REFRESH_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class HeightSource:
    host: str  # <name>.<domain>
    operations: str  # host:port of its operations endpoint


class PeerHeights:
    """Heights per channel of each other peer, by host name."""

    def __init__(self, peers: Sequence[HeightSource], min_interval_s: float = 1.0) -> None:
        self._peers = tuple(peers)
        self._min_interval_s = min_interval_s
        self._heights: dict[str, dict[str, int]] = {}
        self._refreshed = -float("inf")
        self._running: asyncio.Task[None] | None = None

    def of(self, host: str) -> Mapping[str, int]:
        return self._heights.get(host, {})

    async def refresh(self) -> None:
        """Ask every peer now unless that was done less than `min_interval_s` ago; a refresh
        in progress is awaited, not repeated."""
        if self._running is None:
            if time.monotonic() - self._refreshed < self._min_interval_s:
                return
            self._running = asyncio.create_task(self._refresh(), name="peer-heights")
        task = self._running
        try:
            await asyncio.shield(task)
        finally:
            if task.done() and self._running is task:
                self._running = None

    async def _refresh(self) -> None:
        answers = await asyncio.gather(
            *(asyncio.to_thread(_fetch_heights, p.operations) for p in self._peers),
            return_exceptions=True,
        )
        for peer, answer in zip(self._peers, answers, strict=True):
            if isinstance(answer, BaseException):
                log.debug("peer height not known", extra={"peer": peer.host})
                continue
            self._heights[peer.host] = answer
        self._refreshed = time.monotonic()


def _fetch_heights(operations: str) -> dict[str, int]:
    url = f"http://{operations}/status"
    with urllib.request.urlopen(url, timeout=REFRESH_TIMEOUT_S) as reply:
        status = json.loads(reply.read(1 << 20))
    channels = status.get("channels", {}) if isinstance(status, dict) else {}
    return {str(c): int(h) for c, h in channels.items() if isinstance(h, int)}
