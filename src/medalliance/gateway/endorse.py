"""Collecting the endorsements of one `Gateway.Endorse` call, in the order Fabric's gateway does.

Fabric's gateway endorses first on one peer, its own organisation's when that organisation takes
part in a way of satisfying the policy; if that endorsement fails it stops there and answers
"failed to endorse transaction" with that one peer's `ErrorDetail`. The first response's
interest (the key-level policies the writes must satisfy) then decides which further
organisations must endorse; a failure among those is "failed to collect enough transaction
endorsements", with the failing peers' details. An organisation none of whose peers answers is
left out and the plan made again without it, as Fabric tries its other layouts.

The hosting peer's own result is authoritative (its client has seen what it committed); other
peers may not have committed the latest block yet, so while they disagree with it they are asked
again, briefly (`LAG_RETRY_DELAYS_S`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from fabric_protos.peer import proposal_pb2, proposal_response_pb2
from fabric_protos.peer.proposal_response_pb2 import ProposalResponse

from medalliance.errors import Conflict, MedallianceError, PreconditionFailed
from medalliance.gateway.errors import Detail, RpcFailure
from medalliance.gateway.plan import (
    CollectionsOf,
    Requirement,
    collection_requirements,
    extend_plan,
    interest_requirements,
    majority,
    named_orgs,
    plan_endorsers,
    protected_collections,
)
from medalliance.gateway.ports import Endorser, EndorserRefused
from medalliance.ledger.tx import ProposalView

log = logging.getLogger(__name__)

# Fabric's wording (internal/pkg/gateway/endorse.go): the first endorsement failed, or a later one.
ENDORSE_FAILED = "failed to endorse transaction, see attached details for more info"
COLLECT_FAILED = (
    "failed to collect enough transaction endorsements, see attached details for more info"
)
MISMATCH = "ProposalResponsePayloads do not match"
CHAINCODE_RESPONSE = "chaincode response"
UNREACHABLE = "peer unavailable"
# Fabric's wordings when transient data would reach an organisation it must not.
NO_LOCAL_ENDORSER = (
    "no endorsers found in the gateway's organization; retry specifying endorsing "
    "organization(s) to protect transient data"
)
PROTECTED = (
    "requires endorsement from organisation(s) that are not in the distribution policy of the "
    "private data collection(s): [{}]; retry specifying trusted endorsing organizations to "
    "protect transient data"
)
# Waits before asking a lagging endorser again while it catches up: about 9 s in all, more than a
# peer needs to leave a silent block source (orderer_link.WATCH_S) and fetch from another.
LAG_RETRY_DELAYS_S = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.4, 3.2)


@dataclass(frozen=True, slots=True)
class Plan:
    """What decides the endorsers: the contract's application policy (None: a member majority,
    as for `_lifecycle`), the organisations that may endorse in order of preference, the
    channel's members and, per contract name, its committed policy as a requirement."""

    policy: bytes | None
    candidates: tuple[str, ...]
    members: tuple[str, ...]
    contract: Requirement
    namespace: Callable[[str], Requirement]
    # per contract name, its committed private data collections
    collections: CollectionsOf = field(default=lambda name: {})
    # the proposal carries transient data: endorse first on this peer's organisation, and let
    # only members of the collections written endorse (Fabric's gateway protects it so)
    transient: bool = False
    # this peer's organisation endorses contracts (a secondary hospital's does not: its
    # gateway's proposals, transient data or not, go to the organisations that endorse)
    local_endorses: bool = True


