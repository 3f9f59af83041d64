"""Batches between ordering nodes as messages on long-lived streams, against a real ordering node.

The target is a real `OrdererNode` serving its client and cluster ports (mutual TLS) in this
process; the sender is `Streams` with another consenter's TLS key, as the nodes use it, or a
raw gRPC stream for the hostile cases: no client certificate, a member's certificate, a
consenter voted out mid-stream, a malformed message, too many streams from one consenter.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc
import pytest
from tests.networks import REPO, cli, with_free_ports
from tests.unit.node.test_bft_channel_supervision import until

from medalliance.network.tls import MAX_MESSAGE_BYTES, NodeTls, server_options
from medalliance.node import consenter_streams
from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.config import NodeConfig
from medalliance.node.consenter_batches import FORWARD, MIXED, STEP, encode
from medalliance.node.consenter_streams import STREAMS_PER_CALLER_MAX, Streams
from medalliance.node.orderer_node import CONSENSUS_SERVICE, OrdererNode

CHANNEL = "mychannel"
TARGET, SENDER = "orderer0.example.com", "orderer3.example.com"
WAIT_S = 20.0
OK = grpc.StatusCode.OK


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> NetworkLayout:
    base = tmp_path_factory.mktemp("consenter-streams")
    config = with_free_ports(REPO / "networks" / "bft-test-network.yaml", base / "network.yaml")
    cli("network", "init", str(config), "--dir", str(base / "network"))
    return NetworkLayout.load(base / "network")


def spec(layout: NetworkLayout, host: str) -> NodeConfig:
    org = layout.config.organization("OrdererOrg")
    return next(n for n in org.orderers if f"{n.name}.example.com" == host)


def tls_of(layout: NetworkLayout, folder: Path, stem: str) -> NodeTls:
    ca = (layout.orderer_dir("OrdererMSP", "orderer0") / "tls" / "ca.crt").read_bytes()
    cert, key = (folder / f"{stem}.crt").read_bytes(), (folder / f"{stem}.key").read_bytes()
    return NodeTls(cert, key, {"OrdererMSP": ca})


def consenter_tls(layout: NetworkLayout) -> NodeTls:
    return tls_of(layout, layout.orderer_dir("OrdererMSP", SENDER.split(".")[0]) / "tls", "server")


@contextlib.asynccontextmanager
async def serving(layout: NetworkLayout) -> AsyncIterator[tuple[OrdererNode, list[bytes]]]:
    """The target node serving, and what its channel received (every item, in order)."""
    node = OrdererNode(layout, layout.config.organization("OrdererOrg"), TARGET.split(".")[0])
    received: list[bytes] = []
    channel = node.channels[CHANNEL]
    receive = channel.receive

    def recording(message: bytes, caller: str | None = None) -> None:
        if message.startswith(b"test-"):  # not what the node's own consensus exchanges
            assert caller == SENDER
            received.append(message)
        receive(message, caller)

    channel.receive = recording  # type: ignore[method-assign,assignment]
    server = grpc.aio.server(options=server_options(MAX_MESSAGE_BYTES))
    await node.start(server)
    try:
        yield node, received
    finally:
        node.end_subscriptions()
        await server.stop(5.0)
        await node.stop()


def link(layout: NetworkLayout, tls: NodeTls, *, cluster: bool = True) -> grpc.aio.Channel:
    """A channel to the target's cluster port presenting `tls`, or to its client port."""
    target = spec(layout, TARGET)
    if cluster:
        return tls.channel(target.cluster_endpoint, TARGET, "OrdererMSP")
    credentials = grpc.ssl_channel_credentials(tls.trusted["OrdererMSP"])
    options = (("grpc.ssl_target_name_override", TARGET),)
    return grpc.aio.secure_channel(target.endpoint, credentials, options=options)


def message(items: Sequence[bytes], channel_id: str = CHANNEL) -> bytes:
    return channel_id.encode() + b"\x00" + encode(items)


