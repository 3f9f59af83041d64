"""`protos.Deliver` and `protos.Endorser` on a peer.

Deliver streams the peer's committed blocks (with its validation codes) to readers of the
channel; Endorser is the peer-to-peer hop a gateway uses to collect another organisation's
endorsement. A proposal the endorser refuses before simulation (bad signature, policy,
duplicate) is a gRPC error, as in Fabric; a contract's refusal is a response with status ≥ 400.
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


class EndorserService(peer_pb2_grpc.EndorserServicer):  # type: ignore[misc]
    def __init__(self, local: Endorser, max_bytes: Callable[[str], int]) -> None:
        self._local = local
        self._max_bytes = max_bytes  # per channel; raises NotFound for an unknown one

    async def ProcessProposal(
        self, signed: proposal_pb2.SignedProposal, context: grpc.aio.ServicerContext
    ) -> proposal_response_pb2.ProposalResponse:
        try:
            proposal = parse_signed_proposal(signed, max_bytes=self._max_bytes)
        except MedallianceError as exc:
            await abort(context, RpcFailure.from_error(exc))
            raise
        try:
            return await self._local.process_proposal(signed, proposal)
        except EndorserRefused as exc:
            await abort(context, RpcFailure.of(Unknown, str(exc)))
            raise
