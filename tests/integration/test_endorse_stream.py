"""Our peers' endorsement stream (`medalliance.Endorser/ProcessProposals`) against a real peer
of the embedded network, served over real gRPC next to `protos.Endorser/ProcessProposal`.

Hostile callers get on the stream exactly the refusal the unary call gives (code and text): an
unsigned proposal, one signed by an identity from a CA the channel does not know, one larger
than the channel accepts; the gateway's `RemoteEndorser` reports the same text and its next
proposal is endorsed on a new call. A client that writes 100 proposals without waiting for its
answers gets every answer in the order it wrote them, and the peer reads a stream's next
proposal only once it has answered the last: what the client sent ahead waits in gRPC's
flow-control window, not in the peer's memory.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest
from fabric_protos.peer import peer_pb2_grpc, proposal_pb2, proposal_response_pb2
from tests.conftest import make_org
from tests.networks import free_ports

from medalliance.gateway.peer_services import PROCESS_PROPOSALS, EndorserService
from medalliance.gateway.ports import EndorserRefused
from medalliance.identity.signing import Signer
from medalliance.ledger.tx import new_signed_proposal, parse_signed_proposal
from medalliance.network.tls import CLIENT_OPTIONS, SERVER_OPTIONS
from medalliance.node.embedded import EmbeddedNetwork
from medalliance.node.endorsers import LocalEndorser, RemoteEndorser

PIPELINED = 100


def proposal(
    network: EmbeddedNetwork, signer: Signer, *args: bytes, chaincode: str = "basic"
) -> proposal_pb2.SignedProposal:
    signed, _ = new_signed_proposal(
        signer,
        channel_id="alliance",
        chaincode=chaincode,
        args=list(args),
        nonce=os.urandom(24),
        timestamp_ms=int(network.now().timestamp() * 1000),
    )
    return signed


def create(network: EmbeddedNetwork, signer: Signer, asset: str, color: str = "red") -> bytes:
    args = (b"CreateAsset", asset.encode(), color.encode(), b"5", b"Ann", b"9")
    return proposal(network, signer, *args).SerializeToString()


Scenario = Callable[[grpc.aio.Channel], Awaitable[None]]


def endorser_service(network: EmbeddedNetwork) -> EndorserService:
    """The endorsement services of HospA's real peer."""
    peer = next(p for p in network.peers_of("alliance") if p.msp_id == "HospAMSP")
    return EndorserService(LocalEndorser(peer, "peer0.hospa", network.now), peer.max_proposal_bytes)


def with_peer(network: EmbeddedNetwork, scenario: Scenario) -> None:
    """HospA's real peer served over gRPC; `scenario` gets a channel to it."""
    endorser = endorser_service(network)

    async def run() -> None:
        (port,) = free_ports(1)
        server = grpc.aio.server(options=SERVER_OPTIONS)
        peer_pb2_grpc.add_EndorserServicer_to_server(endorser, server)
        server.add_generic_rpc_handlers((endorser.handler(),))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CLIENT_OPTIONS)
        try:
            await scenario(channel)
        finally:
            await channel.close()
            await server.stop(None)

    asyncio.run(run())


def open_stream(channel: grpc.aio.Channel) -> grpc.aio.StreamStreamCall:
    return channel.stream_stream(
        PROCESS_PROPOSALS,
        request_serializer=None,
        response_deserializer=proposal_response_pb2.ProposalResponse.FromString,
    )()


async def unary_refusal(channel: grpc.aio.Channel, signed: bytes) -> tuple[grpc.StatusCode, str]:
    stub = peer_pb2_grpc.EndorserStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ProcessProposal(proposal_pb2.SignedProposal.FromString(signed), timeout=30)
    return refused.value.code(), refused.value.details() or ""


async def stream_refusal(channel: grpc.aio.Channel, signed: bytes) -> tuple[grpc.StatusCode, str]:
    call = open_stream(channel)
    await call.write(signed)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call.read()
    return refused.value.code(), refused.value.details() or ""


def test_hostile_proposals_get_the_unary_calls_refusal_on_the_stream(
    network: EmbeddedNetwork,
) -> None:
    member = network.signer("HospAMSP")
    mallory = make_org("HospAMSP").signer("Mallory")  # a CA the channel does not know
    unsigned = proposal_pb2.SignedProposal.FromString(create(network, member, "U-1"))
    unsigned.signature = b""
    hostile = {
        "unsigned": unsigned.SerializeToString(),
        "foreign-signed": create(network, mallory, "F-1"),
        "oversized": create(network, member, "O-1", color="x" * (11 * 1024 * 1024)),
    }

    async def scenario(channel: grpc.aio.Channel) -> None:
        remote = RemoteEndorser("HospAMSP", "peer0.hospa", channel)
        for what, signed in hostile.items():
            unary = await unary_refusal(channel, signed)
            assert unary[0] != grpc.StatusCode.OK, what
            assert await stream_refusal(channel, signed) == unary, what
            parsed = proposal_pb2.SignedProposal.FromString(signed)
            with pytest.raises(EndorserRefused) as refused:
                await remote.process_proposal(parsed, None)  # type: ignore[arg-type]
            assert str(refused.value) == unary[1], what
            # ... and the stream it ended is not the one the next proposal goes on
            fine = proposal_pb2.SignedProposal.FromString(create(network, member, f"ok-{what}"))
            answer = await remote.process_proposal(fine, None)  # type: ignore[arg-type]
            assert answer.response.status == 200, what

    with_peer(network, scenario)


def test_a_pipelining_client_gets_its_answers_in_order(network: EmbeddedNetwork) -> None:
    member = network.signer("HospAMSP")
    sent = [create(network, member, f"P-{i}") for i in range(PIPELINED)]
    hashes = [
        parse_signed_proposal(proposal_pb2.SignedProposal.FromString(s)).proposal_hash for s in sent
    ]

    async def scenario(channel: grpc.aio.Channel) -> None:
        call = open_stream(channel)

        async def write_all() -> None:  # every proposal, without waiting for an answer
            for signed in sent:
                await call.write(signed)
            await call.done_writing()

        writer = asyncio.ensure_future(write_all())
        answers = [await call.read() for _ in range(PIPELINED)]
        await writer
        assert [a.response.status for a in answers] == [200] * PIPELINED
        payloads = [
            proposal_response_pb2.ProposalResponsePayload.FromString(a.payload) for a in answers
        ]
        assert [p.proposal_hash for p in payloads] == hashes  # each answer to its proposal

    with_peer(network, scenario)


def test_the_peer_reads_a_streams_next_proposal_only_once_it_has_answered_the_last(
    network: EmbeddedNetwork,
) -> None:
    """So a stream holds at most one proposal in the peer's memory, however many the client
    sends ahead (a handler that read ahead, or endorsed concurrently, would have read more)."""
    endorser = endorser_service(network)
    member = network.signer("HospAMSP")
    sent = [create(network, member, f"Q-{i}") for i in range(10)]
    read = 0

    async def requests() -> AsyncIterator[proposal_pb2.SignedProposal]:
        nonlocal read
        for signed in sent:
            read += 1
            yield proposal_pb2.SignedProposal.FromString(signed)

    async def answered() -> list[tuple[int, int]]:
        stream = endorser.ProcessProposals(requests(), None)  # type: ignore[arg-type]
        return [(read, answer.response.status) async for answer in stream]

    # (proposals read when each answer left, its status)
    assert asyncio.run(answered()) == [(i + 1, 200) for i in range(len(sent))]