async def raw_stream(
    channel: grpc.aio.Channel, messages: Sequence[bytes], method: str = "Step", *, end: bool = True
) -> tuple[grpc.StatusCode, str]:
    """Write `messages` on one stream, end it (unless not `end`); the status the target ended it
    with. Without messages or `end` the stream stays open until the target ends it: what a
    refusal is checked with, as grpc.aio's client reports INTERNAL for a write or half-close
    issued after the target ended the stream (grpc/grpc#36066), not the target's status."""
    call = channel.stream_unary(
        f"/{CONSENSUS_SERVICE}/{method}",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )(timeout=WAIT_S)
    try:
        for data in messages:
            await call.write(data)
        if messages and end:
            await call.done_writing()
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    except asyncio.InvalidStateError:  # ended by the target before all was written
        return await call.code(), await call.details()
    return OK, ""


def streams_of(node: OrdererNode) -> dict[str, object]:
    return node.status()["consenterCalls"]["streams"]  # type: ignore[index,no-any-return]


# --- the sender's streams -----------------------------------------------------------------------


def test_batches_arrive_in_order_on_one_stream(layout: NetworkLayout) -> None:
    async def scenario() -> None:
        tls = consenter_tls(layout)
        async with serving(layout) as (node, received):
            streams = Streams(CONSENSUS_SERVICE, lambda _: link(layout, tls))
            sent = [[b"test-%d-%d" % (i, j) for j in range(i % 3 + 1)] for i in range(200)]
            for items in sent:
                assert await streams.send("Step", TARGET, message(items))
            expected = [item for items in sent for item in items]
            await until(
                lambda: len(received) == len(expected), "every item handled", timeout_s=WAIT_S
            )
            assert received == expected
            assert streams.opened == 1
            assert streams_of(node)["open"] == {SENDER: 1}
            streams.close()
            await until(
                lambda: streams_of(node)["open"] == {}, "the stream ended", timeout_s=WAIT_S
            )

    asyncio.run(scenario())


def test_a_sender_whose_target_restarts_reopens_its_stream(layout: NetworkLayout) -> None:
    async def scenario() -> None:
        tls = consenter_tls(layout)
        channel = link(layout, tls)
        streams = Streams(CONSENSUS_SERVICE, lambda _: channel)
        async with serving(layout) as (_, received):
            assert await streams.send("Step", TARGET, message([b"test-before"]))
            await until(
                lambda: received == [b"test-before"], "the first item handled", timeout_s=WAIT_S
            )
        # Down: the stream ended; a write fails (or is lost, as a unary call was) — never hangs.
        await streams.send("Step", TARGET, message([b"test-while-down"]))
        async with serving(layout) as (_, received):
            # The gRPC channel reconnects first (its back-off applies), then a write re-opens
            # the stream the restart ended; one that still went to the ended stream is lost.
            await asyncio.wait_for(channel.channel_ready(), WAIT_S)
            for i in range(3):
                await streams.send("Step", TARGET, message([b"test-after-%d" % i]))
                with contextlib.suppress(AssertionError):
                    await until(lambda: bool(received), "an item after the restart", timeout_s=2)
                if received:
                    break
            assert received
            assert received[0].startswith(b"test-after-")
            assert b"test-while-down" not in received
        assert streams.opened >= 2
        streams.close()
        await channel.close()

    asyncio.run(scenario())


# --- hostile callers ----------------------------------------------------------------------------


def test_a_stream_without_a_client_certificate_is_refused_before_reading(
    layout: NetworkLayout,
) -> None:
    async def scenario() -> None:
        async with serving(layout) as (node, received):
            async with link(layout, consenter_tls(layout), cluster=False) as channel:
                code, details = await raw_stream(channel, [])
            assert code == grpc.StatusCode.PERMISSION_DENIED
            assert "is served on the ordering node's cluster port" in details
            assert received == []
            assert streams_of(node)["open"] == {}

    asyncio.run(scenario())


