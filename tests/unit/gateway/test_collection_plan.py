"""Endorsement plans for private data: collection policies and member-only endorsers."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import policy_pb2, proposal_response_pb2

from medalliance.contracts.collection_interest import add_collection_calls
from medalliance.contracts.collections import Collection
from medalliance.errors import PreconditionFailed
from medalliance.gateway.plan import (
    collection_requirements,
    extend_plan,
    protected_collections,
    signature_requirement,
)
from medalliance.identity.policy import parse_policy

MEMBERS = ("A", "B", "C")
ANY_PEER = signature_requirement(parse_policy("OR('A.peer', 'B.peer', 'C.peer')"))


def collection(name: str, members: set[str], endorsement: str | None = None) -> Collection:
    policy = None
    if endorsement is not None:
        policy = bytes(
            policy_pb2.ApplicationPolicy(
                signature_policy=parse_policy(endorsement)
            ).SerializeToString()
        )
    return Collection(
        name=name,
        members=frozenset(members),
        member_policy="",
        required_peer_count=0,
        max_peer_count=1,
        block_to_live=0,
        member_only_read=True,
        member_only_write=False,
        endorsement_policy=policy,
    )


COLLECTIONS: Mapping[str, Collection] = {
    "shared": collection("shared", {"A", "B"}),
    "aOnly": collection("aOnly", {"A"}, "OR('A.peer')"),
}


def interest(*calls: tuple[str, bool]) -> proposal_response_pb2.ChaincodeInterest:
    """(collection, only written) per call of contract `private`."""
    found = proposal_response_pb2.ChaincodeInterest()
    found.chaincodes.add(name="private")
    for name, written_only in calls:
        found.chaincodes.add(name="private", collection_names=[name], no_private_reads=written_only)
    return found


def plan(
    calls: proposal_response_pb2.ChaincodeInterest,
    candidates: list[str],
    first: str,
    *,
    protect: bool = False,
) -> tuple[str, ...]:
    needs = [
        ANY_PEER,
        *collection_requirements(calls, lambda ns: COLLECTIONS, MEMBERS, protect=protect),
    ]
    return extend_plan(needs, candidates, [first])


@pytest.mark.parametrize(
    ("calls", "first", "protect", "expected"),
    [
        pytest.param((), "C", False, ("C",), id="no collection: the contract policy alone"),
        pytest.param(
            (("shared", True),), "C", False, ("C",), id="a blind write lets a non-member endorse"
        ),
        pytest.param(
            (("aOnly", True),), "B", False, ("B", "A"), id="a collection's own policy is added"
        ),
    ],
)
def test_collection_plans(
    calls: tuple[tuple[str, bool], ...], first: str, protect: bool, expected: tuple[str, ...]
) -> None:
    assert plan(interest(*calls), ["A", "B", "C"], first, protect=protect) == expected


@pytest.mark.parametrize(
    ("calls", "protect"),
    [
        pytest.param((("shared", False),), False, id="a private read needs member endorsers"),
        pytest.param((("shared", True),), True, id="transient data stays with members"),
    ],
)
def test_a_non_member_first_endorser_cannot_be_completed(
    calls: tuple[tuple[str, bool], ...], protect: bool
) -> None:
    """Hostile or careless gateway: a non-member (C) endorsed first; no plan includes it."""
    with pytest.raises(PreconditionFailed):
        plan(interest(*calls), ["A", "B", "C"], "C", protect=protect)
    assert plan(interest(*calls), ["A", "B", "C"], "A", protect=protect) == ("A",)


def test_an_undefined_collection_is_fabrics_error() -> None:
    with pytest.raises(PreconditionFailed, match="collection nope doesn't exist in collection"):
        plan(interest(("nope", False)), ["A"], "A")


def test_protected_collections_are_those_only_written() -> None:
    assert protected_collections(interest(("shared", False), ("aOnly", True))) == ["aOnly"]


def test_the_endorser_names_each_collection_read_or_written() -> None:
    hashed_read = kv_rwset_pb2.HashedRWSet()
    hashed_read.hashed_reads.add(key_hash=b"k")
    hashed_write = kv_rwset_pb2.HashedRWSet()
    hashed_write.hashed_writes.add(key_hash=b"k", value_hash=b"v")
    ns = rwset_pb2.NsReadWriteSet(namespace="private")
    for name, hashed in (("shared", hashed_read), ("aOnly", hashed_write)):
        ns.collection_hashed_rwset.add(
            collection_name=name, hashed_rwset=hashed.SerializeToString()
        )
    ns.collection_hashed_rwset.add(collection_name="untouched")
    found = proposal_response_pb2.ChaincodeInterest()
    add_collection_calls(found, rwset_pb2.TxReadWriteSet(ns_rwset=[ns]).SerializeToString())
    assert [(c.name, list(c.collection_names), c.no_private_reads) for c in found.chaincodes] == [
        ("private", ["shared"], False),
        ("private", ["aOnly"], True),
    ]
