"""A gateway's proposal to another organisation's peer over real gRPC: a peer that is down is
reported as unreachable after the connect wait, not after the whole endorsement timeout, and the
same endorser reaches the peer once it is back (as after a restart). The scripted peer serves
only the unary `protos.Endorser/ProcessProposal` (as an older version of ours would): the
endorser, finding no `ProcessProposals` stream there, asks with the unary call."""

from __future__ import annotations

import asyncio
import socket

import grpc
import pytest
from fabric_protos.peer import proposal_pb2, proposal_response_pb2
from tests.unit.node.test_bft_channel_supervision import until

from medalliance.ledger.tx import ProposalView
from medalliance.network.tls import CLIENT_OPTIONS
from medalliance.node import endorsers
from medalliance.node.endorsers import RemoteEndorser

ENDORSER = "/protos.Endorser/ProcessProposal"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _serve(port: int) -> grpc.aio.Server:
    async def process(
        request: proposal_pb2.SignedProposal, context: grpc.aio.ServicerContext
    ) -> proposal_response_pb2.ProposalResponse:
        return proposal_response_pb2.ProposalResponse(
            response=proposal_response_pb2.Response(status=200, message="endorsed here")
        )

    handler = grpc.method_handlers_generic_handler(
        "protos.Endorser",
        {
            "ProcessProposal": grpc.unary_unary_rpc_method_handler(
                process,
                request_deserializer=proposal_pb2.SignedProposal.FromString,
                response_serializer=proposal_response_pb2.ProposalResponse.SerializeToString,
            )
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server


def test_a_peer_down_is_unreachable_after_the_connect_wait_and_reached_once_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connect_wait = endorsers.CONNECT_TIMEOUT_S
    # A short connect wait keeps the first half quick; the rule under test is which wait
    # applies, not its length.
    monkeypatch.setattr(endorsers, "CONNECT_TIMEOUT_S", 0.5)
    monkeypatch.setattr(endorsers, "ENDORSE_TIMEOUT_S", 60.0)
    port = _free_port()
    proposal: ProposalView = None  # type: ignore[assignment]  # not read by the remote endorser

    async def scenario() -> None:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CLIENT_OPTIONS)
        remote = RemoteEndorser("Org2MSP", f"127.0.0.1:{port}", channel)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ConnectionError, match=r"no connection to 127\.0\.0\.1"):
            await remote.process_proposal(proposal_pb2.SignedProposal(), proposal)
        # Well below the 60 s endorsement timeout: the connect wait decided (generous margin
        # for a loaded machine; this is a bound on which timeout applied, not a speed test).
        assert loop.time() - started < 30.0
        # Back with the real wait, which outlasts the reconnect back-off of CLIENT_OPTIONS.
        monkeypatch.setattr(endorsers, "CONNECT_TIMEOUT_S", connect_wait)
        server = await _serve(port)
        try:
            response = await remote.process_proposal(proposal_pb2.SignedProposal(), proposal)
            assert response.response.message == "endorsed here"
        finally:
            await server.stop(None)
            await channel.close()

    asyncio.run(scenario())


def test_a_peer_back_within_the_connect_wait_is_reached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(endorsers, "CONNECT_TIMEOUT_S", 30.0)
    port = _free_port()
    proposal: ProposalView = None  # type: ignore[assignment]

    async def scenario() -> None:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CLIENT_OPTIONS)
        remote = RemoteEndorser("Org2MSP", f"127.0.0.1:{port}", channel)
        call = asyncio.ensure_future(
            remote.process_proposal(proposal_pb2.SignedProposal(), proposal)
        )
        # The proposal is waiting for a connection: the peer comes up meanwhile.
        await until(
            lambda: channel.get_state() != grpc.ChannelConnectivity.IDLE, "the channel tries"
        )
        server = await _serve(port)
        try:
            response = await call
            assert response.response.message == "endorsed here"
        finally:
            await server.stop(None)
            await channel.close()

    asyncio.run(scenario())
