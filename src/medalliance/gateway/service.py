"""`gateway.Gateway`: endorse, submit, commit status, evaluate and chaincode events.

Modelled on Fabric's gateway (protocol doc §3): the hosting peer plans which organisations must
endorse from the contract's committed policy, collects their signed responses in Fabric's order
(its own first, in process; others' over gRPC: node/endorsers.py), returns the
unsigned prepared transaction, forwards the signed one to the ordering service, and reports
commits from its own ledger. Evaluate asks its own peer first. Failures answer with Fabric's
codes and messages, with an `ErrorDetail` per failing endorser or orderer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from google.protobuf.message import DecodeError

from medalliance.contracts.lifecycle import (
    LIFECYCLE_NAMESPACE,
    committed_collections,
    committed_definition,
)
from medalliance.errors import (
    Conflict,
    InvalidArgument,
    MedallianceError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    Unavailable,
)
from medalliance.gateway.endorse import UNREACHABLE, Collection, Plan
from medalliance.gateway.errors import Detail, RpcFailure, Unknown, abort
from medalliance.gateway.plan import Requirement, application_requirement, namespace_requirement
from medalliance.gateway.ports import Endorser, EndorserRefused, GatewayChannel, OrdererRejected
from medalliance.ledger.block_events import chaincode_events
from medalliance.ledger.signed_header import HeaderRejected, check_signed_header
from medalliance.ledger.tx import (
    MalformedTransaction,
    ProposalView,
    new_transaction_payload,
    parse_envelope,
    parse_signed_proposal,
)

log = logging.getLogger(__name__)

READERS_POLICY = "/Channel/Application/Readers"


class GatewayService(gateway_pb2_grpc.GatewayServicer):  # type: ignore[misc]
    """The Gateway API of one peer.

    `peers_for(channel)` lists each member organisation's peers that can be asked to endorse,
    own organisation first; `endorsing` names the organisations whose peers endorse contracts
    (every member endorses lifecycle changes); `broadcast` hands a signed transaction to the
    ordering service.
    """

    def __init__(
        self,
        *,
        local: Endorser,
        channel_for: Callable[[str], GatewayChannel],
        peers_for: Callable[[str], Mapping[str, Sequence[Endorser]]],
        endorsing: frozenset[str],
        broadcast: Callable[[str, bytes], Awaitable[None]],
        now: Callable[[], dt.datetime],
    ) -> None:
        self._local = local
        self._channel_for = channel_for
        self._peers_for = peers_for
        self._endorsing = endorsing
        self._broadcast = broadcast
        self._now = now

    # --- Endorse ---------------------------------------------------------------------------------

    async def Endorse(
        self, request: gateway_pb2.EndorseRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.EndorseResponse:
        try:
            return await self._endorse(request)
        except RpcFailure as failure:
            await abort(context, failure)
            raise  # unreachable: abort raises

    async def _endorse(self, request: gateway_pb2.EndorseRequest) -> gateway_pb2.EndorseResponse:
        proposal, channel = self._proposal(request)
        policy = self._policy(channel, proposal)
        peers = self._peers_for(proposal.channel_id)
        collection = Collection(
            local=self._local, peers=peers, signed=request.proposed_transaction, proposal=proposal
        )
        if request.endorsing_organizations:
            orgs = tuple(request.endorsing_organizations)
            missing = [o for o in orgs if not peers.get(o)]
            if missing:  # Fabric's planForOrgs: code and wording
                raise RpcFailure.of(
                    Unavailable,
                    f"failed to find any endorsing peers for org(s): {', '.join(missing)}",
                )
            responses = await collection.for_orgs(orgs)
        else:
            responses = await collection.planned(self._plan(channel, proposal, policy, peers))
        try:
            payload = new_transaction_payload(proposal, responses)
        except MedallianceError as exc:
            raise RpcFailure.of(Conflict, f"ProposalResponsePayloads do not match: {exc}") from None
        return gateway_pb2.EndorseResponse(
            prepared_transaction=common_pb2.Envelope(payload=payload)
        )

    def _plan(
        self,
        channel: GatewayChannel,
        proposal: ProposalView,
        policy: bytes | None,
        peers: Mapping[str, Sequence[Endorser]],
    ) -> Plan:
        """Endorsing organisations first, this peer's own first among them (Fabric's gateway
        endorses on its own peer first); the others only where a policy needs them (a majority
        when fewer than two members endorse, or a policy that names them)."""
        lifecycle = proposal.chaincode_name == LIFECYCLE_NAMESPACE
        candidates = sorted(
            (org for org, org_peers in peers.items() if org_peers),
            key=lambda org: (not (lifecycle or org in self._endorsing), org != self._local.msp_id),
        )
        members = channel.config.application_msp_ids
        reads = channel.view.state  # committed definitions read once per block (committed_reads)
        # Each contract's committed policy read once per request: the proposal's own from the
        # definition `_policy` has just read, others when an endorsement's interest names them.
        requirements: dict[str, Requirement] = {}
        if policy is not None:
            requirements[proposal.chaincode_name] = application_requirement(policy, members)

        def namespace(name: str) -> Requirement:
            if name not in requirements:
                requirements[name] = namespace_requirement(reads, name, members)
            return requirements[name]

        return Plan(
            policy=policy,
            candidates=tuple(candidates),
            members=tuple(members),
            contract=namespace(proposal.chaincode_name),
            namespace=namespace,
            collections=lambda name: committed_collections(reads, name),
            transient=bool(proposal.transient),
            local_endorses=lifecycle or self._local.msp_id in self._endorsing,
        )

    # --- Evaluate --------------------------------------------------------------------------------

    async def Evaluate(
        self, request: gateway_pb2.EvaluateRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.EvaluateResponse:
        try:
            return await self._evaluate(request)
        except RpcFailure as failure:
            await abort(context, failure)
            raise

    async def _evaluate(self, request: gateway_pb2.EvaluateRequest) -> gateway_pb2.EvaluateResponse:
        proposal, channel = self._proposal(request)
        self._policy(channel, proposal)  # an undefined contract fails before any simulation
        targets: list[Endorser] = [self._local]
        if request.target_organizations:
            peers = self._peers_for(proposal.channel_id)
            # Fabric's evaluator: the gateway's own organisation first when it is a target.
            orgs = sorted(request.target_organizations, key=lambda o: o != self._local.msp_id)
            targets = [p for org in dict.fromkeys(orgs) for p in peers.get(org, ())]
            if not targets:
                raise RpcFailure.of(
                    PreconditionFailed,
                    f"no peers of {', '.join(request.target_organizations)} on channel {proposal.channel_id}",
                )
        failures = []
        for peer in targets:
            try:
                response = await peer.process_proposal(request.proposed_transaction, proposal)
            except EndorserRefused as exc:
                message = f"evaluate call to endorser returned error: {exc}"
                raise RpcFailure.of(
                    PreconditionFailed, message, [Detail(peer.address, peer.msp_id, str(exc))]
                ) from None
            except ConnectionError as exc:
                failures.append(Detail(peer.address, peer.msp_id, f"{UNREACHABLE}: {exc}"))
                continue
            result = response.response
            if result.status >= 400:
                text = f"chaincode response {result.status}, {result.message}"
                raise RpcFailure.of(
                    Unknown,
                    f"evaluate call to endorser returned error: {text}",
                    [Detail(peer.address, peer.msp_id, text)],
                )
            return gateway_pb2.EvaluateResponse(result=result)
        raise RpcFailure.of(
            Unavailable,
            "failed to evaluate transaction, see attached details for more info",
            failures,
        )

    # --- Submit ----------------------------------------------------------------------------------

    async def Submit(
        self, request: gateway_pb2.SubmitRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.SubmitResponse:
        try:
            await self._submit(request)
        except RpcFailure as failure:
            await abort(context, failure)
        return gateway_pb2.SubmitResponse()

    async def _submit(self, request: gateway_pb2.SubmitRequest) -> None:
        if not request.HasField("prepared_transaction"):
            raise RpcFailure.of(InvalidArgument, "a prepared transaction is required")
        envelope = request.prepared_transaction
        if not envelope.signature:
            raise RpcFailure.of(InvalidArgument, "prepared transaction must be signed")
        data = envelope.SerializeToString()
        try:
            view = parse_envelope(data)
        except MalformedTransaction as exc:
            raise RpcFailure.of(InvalidArgument, str(exc)) from None
        channel = self._channel(view.header.channel_id)
        try:  # any header type: the ordering service decides what it accepts
            check_signed_header(
                view.header,
                view.signature,
                view.payload_bytes,
                channel.config.msps,
                at=self._now(),
                header_type=None,
            )
        except HeaderRejected as exc:
            raise RpcFailure.from_error(exc) from None
        try:
            await self._broadcast(view.header.channel_id, data)
        except OrdererRejected as exc:
            raise RpcFailure.of(
                Conflict, f"received unsuccessful response from orderer: {exc}"
            ) from None
        except ConnectionError as exc:
            raise RpcFailure.of(
                Unavailable,
                "no orderers could successfully process transaction",
                [Detail("", "", str(exc))],
            ) from None

    # --- CommitStatus ----------------------------------------------------------------------------

    async def CommitStatus(
        self, request: gateway_pb2.SignedCommitStatusRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.CommitStatusResponse:
        try:
            return await self._commit_status(request)
        except RpcFailure as failure:
            await abort(context, failure)
            raise

    async def _commit_status(
        self, signed: gateway_pb2.SignedCommitStatusRequest
    ) -> gateway_pb2.CommitStatusResponse:
        request = gateway_pb2.CommitStatusRequest()
        _parse(request, signed.request, "commit status request")
        if not request.identity:
            raise RpcFailure.of(InvalidArgument, "no identity provided")
        if not request.channel_id:
            raise RpcFailure.of(InvalidArgument, "no channel ID provided")
        if not request.transaction_id:
            raise RpcFailure.of(InvalidArgument, "transaction ID should not be empty")
        channel = self._channel(request.channel_id)
        self._authorize(channel, signed.request, request.identity, signed.signature)
        # Registered before the index is read, so a commit in between still wakes it; the
        # block's commit completes it with the location the index holds (network/block_feed.py).
        future, cancel = channel.feed.tx_waiter(request.transaction_id)
        try:
            location = channel.store.tx_location(request.transaction_id)
            if location is None:
                location = await future
        except asyncio.CancelledError:
            if channel.feed.closed:
                raise RpcFailure.of(Unavailable, "the peer is shutting down") from None
            raise
        finally:
            cancel()
        return gateway_pb2.CommitStatusResponse(
            result=location.validation_code, block_number=location.block_num
        )

    # --- ChaincodeEvents -------------------------------------------------------------------------

    async def ChaincodeEvents(
        self, signed: gateway_pb2.SignedChaincodeEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[gateway_pb2.ChaincodeEventsResponse]:
        try:
            request = gateway_pb2.ChaincodeEventsRequest()
            _parse(request, signed.request, "chaincode events request")
            if not request.channel_id or not request.chaincode_id:
                raise RpcFailure.of(InvalidArgument, "a channel and a chaincode name are required")
            channel = self._channel(request.channel_id)
            self._authorize(channel, signed.request, request.identity, signed.signature)
            start, skip_through = self._events_start(channel, request)
        except RpcFailure as failure:
            await abort(context, failure)
            return
        number = start
        while True:
            if not await channel.feed.wait_for_height(number + 1):
                await abort(context, RpcFailure.of(Unavailable, "the peer is shutting down"))
                return
            events = chaincode_events(channel.store.get_block(number), request.chaincode_id)
            if skip_through and number == start and any(e.tx_id == skip_through for e in events):
                index = next(i for i, e in enumerate(events) if e.tx_id == skip_through)
                events = events[index + 1 :]
            if events:
                yield gateway_pb2.ChaincodeEventsResponse(events=events, block_number=number)
            number += 1

    def _events_start(
        self, channel: GatewayChannel, request: gateway_pb2.ChaincodeEventsRequest
    ) -> tuple[int, str]:
        if request.after_transaction_id:
            location = channel.store.tx_location(request.after_transaction_id)
            if location is not None:
                return location.block_num, request.after_transaction_id
        kind = (
            request.start_position.WhichOneof("Type")
            if request.HasField("start_position")
            else None
        )
        if kind == "specified":
            return int(request.start_position.specified.number), request.after_transaction_id
        if kind in (None, "next_commit"):
            return channel.feed.height, ""
        raise RpcFailure.of(InvalidArgument, f"invalid start position type: {kind}")

    # --- shared checks ---------------------------------------------------------------------------

    def _channel(self, channel_id: str) -> GatewayChannel:
        try:
            return self._channel_for(channel_id)
        except NotFound:
            raise RpcFailure.of(NotFound, f"channel '{channel_id}' not found") from None

    def _proposal(
        self, request: gateway_pb2.EndorseRequest | gateway_pb2.EvaluateRequest
    ) -> tuple[ProposalView, GatewayChannel]:
        if not request.HasField("proposed_transaction"):
            raise RpcFailure.of(
                InvalidArgument, "the proposed transaction must contain a signed proposal"
            )
        try:
            proposal = parse_signed_proposal(
                request.proposed_transaction, max_bytes=self._max_bytes
            )
        except MalformedTransaction as exc:
            raise RpcFailure.of(
                InvalidArgument, f"failed to unpack transaction proposal: {exc}"
            ) from None
        if not proposal.chaincode_name:
            raise RpcFailure.of(InvalidArgument, "the proposal names no chaincode")
        return proposal, self._channel(proposal.channel_id)

    def _max_bytes(self, channel_id: str) -> int:
        return self._channel(channel_id).config.batch_absolute_max_bytes

    def _policy(self, channel: GatewayChannel, proposal: ProposalView) -> bytes | None:
        """The contract's application policy; None for `_lifecycle` (a member majority)."""
        name = proposal.chaincode_name
        if name == LIFECYCLE_NAMESPACE:
            return None
        # the committed definition as endorsements read it: once per block, not per request
        definition = committed_definition(channel.view.state, name)
        if definition is None or definition.deregistered:
            raise RpcFailure.of(
                PreconditionFailed,
                f"no chaincode definition for {name} on channel {proposal.channel_id}: "
                f"make sure the chaincode {name} has been successfully defined on channel "
                f"{proposal.channel_id} and try again",
            )
        return definition.endorsement_policy

    def _authorize(
        self, channel: GatewayChannel, data: bytes, identity: bytes, signature: bytes
    ) -> None:
        now = self._now()
        try:
            creator = channel.config.msps.deserialize(identity, at=now)
            # valid at `now`, its signature verified: the policy is asked of it directly
            allowed = creator.verify(signature, data) and channel.config.satisfied_by(
                READERS_POLICY, (creator,)
            )
        except MedallianceError as exc:
            raise RpcFailure.of(PermissionDenied, f"access denied: {exc}") from None
        if not allowed:
            raise RpcFailure.of(PermissionDenied, f"access denied: {READERS_POLICY} not satisfied")


def _parse(message: object, data: bytes, what: str) -> None:
    if not data:
        raise RpcFailure.of(InvalidArgument, f"a {what} is required")
    try:
        message.ParseFromString(data)  # type: ignore[attr-defined]
    except DecodeError:
        raise RpcFailure.of(InvalidArgument, f"malformed {what}") from None