@pytest.mark.parametrize("method", ["Step", MIXED])
def test_a_members_certificate_is_refused_before_reading(
    layout: NetworkLayout, method: str
) -> None:
    async def scenario() -> None:
        folder = layout.peer_dir("Org1MSP", "peer0") / "tls"
        member = tls_of(layout, folder, "server")
        async with serving(layout) as (node, received):
            async with link(layout, member) as channel:
                code, details = await raw_stream(channel, [], method)
            assert code == grpc.StatusCode.PERMISSION_DENIED
            assert f"may call medalliance.Consensus/{method}" in details
            assert "is not in any consenter mapping" in details
            assert received == []
            assert streams_of(node)["open"] == {}

    asyncio.run(scenario())


def test_a_consenter_voted_out_mid_stream_is_refused_from_then_on(layout: NetworkLayout) -> None:
    async def scenario() -> None:
        async with serving(layout) as (node, received), link(layout, consenter_tls(layout)) as ch:
            call = ch.stream_unary(
                f"/{CONSENSUS_SERVICE}/Step",
                request_serializer=lambda b: b,
                response_deserializer=lambda b: b,
            )(timeout=WAIT_S)
            await call.write(message([b"test-while-in"]))
            await until(
                lambda: received == [b"test-while-in"], "the first item handled", timeout_s=WAIT_S
            )
            channel = node.channels[CHANNEL]
            remaining = tuple(c for c in channel.config.consenter_set if c.name != SENDER)
            channel.config = dataclasses.replace(channel.config, consenter_set=remaining)
            with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                await call.write(message([b"test-after-out"]))
            assert await call.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "is not in the channel's consenter mapping" in await call.details()
            assert received == [b"test-while-in"]
            await until(
                lambda: streams_of(node)["open"] == {}, "the stream ended", timeout_s=WAIT_S
            )

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("method", "body"),
    [
        pytest.param("Step", None, id="Step truncated"),
        pytest.param("Forward", None, id="Forward truncated"),
        pytest.param(MIXED, None, id="Messages truncated"),
        pytest.param(MIXED, [STEP + b"test-fine", b"Xtest-unknown"], id="Messages unknown kind"),
        pytest.param(MIXED, [STEP], id="Messages kind alone"),
    ],
)
def test_a_malformed_message_ends_the_stream_is_counted_and_the_next_is_served(
    layout: NetworkLayout, method: str, body: list[bytes] | None
) -> None:
    async def scenario() -> None:
        tls = consenter_tls(layout)
        async with serving(layout) as (node, received), link(layout, tls) as channel:
            data = message([b"x" * 64])[:-1] if body is None else message(body)
            code, details = await raw_stream(channel, [data], method, end=False)
            assert code == grpc.StatusCode.INVALID_ARGUMENT
            assert f"medalliance.Consensus/{method}: malformed batch body" in details
            assert node.status()["consenterCalls"]["malformed"] == {SENDER: 1}  # type: ignore[index]
            assert received == []  # nothing of a refused message, not even its good items
            streams = Streams(CONSENSUS_SERVICE, lambda _: channel)
            assert await streams.send("Step", TARGET, message([b"test-next"]))
            await until(
                lambda: received == [b"test-next"], "the next stream served", timeout_s=WAIT_S
            )
            streams.close()

    asyncio.run(scenario())


def test_a_mixed_message_is_handled_item_by_item_in_order(layout: NetworkLayout) -> None:
    async def scenario() -> None:
        tls = consenter_tls(layout)
        async with serving(layout) as (node, received), link(layout, tls) as channel:
            mempool = node.channels[CHANNEL].status()["mempool"]
            items = [STEP + b"test-a", FORWARD + b"not a transaction", STEP + b"test-b"]
            streams = Streams(CONSENSUS_SERVICE, lambda _: channel)
            assert await streams.send(MIXED, TARGET, message(items))
            await until(
                lambda: received == [b"test-a", b"test-b"], "both messages", timeout_s=WAIT_S
            )
            # the forward was judged on its own merits (refused), and the stream goes on
            assert node.channels[CHANNEL].status()["mempool"] == mempool
            assert await streams.send(MIXED, TARGET, message([STEP + b"test-c"]))
            await until(lambda: received[-1:] == [b"test-c"], "the next one", timeout_s=WAIT_S)
            assert node.status()["consenterCalls"]["malformed"] == {}  # type: ignore[index]
            streams.close()

    asyncio.run(scenario())