class Collection:
    """One proposal's endorsements from the peers of `peers` (by organisation); `local` is the
    hosting peer, called in process."""

    def __init__(
        self,
        *,
        local: Endorser,
        peers: Mapping[str, Sequence[Endorser]],
        signed: proposal_pb2.SignedProposal,
        proposal: ProposalView,
    ) -> None:
        self._local = local
        self._peers = peers
        self._signed = signed
        self._proposal = proposal

    async def for_orgs(self, orgs: Sequence[str]) -> list[ProposalResponse]:
        """One endorsement from each of `orgs`, named by the client (Fabric's `planForOrgs`:
        every one at once, and any failure is a failure to collect enough)."""
        try:
            return await self._endorse_all(orgs, None, COLLECT_FAILED)
        except _Unreachable as exc:
            raise RpcFailure.of(Conflict, COLLECT_FAILED, exc.details) from None

    async def planned(self, plan: Plan) -> list[ProposalResponse]:
        """The first endorsement (the hosting peer's when its organisation is in the plan),
        then the fewest further organisations that satisfy the contract's and keys' policies."""
        candidates = list(plan.candidates)
        failed: list[Detail] = []
        while True:
            first_org = self._first_org(plan, candidates, failed)
            try:
                first = await self._first(first_org)
                break
            except _Unreachable as exc:  # only another organisation's peers: replan without it
                log.warning(
                    "first endorser unreachable, planning without it", extra={"msp": exc.orgs}
                )
                candidates = [c for c in candidates if c not in exc.orgs]
                failed += exc.details
        failed = []
        while True:
            more = self._more(plan, candidates, first_org, first.interest, failed)
            try:
                return [first, *await self._endorse_all(more, first, COLLECT_FAILED)]
            except _Unreachable as exc:
                log.warning("endorser unreachable, planning without it", extra={"msp": exc.orgs})
                candidates = [c for c in candidates if c not in exc.orgs]
                failed += exc.details

    def _first_org(self, plan: Plan, candidates: Sequence[str], failed: list[Detail]) -> str:
        """This peer's organisation when the initial plan includes it, or always when the
        proposal carries transient data (which must not leave it before the contract says
        which collections it goes to); otherwise the plan's first."""
        local = self._local.msp_id
        if plan.transient and plan.local_endorses:
            if local not in candidates:
                raise RpcFailure.of(PreconditionFailed, NO_LOCAL_ENDORSER)
            return local
        orgs = _initial_plan(plan, candidates, failed, ENDORSE_FAILED)
        return local if local in orgs else orgs[0]

    async def _first(self, org: str) -> ProposalResponse:
        if org != self._local.msp_id:
            (response,) = await self._endorse_all([org], None, ENDORSE_FAILED)
            return response
        # The hosting organisation's peers, itself first: no retry for lag, as its own ledger
        # is the one its client reads; a refusal is the answer.
        outcome = await self._endorse_at(self._peers.get(org) or [self._local])
        if isinstance(outcome, Detail):
            raise RpcFailure.of(Conflict, ENDORSE_FAILED, [outcome])
        return outcome

    def _more(
        self,
        plan: Plan,
        candidates: Sequence[str],
        first_org: str,
        interest: proposal_response_pb2.ChaincodeInterest,
        failed: list[Detail],
    ) -> tuple[str, ...]:
        """The organisations still to ask so that the contract's policy and every policy of
        the first response's interest are satisfied together with `first_org`."""
        named = [o for o in named_orgs(interest) if self._peers.get(o) and o in candidates]
        ordered = [*named, *candidates]
        try:
            needs = _needs(plan, interest, protect=plan.transient)
            return extend_plan(needs, ordered, [first_org])[1:]
        except MedallianceError as exc:
            if failed:  # the policies need an organisation whose peers are down
                raise RpcFailure.of(Conflict, COLLECT_FAILED, failed) from None
            protected = protected_collections(interest) if plan.transient else []
            if protected and _plannable(plan, interest, ordered, first_org):
                raise RpcFailure.of(
                    PreconditionFailed, PROTECTED.format(" ".join(protected))
                ) from None
            raise RpcFailure.of(PreconditionFailed, str(exc)) from None

    async def _endorse_all(
        self, orgs: Sequence[str], first: ProposalResponse | None, failure: str
    ) -> list[ProposalResponse]:
        """One endorsement per organisation, all with one result (and `first`'s, when given).

        While the endorsers disagree they are asked again, briefly, until laggards have caught
        up. When every endorser refuses, the hosting peer simulates too: if it refuses as well,
        that is the contract's answer, returned at once; if it accepts, the endorsers are behind
        and are asked again.
        """
        details: list[Detail] = []
        for attempt, delay in enumerate((0.0, *LAG_RETRY_DELAYS_S)):
            if attempt:
                await asyncio.sleep(delay)
            outcomes = await self._answers(orgs)
            details = [o for o in outcomes if isinstance(o, Detail)]
            unreachable = [d for d in details if d.message.startswith(UNREACHABLE)]
            if unreachable and len(unreachable) == len(
                [d for d in details if not d.message.startswith(CHAINCODE_RESPONSE)]
            ):
                raise _Unreachable(tuple(d.msp_id for d in unreachable), unreachable)
            if any(not d.message.startswith(CHAINCODE_RESPONSE) for d in details):
                raise RpcFailure.of(Conflict, failure, details)
            answers = [o for o in outcomes if isinstance(o, _Answer)]
            responses = [a.response for a in answers]
            if not responses and first is None:
                first = await self._local_result(orgs)
                if first is None:
                    break  # no endorser accepted, nor the hosting peer: the contract refused
            payloads = [r.payload for r in responses] + ([first.payload] if first else [])
            if not details and len(set(payloads)) == 1:
                return responses
            common = first.payload if first else max(set(payloads), key=payloads.count)
            details += [
                Detail(a.address, a.msp_id, MISMATCH)
                for a in answers
                if a.response.payload != common
            ]
        raise RpcFailure.of(Conflict, failure, details)

    async def _answers(self, orgs: Sequence[str]) -> list[_Answer | Detail]:
        """Each organisation's answer, asked at once; one organisation (the usual second
        endorser) is awaited directly rather than through a task."""
        if len(orgs) == 1:
            return [await self._answer(self._peers[orgs[0]])]
        return list(await asyncio.gather(*(self._answer(self._peers[o]) for o in orgs)))

    async def _local_result(self, orgs: Sequence[str]) -> ProposalResponse | None:
        """The hosting peer's own simulation, when it was not among `orgs` and accepts: the
        result the endorsers should reach once they have caught up (it is never submitted)."""
        if self._local.msp_id in orgs:
            return None
        outcome = await self._endorse_at([self._local])
        return None if isinstance(outcome, Detail) else outcome

    async def _endorse_at(self, peers: Sequence[Endorser]) -> ProposalResponse | Detail:
        answer = await self._answer(peers)
        return answer.response if isinstance(answer, _Answer) else answer

    async def _answer(self, peers: Sequence[Endorser]) -> _Answer | Detail:
        """One organisation's endorsement: its peers are tried in turn while unreachable."""
        detail = Detail("", "", f"{UNREACHABLE}: no peer")
        for peer in peers:
            try:
                response = await peer.process_proposal(self._signed, self._proposal)
            except EndorserRefused as exc:
                return Detail(peer.address, peer.msp_id, str(exc))
            except ConnectionError as exc:
                detail = Detail(peer.address, peer.msp_id, f"{UNREACHABLE}: {exc}")
                continue
            if response.response.status >= 400 or not response.payload:
                result = response.response
                return Detail(
                    peer.address,
                    peer.msp_id,
                    f"{CHAINCODE_RESPONSE} {result.status}, {result.message}",
                )
            return _Answer(peer.address, peer.msp_id, response)
        return detail


