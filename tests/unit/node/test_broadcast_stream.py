"""A peer's Broadcast calls to one ordering node (node/broadcast_stream.py on the shared
node/exchange_streams.py), over real gRPC.

A scripted ordering node answers each envelope by what its payload asks: at once, late, twice
(hostile: an answer for an envelope it was not sent), or by closing the stream, before or after
answering. Many concurrent submissions each get their own envelope's answer, the bytes arrive
as given, and the calls are reused by the next burst; a late answer fails its waiter after the
timeout and never reaches another; an extra answer or a closed stream closes that call and the
next send opens a new one; an idle call the node has ended is not reused.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest
from fabric_protos.common import common_pb2
from fabric_protos.orderer import ab_pb2, ab_pb2_grpc
from tests.networks import free_ports
from tests.unit.node.test_bft_channel_supervision import until

from medalliance.node.broadcast_stream import IDLE_KEPT, BroadcastStream, raw_broadcast

TIMEOUT_S = 1.5  # generous: a fresh call on a busy 2-core machine


class ScriptedOrderer(ab_pb2_grpc.AtomicBroadcastServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.calls = 0
        self.received: list[bytes] = []
        self.live: list[bool] = []  # per call, whether its handler still runs
        self.release_late = asyncio.Event()  # a "late" envelope is answered once this is set

    async def Broadcast(
        self, requests: AsyncIterator[common_pb2.Envelope], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[ab_pb2.BroadcastResponse]:
        self.calls += 1
        call = len(self.live)
        self.live.append(True)
        try:
            async for answer in self._answers(requests):
                yield answer
        finally:
            self.live[call] = False

    async def _answers(
        self, requests: AsyncIterator[common_pb2.Envelope]
    ) -> AsyncIterator[ab_pb2.BroadcastResponse]:
        async for envelope in requests:
            self.received.append(envelope.SerializeToString())
            ask = envelope.payload
            if ask == b"close":
                return
            if ask == b"late":
                await self.release_late.wait()  # the test releases it after its waiter failed
            answer = ab_pb2.BroadcastResponse(status=common_pb2.SUCCESS, info=ask.decode())
            yield answer
            if ask == b"twice":
                yield answer
            if ask == b"answer-then-close":
                return


def envelope(payload: bytes) -> bytes:
    return common_pb2.Envelope(payload=payload, signature=b"sig").SerializeToString()


def with_orderer(
    scenario: Callable[[BroadcastStream, ScriptedOrderer], Awaitable[None]],
    timeout_s: float = TIMEOUT_S,
) -> None:
    async def run() -> None:
        (port,) = free_ports(1)
        service = ScriptedOrderer()
        server = grpc.aio.server()
        ab_pb2_grpc.add_AtomicBroadcastServicer_to_server(service, server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        try:
            await scenario(BroadcastStream(raw_broadcast(channel), timeout_s), service)
        finally:
            await channel.close()
            await server.stop(None)

    asyncio.run(run())


def test_concurrent_submissions_each_get_their_own_answer_and_calls_are_reused() -> None:
    async def scenario(stream: BroadcastStream, orderer: ScriptedOrderer) -> None:
        sent = [envelope(f"tx-{i}".encode()) for i in range(200)]
        answers = await asyncio.gather(*(stream.send(e) for e in sent))
        assert [a.info for a in answers] == [f"tx-{i}" for i in range(200)]
        assert sorted(orderer.received) == sorted(sent)  # the bytes as given
        opened = orderer.calls
        assert opened <= 200
        again = await asyncio.gather(*(stream.send(e) for e in sent[:IDLE_KEPT]))
        assert [a.info for a in again] == [f"tx-{i}" for i in range(IDLE_KEPT)]
        assert orderer.calls == opened  # the idle calls carried the second burst

    with_orderer(scenario, timeout_s=10.0)  # 200 calls opened at once on a busy machine


def test_a_late_answer_fails_its_waiter_and_reaches_no_other() -> None:
    async def scenario(stream: BroadcastStream, orderer: ScriptedOrderer) -> None:
        with pytest.raises(ConnectionError, match=r"no answer within 1\.5s"):
            await stream.send(envelope(b"late"))
        orderer.release_late.set()  # the answer comes now, after its waiter gave up
        after = await stream.send(envelope(b"after"))
        assert after.info == "after"  # not the late envelope's answer
        await until(lambda: not orderer.live[0], "the late call is closed")
        assert (await stream.send(envelope(b"next"))).info == "next"
        assert orderer.calls == 2  # the late call was closed, not reused

    with_orderer(scenario)


def test_an_answer_for_an_envelope_never_sent_closes_the_call() -> None:
    async def scenario(stream: BroadcastStream, orderer: ScriptedOrderer) -> None:
        assert (await stream.send(envelope(b"twice"))).info == "twice"
        await until(lambda: not any(orderer.live), "the extra answer closes the call")
        assert (await stream.send(envelope(b"again"))).info == "again"  # not "twice"
        assert orderer.calls == 2

    with_orderer(scenario)


def test_a_closed_stream_fails_its_waiters_and_the_next_send_reopens() -> None:
    async def scenario(stream: BroadcastStream, orderer: ScriptedOrderer) -> None:
        with pytest.raises(ConnectionError, match="closed the stream"):
            await stream.send(envelope(b"close"))
        assert (await stream.send(envelope(b"again"))).info == "again"
        assert orderer.calls == 2

    with_orderer(scenario)


def test_an_idle_call_the_node_ended_is_not_reused() -> None:
    async def scenario(stream: BroadcastStream, orderer: ScriptedOrderer) -> None:
        assert (await stream.send(envelope(b"answer-then-close"))).info == "answer-then-close"
        await until(lambda: not any(orderer.live), "the node ends the call")
        # ... and once this side has seen it end, the call is not used again
        await until(lambda: all(lane.closed for lane in stream._idle), "the end is seen")
        assert (await stream.send(envelope(b"again"))).info == "again"
        assert orderer.calls == 2

    with_orderer(scenario)


def test_an_unreachable_node_fails_the_waiters_fast() -> None:
    async def run() -> None:
        (port,) = free_ports(1)  # nothing listens
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        stream = BroadcastStream(raw_broadcast(channel), 10.0)
        try:
            sends = [stream.send(envelope(f"tx-{i}".encode())) for i in range(3)]
            results = await asyncio.wait_for(asyncio.gather(*sends, return_exceptions=True), 5.0)
            assert all(isinstance(r, ConnectionError) for r in results)
        finally:
            await channel.close()

    asyncio.run(run())


def test_after_the_node_restarts_its_idle_calls_give_way_to_new_ones() -> None:
    """The ordering node stops (every idle call ends with it) and comes back on the same port:
    the next envelopes are answered on new calls, none lost to a dead one."""

    async def serve(port: int, service: ScriptedOrderer) -> grpc.aio.Server:
        server = grpc.aio.server()
        ab_pb2_grpc.add_AtomicBroadcastServicer_to_server(service, server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        return server

    async def run() -> None:
        (port,) = free_ports(1)
        first, second = ScriptedOrderer(), ScriptedOrderer()
        server = await serve(port, first)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        stream = BroadcastStream(raw_broadcast(channel), 10.0)
        try:
            await asyncio.gather(*(stream.send(envelope(b"before")) for _ in range(8)))
            await server.stop(None)
            server = await serve(port, second)
            answers = await asyncio.gather(*(stream.send(envelope(b"after")) for _ in range(8)))
            assert [a.info for a in answers] == ["after"] * 8
            assert len(second.received) == 8
        finally:
            await channel.close()
            await server.stop(None)

    asyncio.run(run())
