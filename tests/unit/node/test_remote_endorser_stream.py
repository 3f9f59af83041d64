"""A gateway's proposals to another peer on reused `ProcessProposals` streams
(node/endorsers.py `RemoteEndorser`), against a scripted peer over real gRPC.

The scripted peer answers each proposal by what its signature field asks: at once, late, twice
(hostile: an answer for a proposal it was not sent), or by ending the stream with a gRPC status.
Concurrent proposals each get their own answer, on calls the next burst reuses; a late answer
fails its caller after the deadline and reaches no other; an extra answer closes that call; a
status ends the call and reaches its caller as the unary call's would (`EndorserRefused` with
the peer's text, `ConnectionError` for UNAVAILABLE), and the next proposal goes on a new call;
the peer restarting mid-stream costs the proposal in flight, not the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest
from fabric_protos.peer import proposal_pb2, proposal_response_pb2
from tests.networks import free_ports
from tests.unit.node.test_bft_channel_supervision import until

from medalliance.gateway.peer_services import ENDORSER_SERVICE
from medalliance.gateway.ports import EndorserRefused
from medalliance.ledger.tx import ProposalView
from medalliance.node import endorsers
from medalliance.node.endorsers import RemoteEndorser

TIMEOUT_S = 1.5
NO_VIEW: ProposalView = None  # type: ignore[assignment]  # not read by the remote endorser


class ScriptedPeer:
    def __init__(self) -> None:
        self.calls = 0
        self.live: list[bool] = []  # per call, whether its handler still runs
        self.release_late = asyncio.Event()  # a "late" proposal is answered once this is set
        self.holding = asyncio.Event()  # set while a "hold" proposal waits

    async def process(
        self,
        requests: AsyncIterator[proposal_pb2.SignedProposal],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[proposal_response_pb2.ProposalResponse]:
        self.calls += 1
        call = len(self.live)
        self.live.append(True)
        try:
            async for signed in requests:
                ask = signed.signature.decode()
                if ask.startswith("refuse:"):
                    await context.abort(grpc.StatusCode.PERMISSION_DENIED, ask[7:])
                if ask == "unavailable":
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "going away")
                if ask == "late":
                    await self.release_late.wait()
                if ask == "hold":
                    self.holding.set()
                    await asyncio.Event().wait()  # until the server stops
                answer = proposal_response_pb2.ProposalResponse(
                    response=proposal_response_pb2.Response(status=200, message=ask)
                )
                yield answer
                if ask == "twice":
                    yield answer
        finally:
            self.live[call] = False

    def handler(self) -> grpc.GenericRpcHandler:
        method = grpc.stream_stream_rpc_method_handler(
            self.process,
            request_deserializer=proposal_pb2.SignedProposal.FromString,
            response_serializer=proposal_response_pb2.ProposalResponse.SerializeToString,
        )
        return grpc.method_handlers_generic_handler(ENDORSER_SERVICE, {"ProcessProposals": method})


async def serve(port: int, peer: ScriptedPeer) -> grpc.aio.Server:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((peer.handler(),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server


def ask(endorser: RemoteEndorser, what: str) -> Awaitable[proposal_response_pb2.ProposalResponse]:
    return endorser.process_proposal(proposal_pb2.SignedProposal(signature=what.encode()), NO_VIEW)


async def said(endorser: RemoteEndorser, what: str) -> str:
    return str((await ask(endorser, what)).response.message)


def with_peer(
    scenario: Callable[[RemoteEndorser, ScriptedPeer], Awaitable[None]],
    monkeypatch: pytest.MonkeyPatch,
    timeout_s: float = TIMEOUT_S,
) -> None:
    monkeypatch.setattr(endorsers, "ENDORSE_TIMEOUT_S", timeout_s)

    async def run() -> None:
        (port,) = free_ports(1)
        peer = ScriptedPeer()
        server = await serve(port, peer)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        try:
            await scenario(RemoteEndorser("Org2MSP", f"127.0.0.1:{port}", channel), peer)
        finally:
            await channel.close()
            await server.stop(None)

    asyncio.run(run())


def test_concurrent_proposals_each_get_their_own_answer_on_reused_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario(endorser: RemoteEndorser, peer: ScriptedPeer) -> None:
        names = [f"tx-{i}" for i in range(50)]
        assert await asyncio.gather(*(said(endorser, n) for n in names)) == names
        opened = peer.calls
        assert await asyncio.gather(*(said(endorser, n) for n in names)) == names
        assert peer.calls == opened  # the second burst went on the idle calls

    with_peer(scenario, monkeypatch, timeout_s=10.0)


def test_a_late_answer_fails_its_caller_and_reaches_no_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario(endorser: RemoteEndorser, peer: ScriptedPeer) -> None:
        with pytest.raises(ConnectionError, match=r"no answer within 1\.5s"):
            await ask(endorser, "late")
        peer.release_late.set()  # the answer comes now, after its caller gave up
        assert await said(endorser, "after") == "after"
        await until(lambda: not peer.live[0], "the late call is closed")
        assert await said(endorser, "next") == "next"
        assert peer.calls == 2

    with_peer(scenario, monkeypatch)


def test_an_answer_for_a_proposal_never_sent_closes_the_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario(endorser: RemoteEndorser, peer: ScriptedPeer) -> None:
        assert await said(endorser, "twice") == "twice"
        await until(lambda: not any(peer.live), "the extra answer closes the call")
        assert await said(endorser, "again") == "again"  # not the extra "twice"
        assert peer.calls == 2

    with_peer(scenario, monkeypatch)


def test_a_status_reaches_its_caller_as_the_unary_calls_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario(endorser: RemoteEndorser, peer: ScriptedPeer) -> None:
        with pytest.raises(EndorserRefused) as refused:
            await ask(endorser, "refuse:access denied: channel [c] creator org [X]: no")
        assert str(refused.value) == "access denied: channel [c] creator org [X]: no"
        assert await said(endorser, "after-refusal") == "after-refusal"
        with pytest.raises(ConnectionError, match="going away"):
            await ask(endorser, "unavailable")
        assert await said(endorser, "after-unavailable") == "after-unavailable"
        assert peer.calls == 3  # each status ended its call

    with_peer(scenario, monkeypatch)


def test_the_peer_restarting_mid_stream_costs_only_the_proposal_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(endorsers, "ENDORSE_TIMEOUT_S", 10.0)

    async def run() -> None:
        (port,) = free_ports(1)
        first, second = ScriptedPeer(), ScriptedPeer()
        server = await serve(port, first)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        endorser = RemoteEndorser("Org2MSP", f"127.0.0.1:{port}", channel)
        try:
            assert (
                await asyncio.gather(*(said(endorser, "before") for _ in range(4)))
                == ["before"] * 4
            )
            held = asyncio.ensure_future(ask(endorser, "hold"))
            await first.holding.wait()
            await server.stop(None)
            with pytest.raises(ConnectionError):
                await held
            server = await serve(port, second)
            answers = await asyncio.gather(*(said(endorser, "after") for _ in range(4)))
            assert answers == ["after"] * 4
            assert second.calls >= 1
        finally:
            await channel.close()
            await server.stop(None)

    asyncio.run(run())
