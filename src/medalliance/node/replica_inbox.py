"""The ordering replica's inbox on a node: bounded for what peers send, never for its own timers.

Messages from other ordering nodes are offered and refused once `bound` wait (the caller counts
the drop; retransmission, consensus-design §2.10, brings them again). Timers and cutter ticks
the replica armed itself are pushed and never refused: dropping one could stall a height, and
the replica arms only a few per step.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    def __init__(self, bound: int) -> None:
        self._bound = bound
        self._external: deque[T] = deque()
        self._internal: deque[T] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._external) + len(self._internal)

    def offer(self, item: T) -> bool:
        """A peer's input: False (not queued) when `bound` are waiting already."""
        if len(self._external) >= self._bound:
            return False
        self._external.append(item)
        self._ready.set()
        return True

    def push(self, item: T) -> None:
        """The replica's own timer or tick: always queued."""
        self._internal.append(item)
        self._ready.set()

    async def get(self) -> T:
        """The next item: the replica's own first, so timers fire even under a flood."""
        while not (self._internal or self._external):
            self._ready.clear()
            await self._ready.wait()
        return self._internal.popleft() if self._internal else self._external.popleft()
