"""`protos.Deliver` and `protos.Endorser` on a peer.

Deliver streams the peer's committed blocks (with its validation codes) to readers of the
channel; Endorser is the peer-to-peer hop a gateway uses to collect another organisation's
endorsement (our gateways use the same on a stream, `medalliance.Endorser/ProcessProposals`).
A proposal the endorser refuses before simulation (bad signature, policy, duplicate) is a gRPC
error, as in Fabric; a contract's refusal is a response with status ≥ 400.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.peer import (
    events_pb2,
    events_pb2_grpc,
    peer_pb2_grpc,
    proposal_pb2,
    proposal_response_pb2,
)

from medalliance.errors import MedallianceError
from medalliance.gateway.errors import RpcFailure, Unknown, abort
from medalliance.gateway.ports import Endorser, EndorserRefused
from medalliance.ledger.tx import parse_signed_proposal
from medalliance.network.deliver import (
    Content,
    DeliverSource,
    PrivateData,
    deliver,
    no_private_data,
)

PEER_READERS = "/Channel/Application/Readers"


class DeliverService(events_pb2_grpc.DeliverServicer):  # type: ignore[misc]
    def __init__(
        self,
        source_for: Callable[[str], DeliverSource],
        now: Callable[[], dt.datetime],
        private_data: PrivateData = no_private_data,
    ) -> None:
        self._source_for = source_for
        self._now = now
        self._private_data = private_data  # what DeliverWithPrivateData adds to each block

    def _stream(
        self, requests: AsyncIterator[common_pb2.Envelope], content: Content
    ) -> AsyncIterator[events_pb2.DeliverResponse]:
        return deliver(
            requests,
            source_for=self._source_for,
            readers_policy=PEER_READERS,
            content=content,
            now=self._now,
            private_data=self._private_data,
        )

    async def Deliver(
        self, requests: AsyncIterator[common_pb2.Envelope], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[events_pb2.DeliverResponse]:
        async for response in self._stream(requests, "block"):
            yield response

    async def DeliverFiltered(
        self, requests: AsyncIterator[common_pb2.Envelope], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[events_pb2.DeliverResponse]:
        async for response in self._stream(requests, "filtered"):
            yield response

    async def DeliverWithPrivateData(
        self, requests: AsyncIterator[common_pb2.Envelope], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[events_pb2.DeliverResponse]:
        async for response in self._stream(requests, "private"):
            yield response


# Our peers' private endorsement service: `ProcessProposals` is `protos.Endorser/ProcessProposal`
# on one long-lived stream, request after request (node/endorsers.py, docs/platform-decisions.md).
ENDORSER_SERVICE = "medalliance.Endorser"
PROCESS_PROPOSALS = f"/{ENDORSER_SERVICE}/ProcessProposals"


class EndorserService(peer_pb2_grpc.EndorserServicer):  # type: ignore[misc]
    """`protos.Endorser/ProcessProposal`, and the same on a stream for our own gateways
    (`handler`): each `SignedProposal` on it is answered in order with the `ProposalResponse`
    the unary call would return, and a refusal ends the stream with the unary call's status."""

    def __init__(self, local: Endorser, max_bytes: Callable[[str], int]) -> None:
        self._local = local
        self._max_bytes = max_bytes  # per channel; raises NotFound for an unknown one

    async def _answer(
        self, signed: proposal_pb2.SignedProposal
    ) -> proposal_response_pb2.ProposalResponse:
        """The endorser's response, or `RpcFailure` for a refusal before or during simulation."""
        try:
            proposal = parse_signed_proposal(signed, max_bytes=self._max_bytes)
        except MedallianceError as exc:
            raise RpcFailure.from_error(exc) from None
        try:
            return await self._local.process_proposal(signed, proposal)
        except EndorserRefused as exc:
            raise RpcFailure.of(Unknown, str(exc)) from None

    async def ProcessProposal(
        self, signed: proposal_pb2.SignedProposal, context: grpc.aio.ServicerContext
    ) -> proposal_response_pb2.ProposalResponse:
        try:
            return await self._answer(signed)
        except RpcFailure as failure:
            await abort(context, failure)
            raise

    async def ProcessProposals(
        self,
        requests: AsyncIterator[proposal_pb2.SignedProposal],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[proposal_response_pb2.ProposalResponse]:
        # One at a time: the next proposal is read once this answer is written, so a client
        # that does not read its answers is held back by gRPC's flow control.
        async for signed in requests:
            try:
                answer = await self._answer(signed)
            except RpcFailure as failure:
                await abort(context, failure)
                raise
            yield answer

    def handler(self) -> grpc.GenericRpcHandler:
        method = grpc.stream_stream_rpc_method_handler(
            self.ProcessProposals,
            request_deserializer=proposal_pb2.SignedProposal.FromString,
            response_serializer=proposal_response_pb2.ProposalResponse.SerializeToString,
        )
        return grpc.method_handlers_generic_handler(ENDORSER_SERVICE, {"ProcessProposals": method})
