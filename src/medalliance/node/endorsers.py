"""The endorsers a peer's gateway can ask: itself, in process, and other peers over gRPC."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import time
from collections.abc import Awaitable, Callable

import grpc
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import peer_pb2_grpc, proposal_pb2, proposal_response_pb2
from google.protobuf.message import DecodeError

from medalliance.errors import MedallianceError
from medalliance.gateway.peer_services import PROCESS_PROPOSALS
from medalliance.gateway.ports import EndorserRefused
from medalliance.ledger.tx import ProposalView, outside_time_window
from medalliance.node.exchange_streams import ExchangeStreams
from medalliance.node.peer import Peer

ENDORSE_TIMEOUT_S = 15.0
# How long a proposal waits for a connection that is not up: past the longest reconnect back-off
# (network/tls.py, 2 s), so a peer that restarted is reached, while a dead one costs this, not
# ENDORSE_TIMEOUT_S, on every proposal that would have gone to it.
CONNECT_TIMEOUT_S = 3.0
# (channel, chaincode, success, seconds) of each proposal this peer answered: node/metrics.py
ProposalObserver = Callable[[str, str, bool, float], None]


# (channel, tx id, private read-write set) -> pushed to member peers, or raises
Disseminate = Callable[[str, str, bytes], Awaitable[object]]


class LocalEndorser:
    """The hosting peer's own endorser, called in process."""

    def __init__(
        self,
        peer: Peer,
        address: str,
        now: Callable[[], dt.datetime],
        observe: ProposalObserver | None = None,
        disseminate: Disseminate | None = None,
    ) -> None:
        self._peer = peer
        self._address = address
        self._now = now
        self._observe = observe
        self._disseminate = disseminate

    @property
    def msp_id(self) -> str:
        return self._peer.msp_id

    @property
    def address(self) -> str:
        return self._address

    async def process_proposal(
        self, signed: proposal_pb2.SignedProposal, proposal: ProposalView
    ) -> proposal_response_pb2.ProposalResponse:
        if self._observe is None:
            return await self._process(proposal)
        started = time.perf_counter()
        success = False
        try:
            response = await self._process(proposal)
            success = response.response.status < 400
            return response
        finally:
            seconds = time.perf_counter() - started
            self._observe(proposal.channel_id, proposal.chaincode_name, success, seconds)

    async def _process(self, proposal: ProposalView) -> proposal_response_pb2.ProposalResponse:
        now = self._now()
        if outside_time_window(proposal.header.timestamp_ms, now):
            raise EndorserRefused(
                "the proposal's timestamp is more than 15 minutes from the peer's clock; "
                "check the client's clock"
            )
        try:
            endorsed = self._peer.endorse_proposal(proposal, now=now)
        except MedallianceError as exc:
            raise EndorserRefused(
                f"access denied: channel [{proposal.channel_id}] creator org [{_msp(proposal)}]: {exc}"
                if exc.status.grpc == "PERMISSION_DENIED"
                else str(exc)
            ) from None
        private = endorsed.result.private_rwset
        if endorsed.ok and private and self._disseminate is not None:
            try:  # Fabric fails the endorsement when requiredPeerCount is not reached
                await self._disseminate(proposal.channel_id, proposal.tx_id, private)
            except MedallianceError as exc:
                raise EndorserRefused(str(exc)) from None
        return endorsed.response


class RemoteEndorser:
    """Another organisation's peer, reached over mutual TLS.

    Proposals go on reused `medalliance.Endorser/ProcessProposals` streams, one in flight per
    stream (`exchange_streams.py`): over both ends a unary `protos.Endorser/ProcessProposal`
    call costs about three times the CPU of an exchange on an open stream
    (`benchmarks/protocol_floor.py`). A peer that does not serve the stream (UNIMPLEMENTED: an
    older version) is asked with the unary call from then on, until this gateway restarts.
    Either way a refusal is `EndorserRefused` with the peer's text; a peer that cannot be
    reached or does not answer within `ENDORSE_TIMEOUT_S` is `ConnectionError`.
    """

    def __init__(self, msp_id: str, address: str, channel: grpc.aio.Channel) -> None:
        self._msp_id = msp_id
        self._address = address
        self._channel = channel
        self._stub = peer_pb2_grpc.EndorserStub(channel)
        self._streams: ExchangeStreams[proposal_response_pb2.ProposalResponse] | None = (
            ExchangeStreams(
                functools.partial(
                    channel.stream_stream(
                        PROCESS_PROPOSALS,
                        request_serializer=None,  # bytes as given
                        response_deserializer=proposal_response_pb2.ProposalResponse.FromString,
                    ),
                    wait_for_ready=True,  # as the unary call: the connection may just be back
                ),
                ENDORSE_TIMEOUT_S,
                f"peer {address}",
                _stream_refusal,
            )
        )

    @property
    def msp_id(self) -> str:
        return self._msp_id

    @property
    def address(self) -> str:
        return self._address

    async def process_proposal(
        self, signed: proposal_pb2.SignedProposal, proposal: ProposalView
    ) -> proposal_response_pb2.ProposalResponse:
        if self._channel.get_state(try_to_connect=True) != grpc.ChannelConnectivity.READY:
            try:
                await asyncio.wait_for(self._channel.channel_ready(), CONNECT_TIMEOUT_S)
            except TimeoutError:
                raise ConnectionError(
                    f"no connection to {self._address} within {CONNECT_TIMEOUT_S:g} s"
                ) from None
        if self._streams is not None:
            try:
                return await self._streams.send(signed.SerializeToString())
            except _NoStreams:
                self._streams = None
        try:
            response: proposal_response_pb2.ProposalResponse = await self._stub.ProcessProposal(
                signed, timeout=ENDORSE_TIMEOUT_S, wait_for_ready=True
            )
        except grpc.aio.AioRpcError as exc:
            raise _refusal(exc) from None
        return response


class _NoStreams(Exception):
    """The peer does not serve `ProcessProposals`."""


def _stream_refusal(error: grpc.aio.AioRpcError) -> Exception:
    return _NoStreams() if error.code() is grpc.StatusCode.UNIMPLEMENTED else _refusal(error)


def _refusal(error: grpc.aio.AioRpcError) -> Exception:
    """What the gateway is told of a proposal call that ended with `error`."""
    code = error.code()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return ConnectionError(error.details() or code.name)
    return EndorserRefused(error.details() or code.name)


def _msp(proposal: ProposalView) -> str:
    identity = identities_pb2.SerializedIdentity()
    try:
        identity.ParseFromString(proposal.header.creator)
    except DecodeError:
        return "unknown"
    return str(identity.mspid) or "unknown"
