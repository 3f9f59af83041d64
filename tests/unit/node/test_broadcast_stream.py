"""A peer's Broadcast stream to one ordering node (node/broadcast_stream.py), over real gRPC.

A scripted ordering node answers each envelope by what its payload asks: at once, late, twice
(hostile: an answer for an envelope it was not sent), or by closing the stream. Many concurrent
submissions share one call and each gets its own envelope's answer; the bytes arrive as given;
a late answer fails its waiter after the timeout yet keeps the later answers in their places;
an extra answer or a closed stream fails the waiters and the next send opens a new call.
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

from medalliance.node.broadcast_stream import BroadcastStream, raw_broadcast

TIMEOUT_S = 1.0
LATE_S = 1.3  # answered after its waiter gave up, and well before the next one's deadline


class ScriptedOrderer(ab_pb2_grpc.AtomicBroadcastServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.calls = 0
        self.received: list[bytes] = []

    async def Broadcast(
        self, requests: AsyncIterator[common_pb2.Envelope], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[ab_pb2.BroadcastResponse]:
        self.calls += 1
        async for envelope in requests:
            self.received.append(envelope.SerializeToString())
            ask = envelope.payload
            if ask == b"close":
                return
            if ask == b"late":
                await asyncio.sleep(LATE_S)
            answer = ab_pb2.BroadcastResponse(status=common_pb2.SUCCESS, info=ask.decode())
            yield answer
            if ask == b"twice":
                yield answer


def envelope(payload: bytes) -> bytes:
    return common_pb2.Envelope(payload=payload, signature=b"sig").SerializeToString()


def with_orderer(
    scenario: Callable[[BroadcastStream, ScriptedOrderer], Awaitable[None]],
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
            await scenario(BroadcastStream(raw_broadcast(channel), TIMEOUT_S), service)
        finally:
            await channel.close()
            await server.stop(None)

    asyncio.run(run())


def test_concurrent_submissions_share_one_call_and_each_gets_its_own_answer() -> None:
    async def scenario(stream: BroadcastStream, orderer: ScriptedOrderer) -> None:
        sent = [envelope(f"tx-{i}".encode()) for i in range(200)]
        answers = await asyncio.gather(*(stream.send(e) for e in sent))
        assert [a.info for a in answers] == [f"tx-{i}" for i in range(200)]
        assert orderer.calls == 1
        assert sorted(orderer.received) == sorted(sent)  # the bytes as given

    with_orderer(scenario)


def test_a_late_answer_fails_its_waiter_and_later_answers_stay_in_place() -> None:
    async def scenario(stream: BroadcastStream, orderer: ScriptedOrderer) -> None:
        late = asyncio.ensure_future(stream.send(envelope(b"late")))
        await until(lambda: len(orderer.received) == 1, "the late envelope arrives")
        with pytest.raises(ConnectionError, match="no answer within 1s"):
            await late
        after = asyncio.ensure_future(stream.send(envelope(b"after")))  # queued behind it
        assert (await after).info == "after"  # not the late envelope's answer
        assert (await stream.send(envelope(b"next"))).info == "next"
        assert orderer.calls == 1

    with_orderer(scenario)


def test_an_answer_for_an_envelope_never_sent_breaks_the_call() -> None:
    async def scenario(stream: BroadcastStream, orderer: ScriptedOrderer) -> None:
        assert (await stream.send(envelope(b"twice"))).info == "twice"
        await until(lambda: stream._current is None, "the extra answer breaks the call")
        assert (await stream.send(envelope(b"again"))).info == "again"
        assert orderer.calls == 2

    with_orderer(scenario)


def test_a_closed_stream_fails_its_waiters_and_the_next_send_reopens() -> None:
    async def scenario(stream: BroadcastStream, orderer: ScriptedOrderer) -> None:
        with pytest.raises(ConnectionError, match="closed the stream"):
            await stream.send(envelope(b"close"))
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