@dataclass(frozen=True, slots=True)
class _Answer:
    """A peer's successful response, with where it came from (for a mismatch's detail)."""

    address: str
    msp_id: str
    response: ProposalResponse


def _needs(
    plan: Plan, interest: proposal_response_pb2.ChaincodeInterest, *, protect: bool
) -> list[Requirement]:
    """Every requirement an endorsement with this interest must meet (raises
    `PreconditionFailed` for a collection the contract does not define)."""
    return [
        plan.contract,
        *interest_requirements(interest, plan.namespace),
        *collection_requirements(interest, plan.collections, plan.members, protect=protect),
    ]


def _plannable(
    plan: Plan,
    interest: proposal_response_pb2.ChaincodeInterest,
    candidates: Sequence[str],
    first_org: str,
) -> bool:
    """Whether endorsers could be found were transient data not protected."""
    try:
        extend_plan(_needs(plan, interest, protect=False), candidates, [first_org])
    except MedallianceError:
        return False
    return True


def _initial_plan(
    plan: Plan, candidates: Sequence[str], failed: list[Detail], failure: str
) -> tuple[str, ...]:
    try:
        if plan.policy is None:
            return majority(candidates, plan.members)
        return plan_endorsers(plan.policy, candidates, plan.members)
    except MedallianceError as exc:
        if failed:  # the policy needs an organisation whose peers are down
            raise RpcFailure.of(Conflict, failure, failed) from None
        raise RpcFailure.of(PreconditionFailed, str(exc)) from None


class _Unreachable(Exception):
    """No peer of `orgs` answered: a plan without them may still succeed."""

    def __init__(self, orgs: tuple[str, ...], details: list[Detail]) -> None:
        super().__init__(", ".join(orgs))
        self.orgs = orgs
        self.details = details
