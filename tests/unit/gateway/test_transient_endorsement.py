"""How the gateway collects endorsements of a proposal carrying transient data (Fabric's rules):
its own organisation first, then members of the collections written only; Fabric's wordings."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import grpc
import pytest
from fabric_protos.peer import proposal_pb2, proposal_response_pb2

from medalliance.contracts.collections import Collection
from medalliance.gateway.endorse import NO_LOCAL_ENDORSER, Plan
from medalliance.gateway.endorse import Collection as Endorsements
from medalliance.gateway.errors import RpcFailure
from medalliance.gateway.plan import signature_requirement
from medalliance.identity.policy import parse_policy
from medalliance.ledger.tx import ProposalView

ANY = signature_requirement(parse_policy("OR('A.peer', 'B.peer', 'C.peer')"))
SHARED = Collection("shared", frozenset({"A", "B"}), "", 0, 1, 0, True, False, None)


class Peer:
    """An organisation's peer answering every proposal alike, with an interest that names
    `shared` as written only (what the endorser reports for a blind private write)."""

    def __init__(self, msp_id: str) -> None:
        self.msp_id = msp_id
        self.address = f"peer0.{msp_id}:7051"
        self.asked = 0

    async def process_proposal(
        self, signed: proposal_pb2.SignedProposal, proposal: ProposalView
    ) -> proposal_response_pb2.ProposalResponse:
        self.asked += 1
        response = proposal_response_pb2.ProposalResponse(payload=b"same")
        response.response.status = 200
        response.interest.chaincodes.add(name="private")
        response.interest.chaincodes.add(
            name="private", collection_names=["shared"], no_private_reads=True
        )
        return response


def plan(candidates: tuple[str, ...], *, transient: bool) -> Plan:
    collections: Mapping[str, Collection] = {"shared": SHARED}
    return Plan(
        policy=None,
        candidates=candidates,
        members=("A", "B", "C"),
        contract=ANY,
        namespace=lambda name: ANY,
        collections=lambda name: collections,
        transient=transient,
    )


def collect(local: str, candidates: tuple[str, ...], *, transient: bool) -> dict[str, int]:
    peers = {org: Peer(org) for org in ("A", "B", "C")}
    endorsements = Endorsements(
        local=peers[local],
        peers={org: [peer] for org, peer in peers.items()},
        signed=proposal_pb2.SignedProposal(),
        proposal=None,  # type: ignore[arg-type]  # the peers here do not read it
    )
    asyncio.run(endorsements.planned(plan(candidates, transient=transient)))
    return {org: peer.asked for org, peer in peers.items() if peer.asked}


def test_transient_data_is_endorsed_by_the_gateways_member_organisation_only() -> None:
    assert collect("A", ("B", "A", "C"), transient=True) == {"A": 1}


def test_a_non_members_gateway_cannot_send_transient_data_to_its_own_peer_alone() -> None:
    """Hostile or mistaken: C's gateway endorses first itself (transient data must not leave
    its organisation before the contract says where it goes), and no plan with C completes."""
    with pytest.raises(RpcFailure) as refused:
        collect("C", ("C", "A", "B"), transient=True)
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.value.message == (
        "requires endorsement from organisation(s) that are not in the distribution policy of "
        "the private data collection(s): [shared]; retry specifying trusted endorsing "
        "organizations to protect transient data"
    )


def test_without_transient_data_a_blind_write_may_be_endorsed_by_a_non_member() -> None:
    assert collect("C", ("C", "A", "B"), transient=False) == {"C": 1}


def test_a_gateway_whose_organisation_cannot_endorse_refuses_transient_data() -> None:
    with pytest.raises(RpcFailure) as refused:
        collect("C", ("A", "B"), transient=True)
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.value.message == NO_LOCAL_ENDORSER
