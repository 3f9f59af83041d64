"""Fabric's signature-policy language: parsing, formatting and greedy evaluation."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.conftest import NOW, Org

from medalliance.errors import PolicySyntaxError
from medalliance.identity.msp import MspManager
from medalliance.identity.policy import (
    SignedData,
    evaluate_implicit_meta,
    evaluate_signature_policy,
    format_policy,
    parse_policy,
)
from medalliance.identity.signing import Signer


def test_fabric_example_compiles_to_fabrics_structure() -> None:
    env = parse_policy("OutOf(2,'Org1.peer','Org2.peer')")
    assert len(env.identities) == 2
    assert env.rule.n_out_of.n == 2
    assert [r.signed_by for r in env.rule.n_out_of.rules] == [0, 1]


@pytest.mark.parametrize(
    ("text", "n", "count"),
    [
        pytest.param("AND('A.member', 'B.member')", 2, 2, id="AND needs all"),
        pytest.param("or('A.member', 'B.member', 'C.member')", 1, 3, id="OR needs one, any case"),
        pytest.param(
            "OUTOF(3, 'A.member', 'B.member')", 3, 2, id="OutOf n+1 parses but cannot pass"
        ),
        pytest.param("And('Org1.example.peer')", 1, 1, id="the last dot separates the role"),
    ],
)
def test_gates(text: str, n: int, count: int) -> None:
    env = parse_policy(text)
    assert (env.rule.n_out_of.n, len(env.rule.n_out_of.rules)) == (n, count)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("OutOf(4, 'A.member', 'B.member')", id="OutOf above n+1"),
        pytest.param("OutOf(-1, 'A.member')", id="negative OutOf"),
        pytest.param("AND('A.boss')", id="unknown role"),
        pytest.param("XOR('A.member')", id="unknown gate"),
        pytest.param("AND('A.member'", id="unclosed"),
        pytest.param("AND('A.member') trailing", id="trailing text"),
        pytest.param("", id="empty"),
    ],
)
def test_bad_policies_say_what_is_wrong(text: str) -> None:
    with pytest.raises(PolicySyntaxError, match="policy"):
        parse_policy(text)


principals = st.sampled_from(["'Org1MSP.peer'", "'Org2MSP.admin'", "'A.b.member'", "'X.client'"])
policies = st.recursive(
    principals,
    lambda inner: st.lists(inner, min_size=1, max_size=3).flatmap(
        lambda args: st.integers(0, len(args)).map(lambda n: f"OutOf({n}, {', '.join(args)})")
    ),
    max_leaves=8,
).filter(lambda t: t.startswith("OutOf"))


@given(policies)
def test_format_and_parse_round_trip(text: str) -> None:
    env = parse_policy(text)
    assert parse_policy(format_policy(env)) == env


@given(st.text(max_size=40))
def test_random_text_raises_only_policy_syntax_errors(text: str) -> None:
    with contextlib.suppress(PolicySyntaxError):
        parse_policy(text)


def signed(signer: Signer, data: bytes = b"payload", signature: bytes | None = None) -> SignedData:
    return SignedData(data, signer.serialized_identity, signature or signer.sign(data))


@pytest.fixture(scope="module")
def people(org1: Org, org2: Org) -> dict[str, Signer]:
    return {
        "p1": org1.signer("p1", ou="peer"),
        "p1b": org1.signer("p1b", ou="peer"),
        "p2": org2.signer("p2", ou="peer"),
        "a1": org1.signer("a1", ou="admin"),
        "c1": org1.signer("c1"),
    }


@pytest.mark.parametrize(
    ("policy", "who", "ok"),
    [
        pytest.param(
            "AND('Org1MSP.peer', 'Org2MSP.peer')", ["p1", "p2"], True, id="two orgs endorse"
        ),
        pytest.param(
            "AND('Org1MSP.peer', 'Org2MSP.peer')",
            ["p1", "p1b"],
            False,
            id="one org twice is not two orgs",
        ),
        pytest.param(
            "AND('Org1MSP.member', 'Org1MSP.member')",
            ["p1", "p1"],
            False,
            id="a duplicate signature counts once",
        ),
        pytest.param(
            "AND('Org1MSP.member', 'Org1MSP.peer')",
            ["p1"],
            False,
            id="one signature cannot satisfy two principals",
        ),
        pytest.param(
            "AND('Org1MSP.peer', 'Org1MSP.member')",
            ["p1", "c1"],
            True,
            id="greedy in rule order finds both",
        ),
        pytest.param("OR('Org1MSP.admin')", ["a1"], True, id="admin OU is admin"),
        pytest.param("OR('Org1MSP.admin')", ["c1"], False, id="a client is not an admin"),
        pytest.param("OR('Org2MSP.member')", ["p1"], False, id="another MSP never satisfies"),
    ],
)
def test_evaluation(
    policy: str, who: list[str], ok: bool, people: dict[str, Signer], msps: MspManager
) -> None:
    env = parse_policy(policy)
    assert evaluate_signature_policy(env, [signed(people[w]) for w in who], msps, at=NOW) is ok


def test_a_bad_signature_is_dropped(people: dict[str, Signer], msps: MspManager) -> None:
    env = parse_policy("OR('Org1MSP.peer')")
    forged = signed(people["p1"], signature=people["p2"].sign(b"payload"))
    assert not evaluate_signature_policy(env, [forged], msps, at=NOW)


@pytest.mark.parametrize(
    ("rule", "results", "ok"),
    [
        pytest.param("ANY", [False, True], True, id="ANY needs one"),
        pytest.param("ALL", [True, False], False, id="ALL needs all"),
        pytest.param("MAJORITY", [True, True, False], True, id="MAJORITY of three is two"),
        pytest.param("MAJORITY", [True, False], False, id="MAJORITY of two is two"),
        pytest.param("MAJORITY", [], True, id="no sub-policies means threshold zero"),
    ],
)
def test_implicit_meta(rule: str, results: list[bool], ok: bool) -> None:
    assert evaluate_implicit_meta(rule, results) is ok  # type: ignore[arg-type]
