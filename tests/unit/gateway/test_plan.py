"""Endorsement plans: the fewest organisations whose peers satisfy a contract's policy."""

from __future__ import annotations

import pytest
from fabric_protos.peer import policy_pb2, proposal_response_pb2

from medalliance.errors import PreconditionFailed
from medalliance.gateway.plan import (
    application_requirement,
    extend_plan,
    interest_requirements,
    majority_requirement,
    named_orgs,
    plan_endorsers,
)
from medalliance.identity.policy import parse_policy


def policy(text: str) -> bytes:
    return bytes(
        policy_pb2.ApplicationPolicy(signature_policy=parse_policy(text)).SerializeToString()
    )


def reference(path: str = "/Channel/Application/Endorsement") -> bytes:
    return bytes(
        policy_pb2.ApplicationPolicy(channel_config_policy_reference=path).SerializeToString()
    )


NOTARISED = "AND(OutOf(1, 'R.peer', 'S.peer'), OutOf(1, 'A.peer', 'B.peer'))"


@pytest.mark.parametrize(
    ("text", "candidates", "expected"),
    [
        ("OR('A.peer', 'B.peer')", ["B", "A"], ("B",)),  # the preferred (own) org first
        ("AND('A.peer', 'B.peer')", ["B", "A"], ("B", "A")),
        ("OutOf(2, 'A.peer', 'B.peer', 'C.peer')", ["C", "A", "B"], ("C", "A")),
        ("OR('A.member', 'B.peer')", ["A"], ("A",)),
        ("AND('A.peer', OR('B.peer', 'C.peer'))", ["C", "A"], ("C", "A")),
        # the alliance's default, commissions R and S, hospitals A and B: one of each
        (NOTARISED, ["A", "B", "R", "S"], ("A", "R")),
        (NOTARISED, ["S", "A", "B", "R"], ("S", "A")),
        (NOTARISED, ["R", "S", "B"], ("R", "B")),
    ],
)
def test_the_smallest_satisfying_set_in_preference_order(
    text: str, candidates: list[str], expected: tuple[str, ...]
) -> None:
    assert plan_endorsers(policy(text), candidates, ["A", "B", "C", "R", "S"]) == expected


@pytest.mark.parametrize("candidates", [["A", "B"], ["R", "S"]], ids=["hospitals", "commissions"])
def test_neither_two_hospitals_nor_two_commissions_satisfy_the_alliance_default(
    candidates: list[str],
) -> None:
    with pytest.raises(PreconditionFailed):
        plan_endorsers(policy(NOTARISED), candidates, ["A", "B", "R", "S"])


def test_plans_follow_the_policy_the_candidates_and_the_members() -> None:
    """Plans are kept per (policy bytes, candidates, members): a new definition, an unreachable
    organisation or a new member is planned afresh, and a failure is never kept."""
    members = ["A", "B", "C"]
    assert plan_endorsers(policy("OR('A.peer', 'B.peer')"), ["A", "B"], members) == ("A",)
    assert plan_endorsers(policy("AND('A.peer', 'B.peer')"), ["A", "B"], members) == ("A", "B")
    assert plan_endorsers(policy("OR('A.peer', 'B.peer')"), ["B", "A"], members) == ("B",)
    for _ in range(2):
        with pytest.raises(PreconditionFailed):
            plan_endorsers(policy("AND('A.peer', 'B.peer')"), ["A"], members)
    assert plan_endorsers(reference(), ["A", "B", "C"], members) == ("A", "B")
    assert plan_endorsers(reference(), ["A", "B", "C", "D", "E"], [*members, "D", "E"]) == (
        "A",
        "B",
        "C",
    )
    three = application_requirement(reference(), members)
    five = application_requirement(reference(), [*members, "D", "E"])
    assert three(["A", "B"])
    assert not five(["A", "B"])


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


# --- key-level policies: extending a plan with what the first endorsements' interest names ---


def interest(*calls: tuple[str, list[str], bool]) -> proposal_response_pb2.ChaincodeInterest:
    found = proposal_response_pb2.ChaincodeInterest()
    for name, key_policies, disregard in calls:
        call = found.chaincodes.add(name=name, disregard_namespace_policy=disregard)
        call.key_policies.extend(parse_policy(text) for text in key_policies)
    return found


CC = "OutOf(2, 'TA.peer', 'TB.peer')"
DECISION = "AND('DHC.peer', OutOf(1, 'TA.peer', 'TB.peer'))"


@pytest.mark.parametrize(
    ("calls", "chosen", "expected"),
    [
        pytest.param([("cc", [], False)], ("TA", "TB"), ("TA", "TB"), id="no key policy: the plan stands"),
        pytest.param([("cc", [DECISION], False)], ("TA", "TB"), ("TA", "TB", "DHC"), id="a key policy adds the regulator"),
        pytest.param([("cc", [DECISION], True)], ("TA",), ("TA", "DHC"), id="only key policies: the contract's is disregarded"),
        pytest.param([("cc", [DECISION], False), ("other", ["AND('SHA.peer', 'TB.peer')"], False)], ("TA", "TB"), ("TA", "TB", "DHC", "SHA"), id="every namespace's key policies at once"),
    ],
)  # fmt: skip
def test_a_plan_grows_to_satisfy_the_contract_and_every_key_policy(
    calls: list[tuple[str, list[str], bool]], chosen: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    found = interest(*calls)
    needs = interest_requirements(
        found, lambda name: application_requirement(policy(CC), ["TA", "TB", "DHC", "SHA"])
    )
    candidates = [*named_orgs(found), "TA", "TB", "SHB"]
    assert extend_plan(needs, candidates, chosen) == expected


def test_a_key_policy_no_reachable_organisation_satisfies_fails_the_plan() -> None:
    found = interest(("cc", [DECISION], True))
    needs = interest_requirements(found, lambda name: majority_requirement(["TA"]))
    with pytest.raises(PreconditionFailed, match="policies of the contract and of the keys"):
        extend_plan(needs, ["TA", "TB"], ("TA",))  # the regulator's peer is not reachable
