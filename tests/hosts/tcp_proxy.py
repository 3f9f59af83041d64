"""A user-space TCP relay between test hosts whose faults the tests change while it runs.

This kernel has no `tc netem`, so links get their latency and loss here: a `Relay` listens on
one address and connects each accepted connection to its target, copying bytes both ways. Per
direction (`up`: towards the target, `down`: back) it adds a delay to every chunk (order kept).

TCP itself never loses bytes, so loss is modelled as what a lossy path does to a TCP user:
connections reset at random (`reset_chance` per chunk relayed; the relay closes both sides,
as a retransmission timeout would end them) and stalls (`stall_chance` per chunk: the chunk
and all after it wait `stall_s` more, as a burst of lost segments would). `cut` refuses new
connections and drops established ones. Randomness comes from one seeded `random.Random`, so
a run's fault pattern can be replayed.

`RelaySet` runs relays on one asyncio loop in a background thread; `set_faults` is safe to call
from the test thread. For tests only: no limits, no TLS (the nodes' own TLS passes through).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

CHUNK_BYTES = 65536


@dataclass(frozen=True, slots=True)
class Faults:
    """What one direction of a link does to the bytes it carries."""

    delay_s: float = 0.0
    reset_chance: float = 0.0
    stall_chance: float = 0.0
    stall_s: float = 0.0


@dataclass(slots=True)
class Relay:
    """`listen` (host, port) relayed to `target` (host, port)."""

    listen: tuple[str, int]
    target: tuple[str, int]
    up: Faults = Faults()
    down: Faults = Faults()
    cut: bool = False
    accepted: int = 0  # connections accepted so far (a test can see its link was used)
    resets: int = 0  # connections reset by `reset_chance`
    bytes_relayed: int = 0  # both directions
    _open: set[asyncio.StreamWriter] = field(default_factory=set)


class RelaySet:
    """Relays served from one background event loop; `seed` fixes the loss pattern."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.Server] = []
        self.relays: dict[str, Relay] = {}

    def add(self, name: str, listen: tuple[str, int], target: tuple[str, int]) -> Relay:
        """Start relaying `listen` to `target`; raises OSError when `listen` is taken."""
        relay = Relay(listen, target)

        async def start() -> asyncio.Server:
            return await asyncio.start_server(
                lambda r, w: self._serve(relay, r, w), *listen, reuse_address=True
            )

        server = asyncio.run_coroutine_threadsafe(start(), self._loop).result()
        self._servers.append(server)
        relay.listen = server.sockets[0].getsockname()[:2]  # the port chosen for port 0
        self.relays[name] = relay
        return relay

    def set_faults(
        self, name: str, *, up: Faults | None = None, down: Faults | None = None, cut: bool = False
    ) -> None:
        """Change a link's faults (both directions when only `up` is given); `cut` also drops
        the connections it carries now. Faults() everywhere and cut=False heal it. In force
        when this returns."""

        async def change() -> None:
            relay = self.relays[name]
            relay.up = up or Faults()
            relay.down = down or relay.up
            relay.cut = cut
            if cut:
                for writer in list(relay._open):
                    writer.transport.abort()

        asyncio.run_coroutine_threadsafe(change(), self._loop).result()

    @contextlib.contextmanager
    def running(self) -> Iterator[RelaySet]:
        self._thread.start()
        try:
            yield self
        finally:
            for server in self._servers:
                self._loop.call_soon_threadsafe(server.close)
            for relay in self.relays.values():
                for writer in list(relay._open):
                    self._loop.call_soon_threadsafe(writer.transport.abort)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    async def _serve(
        self, relay: Relay, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if relay.cut:
            writer.transport.abort()
            return
        relay.accepted += 1
        try:
            target_reader, target_writer = await asyncio.open_connection(*relay.target)
        except OSError:  # the target's host is partitioned or the node is down
            writer.transport.abort()
            return
        relay._open.update((writer, target_writer))
        try:
            await asyncio.gather(
                self._pump(relay, "up", reader, target_writer),
                self._pump(relay, "down", target_reader, writer),
            )
        finally:
            for end in (writer, target_writer):
                relay._open.discard(end)
                end.transport.abort()

    async def _pump(
        self,
        relay: Relay,
        direction: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        """Copy one direction; chunks wait in a queue until their release time, so a delay
        shifts every chunk without reordering them."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        async def deliver() -> None:
            while True:
                release, data = await queue.get()
                if not data:
                    writer.transport.abort()
                    return
                await asyncio.sleep(max(0.0, release - loop.time()))  # the link's latency
                writer.write(data)
                relay.bytes_relayed += len(data)
                await writer.drain()

        delivering = asyncio.create_task(deliver())
        released = 0.0
        try:
            while not delivering.done():
                data = await reader.read(CHUNK_BYTES)
                faults = relay.up if direction == "up" else relay.down
                if data and self._random.random() < faults.reset_chance:
                    relay.resets += 1
                    data = b""
                stall = faults.stall_s if self._random.random() < faults.stall_chance else 0.0
                released = max(released, loop.time() + faults.delay_s + stall)
                queue.put_nowait((released, data))
                if not data:
                    break
            await delivering
        except (OSError, asyncio.CancelledError):
            delivering.cancel()
            writer.transport.abort()
