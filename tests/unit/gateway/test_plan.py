"""Endorsement plans: the fewest organisations whose peers satisfy a contract's policy."""

from __future__ import annotations

import pytest
from fabric_protos.peer import policy_pb2

from medalliance.errors import PreconditionFailed
from medalliance.gateway.plan import plan_endorsers
from medalliance.identity.policy import parse_policy


def policy(text: str) -> bytes:
    return bytes(
        policy_pb2.ApplicationPolicy(signature_policy=parse_policy(text)).SerializeToString()
    )


def reference(path: str = "/Channel/Application/Endorsement") -> bytes:
    return bytes(
        policy_pb2.ApplicationPolicy(channel_config_policy_reference=path).SerializeToString()
    )


@pytest.mark.parametrize(
    ("text", "candidates", "expected"),
    [
        ("OR('A.peer', 'B.peer')", ["B", "A"], ("B",)),  # the preferred (own) org first
        ("AND('A.peer', 'B.peer')", ["B", "A"], ("B", "A")),
        ("OutOf(2, 'A.peer', 'B.peer', 'C.peer')", ["C", "A", "B"], ("C", "A")),
        ("OR('A.member', 'B.peer')", ["A"], ("A",)),
        ("AND('A.peer', OR('B.peer', 'C.peer'))", ["C", "A"], ("C", "A")),
    ],
)
def test_the_smallest_satisfying_set_in_preference_order(
    text: str, candidates: list[str], expected: tuple[str, ...]
) -> None:
    assert plan_endorsers(policy(text), candidates, ["A", "B", "C"]) == expected


@pytest.mark.parametrize(
    ("text", "candidates"),
    [
        ("AND('A.peer', 'B.peer')", ["A"]),  # B cannot be reached
        ("AND('A.peer', 'A.member')", ["A", "B"]),  # one peer of A satisfies one principal only
        ("OR('A.admin', 'B.client')", ["A", "B"]),  # peers are neither admins nor clients
        ("OR('A.peer')", []),
    ],
)
def test_an_unsatisfiable_policy_names_who_could_endorse(text: str, candidates: list[str]) -> None:
    with pytest.raises(PreconditionFailed, match="no combination of peers"):
        plan_endorsers(policy(text), candidates, ["A", "B"])


def test_a_channel_policy_reference_needs_a_majority_of_members() -> None:
    assert plan_endorsers(reference(), ["B", "A", "C"], ["A", "B", "C"]) == ("B", "A")
    with pytest.raises(PreconditionFailed, match="needs 2 of 3"):
        plan_endorsers(reference(), ["A"], ["A", "B", "C"])