def test_a_consenter_opening_too_many_streams_is_refused_beyond_the_limit(
    layout: NetworkLayout,
) -> None:
    async def scenario() -> None:
        async with serving(layout) as (node, received), link(layout, consenter_tls(layout)) as ch:
            calls = []
            for i in range(STREAMS_PER_CALLER_MAX):
                call = ch.stream_unary(
                    f"/{CONSENSUS_SERVICE}/{('Step', 'Forward')[i % 2]}",
                    request_serializer=lambda b: b,
                    response_deserializer=lambda b: b,
                )()
                calls.append(call)
            await until(
                lambda: streams_of(node)["open"] == {SENDER: STREAMS_PER_CALLER_MAX},
                "every stream open",
                timeout_s=WAIT_S,
            )
            code, details = await raw_stream(ch, [])
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert f"already holds {STREAMS_PER_CALLER_MAX} open streams" in details
            calls.pop().cancel()
            await until(
                lambda: streams_of(node)["open"] == {SENDER: STREAMS_PER_CALLER_MAX - 1},
                "one stream ended",
                timeout_s=WAIT_S,
            )
            assert await raw_stream(ch, [message([b"test-in-turn"])]) == (OK, "")
            assert received == [b"test-in-turn"]
            for call in calls:
                call.cancel()

    asyncio.run(scenario())


def test_a_target_that_stops_reading_fails_the_write_after_the_timeout(
    layout: NetworkLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A paused target (or a dead link not yet noticed) takes no more once flow control's
    window is full: the write is given up, the stream cancelled, the next batch re-opens it."""
    monkeypatch.setattr(consenter_streams, "WRITE_TIMEOUT_S", 0.5)

    async def scenario() -> None:
        opened: list[object] = []
        stalled = asyncio.Event()

        async def never_reads(requests: AsyncIterator[bytes], context: object) -> bytes:
            opened.append(context)
            await stalled.wait()  # holds the stream open, reading nothing
            return b""

        handler = grpc.method_handlers_generic_handler(
            CONSENSUS_SERVICE,
            {"Step": grpc.stream_unary_rpc_method_handler(never_reads, lambda b: b, lambda b: b)},
        )
        target_tls = tls_of(layout, layout.orderer_dir("OrdererMSP", "orderer0") / "tls", "server")
        server = grpc.aio.server(options=server_options(MAX_MESSAGE_BYTES))
        server.add_generic_rpc_handlers((handler,))
        server.add_secure_port(
            spec(layout, TARGET).cluster_endpoint,
            grpc.ssl_server_credentials(
                [(target_tls.key_pem, target_tls.cert_pem)],
                root_certificates=target_tls.trusted["OrdererMSP"],
                require_client_auth=True,
            ),
        )
        await server.start()
        tls = consenter_tls(layout)
        try:
            async with link(layout, tls) as channel:
                streams = Streams(CONSENSUS_SERVICE, lambda _: channel)
                big = message([b"test-" + b"x" * (1 << 20)])
                results = []
                for _ in range(64):  # at most 64 MiB before flow control must hold a write
                    results.append(await streams.send("Step", TARGET, big))
                    if not results[-1]:
                        break
                assert len(results) > 1  # some were taken before the window filled
                assert results[-1] is False
                assert all(results[:-1])
                assert await streams.send("Step", TARGET, message([b"test-next"]))
                await until(lambda: len(opened) == 2, "a second stream opened", timeout_s=WAIT_S)
                assert streams.opened == 2
                streams.close()
        finally:
            stalled.set()
            await server.stop(None)

    asyncio.run(scenario())
