"""`gateway.Gateway`: endorse, submit, commit status, evaluate and chaincode events.

Modelled on Fabric's gateway (protocol doc §3): the hosting peer plans which organisations must
endorse from the contract's committed policy, collects their signed responses (its own in
process, others' over `protos.Endorser`), returns the unsigned prepared transaction, forwards the
signed one to the ordering service, and reports commits from its own ledger. Failures answer
with Fabric's codes and messages, with one `ErrorDetail` per failing endorser or orderer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.peer import proposal_pb2, proposal_response_pb2
from google.protobuf.message import DecodeError

from medalliance.contracts.lifecycle import LIFECYCLE_NAMESPACE, committed_definition
from medalliance.errors import MedallianceError, NotFound
from medalliance.gateway.errors import Detail, RpcFailure, abort
from medalliance.gateway.plan import (
    extend_plan,
    interest_requirements,
    majority,
    named_orgs,
    namespace_requirement,
    plan_endorsers,
)
from medalliance.gateway.ports import Endorser, EndorserRefused, GatewayChannel, OrdererRejected
from medalliance.identity.policy import SignedData
from medalliance.ledger.block_events import chaincode_events
from medalliance.ledger.tx import (
    MalformedTransaction,
    ProposalView,
    new_transaction_payload,
    parse_envelope,
    parse_signed_proposal,
)

log = logging.getLogger(__name__)

READERS_POLICY = "/Channel/Application/Readers"
Code = grpc.StatusCode
ENDORSE_FAILED = "failed to endorse transaction, see attached details for more info"
CHAINCODE_RESPONSE = "chaincode response"
UNREACHABLE = "peer unavailable"
# Waits before asking a lagging endorser again while it catches up: about 9 s in all, more than a
# peer needs to leave a silent block source (orderer_link.WATCH_S) and fetch from another.
LAG_RETRY_DELAYS_S = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.4, 3.2)


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
        candidates: list[str] = []
        if request.endorsing_organizations:
            orgs = tuple(request.endorsing_organizations)
            missing = [o for o in orgs if not peers.get(o)]
            if missing:
                raise RpcFailure(
                    Code.FAILED_PRECONDITION,
                    f"no peers of {', '.join(missing)} are available on channel {proposal.channel_id}",
                )
        else:
            # Endorsing organisations first; the others only where a policy needs them (a
            # majority when fewer than two members endorse, or a policy that names them).
            candidates = sorted(
                (org for org, org_peers in peers.items() if org_peers),
                key=lambda org: (
                    not (proposal.chaincode_name == LIFECYCLE_NAMESPACE or org in self._endorsing)
                ),
            )
        signed = request.proposed_transaction
        if request.endorsing_organizations:
            responses = await self._endorse_all(peers, orgs, signed, proposal)
        else:
            responses = await self._endorse_planned(
                channel, policy, peers, candidates, signed, proposal
            )
        try:
            payload = new_transaction_payload(proposal, responses)
        except MedallianceError as exc:
            raise RpcFailure(
                Code.ABORTED, f"ProposalResponsePayloads do not match: {exc}"
            ) from None
        return gateway_pb2.EndorseResponse(
            prepared_transaction=common_pb2.Envelope(payload=payload)
        )

    async def _endorse_planned(
        self,
        channel: GatewayChannel,
        policy: bytes | None,
        peers: Mapping[str, Sequence[Endorser]],
        candidates: list[str],
        signed: proposal_pb2.SignedProposal,
        proposal: ProposalView,
    ) -> list[proposal_response_pb2.ProposalResponse]:
        """Endorse by a plan of the gateway's own; an organisation none of whose peers answers
        is left out and the plan made again without it (Fabric's gateway tries other layouts),
        so one hospital's peer being down does not stop a policy others can satisfy."""
        members = channel.config.application_msp_ids
        unreachable: list[Detail] = []
        while True:
            try:
                orgs = (
                    plan_endorsers(policy, candidates, members)
                    if policy is not None
                    else majority(candidates, members)
                )
            except MedallianceError as exc:
                if unreachable:  # the policy needs an organisation whose peers are down
                    raise RpcFailure(Code.ABORTED, ENDORSE_FAILED, unreachable) from None
                raise RpcFailure(Code.FAILED_PRECONDITION, str(exc)) from None
            try:
                responses = await self._endorse_all(peers, orgs, signed, proposal)
                # Fabric's gateway: the first endorsements say which key-level policies the
                # writes must satisfy; endorse on the further organisations they need.
                more = self._more_orgs(channel, peers, candidates, orgs, responses[0].interest)
                return responses + await self._endorse_all(
                    peers, more, signed, proposal, responses[0]
                )
            except _Unreachable as exc:
                log.warning("endorser unreachable, planning without it", extra={"msp": exc.orgs})
                candidates = [c for c in candidates if c not in exc.orgs]
                unreachable += [d for d in exc.details if d.msp_id in exc.orgs]

    async def _endorse_all(
        self,
        peers: Mapping[str, Sequence[Endorser]],
        orgs: Sequence[str],
        signed: proposal_pb2.SignedProposal,
        proposal: ProposalView,
        first: proposal_response_pb2.ProposalResponse | None = None,
    ) -> list[proposal_response_pb2.ProposalResponse]:
        """One endorsement per organisation, all with one result (and `first`'s, when given).

        A peer may not have committed the latest block yet (peers receive blocks at slightly
        different times): its contract then refuses, or simulates other versions. While the
        endorsers disagree they are asked again, briefly, until the laggards have caught up.
        When every endorser refuses, the hosting peer (which holds what its client has seen
        committed) simulates too: if it refuses as well, that is the contract's answer, returned
        at once; if it accepts, the endorsers are behind and are asked again.
        """
        details: list[Detail] = []
        for delay in (0.0, *LAG_RETRY_DELAYS_S):
            await asyncio.sleep(delay)
            outcomes = await asyncio.gather(
                *(self._endorse_at(peers[o], signed, proposal) for o in orgs)
            )
            details = [o for o in outcomes if isinstance(o, Detail)]
            unreachable = [d for d in details if d.message.startswith(UNREACHABLE)]
            if unreachable and len(unreachable) == len(
                [d for d in details if not d.message.startswith(CHAINCODE_RESPONSE)]
            ):
                raise _Unreachable(tuple(d.msp_id for d in unreachable), details)
            if any(not d.message.startswith(CHAINCODE_RESPONSE) for d in details):
                raise RpcFailure(Code.ABORTED, ENDORSE_FAILED, details)
            responses = [o for o in outcomes if not isinstance(o, Detail)]
            if not responses and first is None:
                first = await self._local_result(orgs, signed, proposal)
                if first is None:
                    break  # no endorser accepted, nor the hosting peer: the contract refused
            payloads = [r.payload for r in responses] + ([first.payload] if first else [])
            if not details and len(set(payloads)) == 1:
                return responses
            common = max(set(payloads), key=payloads.count)
            details += [
                Detail("", org, "its simulation differs from the other endorsers' results")
                for org, r in zip(orgs, outcomes, strict=True)
                if not isinstance(r, Detail) and r.payload != common
            ]
        raise RpcFailure(Code.ABORTED, ENDORSE_FAILED, details)

    async def _local_result(
        self, orgs: Sequence[str], signed: proposal_pb2.SignedProposal, proposal: ProposalView
    ) -> proposal_response_pb2.ProposalResponse | None:
        """The hosting peer's own simulation, when it was not among `orgs` and accepts: the
        result the endorsers should reach once they have caught up (it is never submitted)."""
        if self._local.msp_id in orgs:
            return None
        outcome = await self._endorse_at([self._local], signed, proposal)
        return None if isinstance(outcome, Detail) else outcome

    def _more_orgs(
        self,
        channel: GatewayChannel,
        peers: Mapping[str, Sequence[Endorser]],
        candidates: Sequence[str],
        chosen: Sequence[str],
        interest: proposal_response_pb2.ChaincodeInterest,
    ) -> tuple[str, ...]:
        """The organisations still to ask so that every policy of `interest` is satisfied."""
        members = channel.config.application_msp_ids
        needs = interest_requirements(
            interest, lambda name: namespace_requirement(channel.state, name, members)
        )
        named = [o for o in named_orgs(interest) if peers.get(o)]
        try:
            return extend_plan(needs, [*named, *candidates], chosen)[len(chosen) :]
        except MedallianceError as exc:
            raise RpcFailure(Code.FAILED_PRECONDITION, str(exc)) from None

    async def _endorse_at(
        self,
        peers: Sequence[Endorser],
        signed: proposal_pb2.SignedProposal,
        proposal: ProposalView,
    ) -> proposal_response_pb2.ProposalResponse | Detail:
        """One organisation's endorsement: its peers are tried in turn while unreachable."""
        detail = Detail("", "", f"{UNREACHABLE}: no peer")
        for peer in peers:
            try:
                response = await peer.process_proposal(signed, proposal)
            except EndorserRefused as exc:
                return Detail(peer.address, peer.msp_id, str(exc))
            except ConnectionError as exc:
                detail = Detail(peer.address, peer.msp_id, f"{UNREACHABLE}: {exc}")
                continue
            if response.response.status >= 400 or not response.payload:
                return Detail(
                    peer.address,
                    peer.msp_id,
                    f"{CHAINCODE_RESPONSE} {response.response.status}, {response.response.message}",
                )
            return response
        return detail

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
            targets = [p for org in request.target_organizations for p in peers.get(org, ())]
            if not targets:
                raise RpcFailure(
                    Code.FAILED_PRECONDITION,
                    f"no peers of {', '.join(request.target_organizations)} on channel {proposal.channel_id}",
                )
        failures = []
        for peer in targets:
            try:
                response = await peer.process_proposal(request.proposed_transaction, proposal)
            except EndorserRefused as exc:
                message = f"evaluate call to endorser returned error: {exc}"
                raise RpcFailure(
                    Code.FAILED_PRECONDITION, message, [Detail(peer.address, peer.msp_id, str(exc))]
                ) from None
            except ConnectionError as exc:
                failures.append(Detail(peer.address, peer.msp_id, f"{UNREACHABLE}: {exc}"))
                continue
            result = response.response
            if result.status >= 400:
                text = f"chaincode response {result.status}, {result.message}"
                raise RpcFailure(
                    Code.UNKNOWN,
                    f"evaluate call to endorser returned error: {text}",
                    [Detail(peer.address, peer.msp_id, text)],
                )
            return gateway_pb2.EvaluateResponse(result=result)
        raise RpcFailure(
            Code.UNAVAILABLE,
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
            raise RpcFailure(Code.INVALID_ARGUMENT, "a prepared transaction is required")
        envelope = request.prepared_transaction
        if not envelope.signature:
            raise RpcFailure(Code.INVALID_ARGUMENT, "prepared transaction must be signed")
        data = envelope.SerializeToString()
        try:
            view = parse_envelope(data)
        except MalformedTransaction as exc:
            raise RpcFailure(Code.INVALID_ARGUMENT, str(exc)) from None
        channel = self._channel(view.header.channel_id)
        now = self._now()
        try:
            creator = channel.config.msps.deserialize(view.header.creator, at=now)
            signed = creator.verify(view.signature, view.payload_bytes)
        except MedallianceError as exc:
            raise RpcFailure(
                Code.PERMISSION_DENIED, f"transaction creator is not valid: {exc}"
            ) from None
        if not signed:
            raise RpcFailure(
                Code.PERMISSION_DENIED,
                "the transaction signature does not verify against its creator",
            )
        try:
            await self._broadcast(view.header.channel_id, data)
        except OrdererRejected as exc:
            raise RpcFailure(
                Code.ABORTED, f"received unsuccessful response from orderer: {exc}"
            ) from None
        except ConnectionError as exc:
            raise RpcFailure(
                Code.UNAVAILABLE,
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
            raise RpcFailure(Code.INVALID_ARGUMENT, "no identity provided")
        if not request.channel_id:
            raise RpcFailure(Code.INVALID_ARGUMENT, "no channel ID provided")
        if not request.transaction_id:
            raise RpcFailure(Code.INVALID_ARGUMENT, "transaction ID should not be empty")
        channel = self._channel(request.channel_id)
        self._authorize(channel, signed.request, request.identity, signed.signature)
        future, cancel = channel.feed.tx_waiter(request.transaction_id)
        try:
            location = channel.store.tx_location(request.transaction_id)
            if location is None:
                await future
                location = channel.store.tx_location(request.transaction_id)
        except asyncio.CancelledError:
            if channel.feed.closed:
                raise RpcFailure(Code.UNAVAILABLE, "the peer is shutting down") from None
            raise
        finally:
            cancel()
        if location is None:  # committed and then lost: cannot happen with a durable store
            raise RpcFailure(
                Code.INTERNAL, f"transaction {request.transaction_id} not found after commit"
            )
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
                raise RpcFailure(
                    Code.INVALID_ARGUMENT, "a channel and a chaincode name are required"
                )
            channel = self._channel(request.channel_id)
            self._authorize(channel, signed.request, request.identity, signed.signature)
            start, skip_through = self._events_start(channel, request)
        except RpcFailure as failure:
            await abort(context, failure)
            return
        number = start
        while True:
            if not await channel.feed.wait_for_height(number + 1):
                await abort(context, RpcFailure(Code.UNAVAILABLE, "the peer is shutting down"))
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
        raise RpcFailure(Code.INVALID_ARGUMENT, f"invalid start position type: {kind}")

    # --- shared checks ---------------------------------------------------------------------------

    def _channel(self, channel_id: str) -> GatewayChannel:
        try:
            return self._channel_for(channel_id)
        except NotFound:
            raise RpcFailure(Code.NOT_FOUND, f"channel '{channel_id}' not found") from None

    def _proposal(
        self, request: gateway_pb2.EndorseRequest | gateway_pb2.EvaluateRequest
    ) -> tuple[ProposalView, GatewayChannel]:
        if not request.HasField("proposed_transaction"):
            raise RpcFailure(
                Code.INVALID_ARGUMENT, "the proposed transaction must contain a signed proposal"
            )
        try:
            proposal = parse_signed_proposal(
                request.proposed_transaction, max_bytes=self._max_bytes
            )
        except MalformedTransaction as exc:
            raise RpcFailure(
                Code.INVALID_ARGUMENT, f"failed to unpack transaction proposal: {exc}"
            ) from None
        if not proposal.chaincode_name:
            raise RpcFailure(Code.INVALID_ARGUMENT, "the proposal names no chaincode")
        return proposal, self._channel(proposal.channel_id)

    def _max_bytes(self, channel_id: str) -> int:
        return self._channel(channel_id).config.batch_absolute_max_bytes

    def _policy(self, channel: GatewayChannel, proposal: ProposalView) -> bytes | None:
        """The contract's application policy; None for `_lifecycle` (a member majority)."""
        name = proposal.chaincode_name
        if name == LIFECYCLE_NAMESPACE:
            return None
        definition = committed_definition(channel.state, name)
        if definition is None or definition.deregistered:
            raise RpcFailure(
                Code.FAILED_PRECONDITION,
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
            allowed = creator.verify(signature, data) and channel.config.evaluate_policy(
                READERS_POLICY, [SignedData(data, identity, signature)], at=now
            )
        except MedallianceError as exc:
            raise RpcFailure(Code.PERMISSION_DENIED, f"access denied: {exc}") from None
        if not allowed:
            raise RpcFailure(
                Code.PERMISSION_DENIED, f"access denied: {READERS_POLICY} not satisfied"
            )


def _parse(message: object, data: bytes, what: str) -> None:
    if not data:
        raise RpcFailure(Code.INVALID_ARGUMENT, f"a {what} is required")
    try:
        message.ParseFromString(data)  # type: ignore[attr-defined]
    except DecodeError:
        raise RpcFailure(Code.INVALID_ARGUMENT, f"malformed {what}") from None


class _Unreachable(Exception):
    """No peer of `orgs` answered: a plan without them may still succeed."""

    def __init__(self, orgs: tuple[str, ...], details: list[Detail]) -> None:
        super().__init__(", ".join(orgs))
        self.orgs = orgs
        self.details = details
