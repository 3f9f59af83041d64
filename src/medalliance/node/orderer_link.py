"""A node's connections to the ordering service: broadcast transactions and pull blocks.

Every ordering node is listed; a call goes to the first that answers, and a node that fails is
skipped until the others fail too. Pulled blocks are handed to `on_block`, which verifies and
stores them (a peer's commit checks the orderer signatures and the hash chain), so a lying or
stale orderer costs a reconnect, never a bad block.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.orderer import ab_pb2_grpc
from fabric_protos.peer import events_pb2_grpc

from medalliance.errors import MedallianceError, Unavailable
from medalliance.gateway.ports import OrdererRejected
from medalliance.ledger.seek import (
    BLOCK_UNTIL_READY,
    FAIL_IF_NOT_READY,
    MAX_BLOCK_NUMBER,
    new_seek_envelope,
)
from medalliance.ledger.tx import SigningIdentity
from medalliance.network.tls import NodeTls
from medalliance.node.broadcast_stream import BroadcastStream, raw_broadcast

log = logging.getLogger(__name__)

BROADCAST_TIMEOUT_S = 30.0
ATTEMPT_TIMEOUT_S = 5.0  # one ordering node's answer; a hung node is skipped after this
RETRY_DELAY_S = 0.5
WATCH_S = 3.0  # a block source that sends nothing this long is checked against the others
GRACE_S = 1.0  # ... and once another has the next block, the source gets this long to send it
POLL_S = 0.02


@dataclass(frozen=True, slots=True)
class OrdererEndpoint:
    msp_id: str
    host: str  # the TLS server name, e.g. orderer0.tertiarya.example.com
    endpoint: str  # host:port to dial


class OrdererLink:
    def __init__(
        self,
        orderers: Sequence[OrdererEndpoint],
        tls: NodeTls,
        signer: SigningIdentity,
        now: Callable[[], dt.datetime],
        *,
        peers: Sequence[OrdererEndpoint] = (),
    ) -> None:
        if not orderers:
            raise ValueError("no ordering nodes to connect to")
        self._orderers = tuple(orderers)
        self._signer = signer
        self._now = now
        channels = [tls.channel(o.endpoint, o.host, o.msp_id) for o in self._orderers]
        self._stubs = [ab_pb2_grpc.AtomicBroadcastStub(channel) for channel in channels]
        self._streams = [
            BroadcastStream(raw_broadcast(channel), ATTEMPT_TIMEOUT_S) for channel in channels
        ]
        self._preferred = 0
        # Blocks come from any ordering node or, failing those, any other peer: a block is
        # accepted for its certificate and hash chain, never for where it came from.
        self._sources = (*self._orderers, *peers)
        self._delivers: list[Callable[[], grpc.aio.StreamStreamCall]] = [
            stub.Deliver for stub in self._stubs
        ] + [
            events_pb2_grpc.DeliverStub(tls.channel(p.endpoint, p.host, p.msp_id)).Deliver
            for p in peers
        ]
        self._source = 0

    def _order(self) -> list[int]:
        n = len(self._orderers)
        return [(self._preferred + i) % n for i in range(n)]

    def _source_order(self) -> list[int]:
        """The current block source, then the others as `switch_candidates` prefers them."""
        return [
            self._source,
            *switch_candidates(self._source, len(self._orderers), len(self._sources)),
        ]

    async def broadcast(self, channel_id: str, envelope: bytes) -> None:
        """Hand a signed transaction (the envelope's bytes, written as they are) to the first
        ordering node that takes it.

        Unreachable nodes are retried in rounds until `BROADCAST_TIMEOUT_S`, so a transaction
        submitted while an ordering node restarts waits for it instead of failing at once.
        """
        deadline = asyncio.get_running_loop().time() + BROADCAST_TIMEOUT_S
        while True:
            failures = []
            for index in self._order():
                try:
                    response = await self._streams[index].send(envelope)
                except (grpc.aio.AioRpcError, ConnectionError) as exc:
                    reason = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
                    failures.append(f"{self._orderers[index].endpoint}: {reason}")
                    continue
                if response.status == common_pb2.Status.SERVICE_UNAVAILABLE:
                    failures.append(f"{self._orderers[index].endpoint}: {response.info}")
                    continue  # busy, or no longer ordering this channel: ask the next node
                self._preferred = index
                if response.status != common_pb2.Status.SUCCESS:
                    raise OrdererRejected(int(response.status), str(response.info))
                return
            if asyncio.get_running_loop().time() + RETRY_DELAY_S > deadline:
                raise ConnectionError("; ".join(failures))
            await asyncio.sleep(RETRY_DELAY_S)

    async def pull(
        self,
        channel_id: str,
        height: Callable[[], int],
        on_block: Callable[[common_pb2.Block], None],
    ) -> None:
        """Receive the channel's blocks from `height()` on, forever, switching node on failure,
        on a bad block, and when the node falls silent while another has blocks we lack."""
        attempt = 0
        while True:
            index = self._source_order()[attempt % len(self._sources)]
            orderer = self._sources[index]
            call = self._delivers[index]()
            watch = _Watch()
            watchdog = asyncio.create_task(self._watch(channel_id, height, index, call, watch))
            try:
                await call.write(self._seek(channel_id, height()))
                async for response in call:
                    kind = response.WhichOneof("Type")
                    if kind != "block":
                        log.warning(
                            "ordering node refused to deliver",
                            extra={"orderer": orderer.endpoint, "status": response.status},
                        )
                        break
                    if response.block.header.number < height():
                        continue  # already have it (a reconnect overlaps)
                    on_block(response.block)
                    attempt = 0
                    self._source = index
            except asyncio.CancelledError:
                if not watch.switched:
                    raise
                attempt = 0  # the watchdog chose the next source
            except grpc.aio.AioRpcError as exc:
                if not watch.switched:
                    log.info(
                        "block stream from ordering node lost",
                        extra={"orderer": orderer.endpoint, "reason": exc.code().name},
                    )
            except MedallianceError as exc:
                log.error(
                    "block from ordering node rejected",
                    extra={"orderer": orderer.endpoint, "reason": str(exc)},
                )
            finally:
                watchdog.cancel()
                call.cancel()
            if not watch.switched:
                attempt += 1
                await asyncio.sleep(RETRY_DELAY_S)

    async def catch_up(
        self,
        channel_id: str,
        height: Callable[[], int],
        on_block: Callable[[common_pb2.Block], None],
        target: Callable[[], int | None],
        prefer: str | None = None,
        patience: int | None = None,
    ) -> None:
        """Receive the channel's blocks from `height()` until it reaches `target()` (None: as
        many as the others hold), never waiting for a block not cut yet: the source named
        `prefer` (else the last one that served, or the next to try) first, then the others in
        turn. Ends once `patience` sources in a row (all by default) brought nothing, so a node
        that claimed blocks it lacks (or serves bad ones) costs one call per source."""
        hosts = [source.host for source in self._sources]
        index = hosts.index(prefer) if prefer in hosts else self._source
        fruitless = 0
        while fruitless < (patience or len(self._sources)):
            goal = target()
            if goal is not None and height() >= goal:
                break
            before = height()
            await self._fetch(index, channel_id, height, on_block, goal)
            if height() > before:
                fruitless = 0  # it may hold more by now: asked again
            else:
                fruitless += 1
                index = (index + 1) % len(self._sources)
        self._source = index  # where the next call without `prefer` starts

    async def _fetch(
        self,
        index: int,
        channel_id: str,
        height: Callable[[], int],
        on_block: Callable[[common_pb2.Block], None],
        goal: int | None,
    ) -> None:
        """What source `index` holds from `height()` up to block `goal - 1`, without waiting."""
        source = self._sources[index].endpoint
        call = self._delivers[index]()
        stop = MAX_BLOCK_NUMBER if goal is None else goal - 1
        try:
            await call.write(self._seek(channel_id, height(), FAIL_IF_NOT_READY, stop))
            while goal is None or height() < goal:
                response = await asyncio.wait_for(call.read(), ATTEMPT_TIMEOUT_S)
                if response is grpc.aio.EOF or response.WhichOneof("Type") != "block":
                    return  # NOT_FOUND past its newest block, or SUCCESS at the stop
                if response.block.header.number >= height():
                    on_block(response.block)
        except TimeoutError:
            log.warning("block source silent during catch-up", extra={"orderer": source})
        except grpc.aio.AioRpcError as exc:
            log.info("block source lost", extra={"orderer": source, "reason": exc.code().name})
        except Unavailable as exc:  # our own core restarts: a later request asks again
            log.info("catch-up paused", extra={"orderer": source, "reason": str(exc)})
        except MedallianceError as exc:
            log.error(
                "block from ordering node rejected", extra={"orderer": source, "reason": str(exc)}
            )
        finally:
            call.cancel()

    def _seek(
        self,
        channel_id: str,
        start: int,
        behavior: int = BLOCK_UNTIL_READY,
        stop: int = MAX_BLOCK_NUMBER,
    ) -> common_pb2.Envelope:
        return new_seek_envelope(
            self._signer,
            channel_id=channel_id,
            start_block=start,
            timestamp_ms=int(self._now().timestamp() * 1000),
            behavior=behavior,
            stop_block=stop,
        )

    async def _watch(
        self,
        channel_id: str,
        height: Callable[[], int],
        source: int,
        call: grpc.aio.StreamStreamCall,
        watch: _Watch,
    ) -> None:
        """Block withholding: if the source sends nothing while another node can serve the
        next block, switch to that node. While the source is a peer (every ordering node had
        failed), switch back to an ordering node as soon as one has a block we lack."""
        orderers = len(self._orderers)
        while True:
            before = height()
            await asyncio.sleep(WATCH_S)
            on_peer = source >= orderers
            if height() != before and not on_peer:
                continue
            wanted = height()
            for index in switch_candidates(source, orderers, len(self._sources)):
                if on_peer and index >= orderers:
                    break  # from one peer to another gains nothing
                if not await self._has_block(index, channel_id, wanted):
                    continue
                if await delivered_within(height, wanted, GRACE_S):
                    break  # the block was just cut and is on its way: not withholding
                log.warning(
                    "block source silent while another has blocks; switching",
                    extra={
                        "source": self._sources[source].endpoint,
                        "to": self._sources[index].endpoint,
                    },
                )
                watch.switched = True
                self._source = index
                call.cancel()
                return

    async def _has_block(self, index: int, channel_id: str, number: int) -> bool:
        call = self._delivers[index]()
        try:
            # asked not to wait: a block cut while we ask must not look withheld
            await call.write(self._seek(channel_id, number, FAIL_IF_NOT_READY))
            response = await asyncio.wait_for(call.read(), RETRY_DELAY_S * 2)
        except (TimeoutError, grpc.aio.AioRpcError):
            return False
        finally:
            call.cancel()
        return (
            response is not grpc.aio.EOF
            and response.WhichOneof("Type") == "block"
            and response.block.header.number >= number
        )


async def delivered_within(height: Callable[[], int], wanted: int, grace_s: float) -> bool:
    """Whether the source delivers block `wanted` (the height moves past it) within `grace_s`.

    Another node having the next block is no proof of withholding: a block just decided
    reaches every node's Deliver stream at slightly different moments (seen as ~3 s stalls when
    a peer switched to pulling from other peers after an idle spell).
    """
    deadline = asyncio.get_running_loop().time() + grace_s
    while height() <= wanted:
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(POLL_S)
    return True


def switch_candidates(source: int, orderers: int, sources: int) -> list[int]:
    """The block sources to ask, in order, for a block `source` has not sent: the ordering nodes
    first (the one after `source` first), then the peers; never `source` itself.

    Sources `0 .. orderers-1` are ordering nodes, the rest peers. A peer has a block only once it
    has committed it, so it is a source of last resort: two peers that switched to each other
    would each wait for the other, stalling every commit until the watchdog fired again.
    """
    start = source + 1 if source < orderers else 0
    ring = [(start + i) % orderers for i in range(orderers)]
    peers = list(range(orderers, sources))
    if source >= orderers:
        at = source - orderers + 1
        peers = peers[at:] + peers[:at]
    return [i for i in ring + peers if i != source]


@dataclass
class _Watch:
    switched: bool = False
