"""Fabric's signature-policy language: parsing, formatting and greedy evaluation."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from fabric_protos.common import policies_pb2
from fabric_protos.msp import msp_principal_pb2
from hypothesis import given
from hypothesis import strategies as st
from tests.conftest import NOW, Org

from medalliance.errors import PolicySyntaxError
from medalliance.identity.msp import MspManager
from medalliance.identity.policy import (
    SignedData,
    compile_policy,
    compiled_policy_satisfied,
    evaluate_implicit_meta,
    evaluate_signature_policy,
    format_policy,
    implicit_meta_threshold,
    parse_policy,
)
from medalliance.identity.signing import P256_ORDER, Signer


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


def evaluate(
    envelope: policies_pb2.SignaturePolicyEnvelope,
    items: list[SignedData],
    msps: MspManager,
    *,
    at: dt.datetime,
) -> bool:
    """The verdict of `evaluate_signature_policy`, checked to be the compiled policy's too."""
    verdict = evaluate_signature_policy(envelope, items, msps, at=at)
    compiled = compile_policy(envelope)
    assert verdict is (
        compiled is not None and compiled_policy_satisfied(compiled, items, msps, at=at)
    )
    return verdict


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
    assert evaluate(env, [signed(people[w]) for w in who], msps, at=NOW) is ok


def test_a_bad_signature_is_dropped(people: dict[str, Signer], msps: MspManager) -> None:
    env = parse_policy("OR('Org1MSP.peer')")
    forged = signed(people["p1"], signature=people["p2"].sign(b"payload"))
    assert not evaluate(env, [forged], msps, at=NOW)


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


def _compiled(text: str) -> tuple[list[str], str]:
    """(identities as 'MSP.ROLE', rule as nested tuples) of a parsed policy, for comparison."""
    env = parse_policy(text)
    names = []
    for item in env.identities:
        role = msp_principal_pb2.MSPRole()
        role.ParseFromString(item.principal)
        names.append(
            f"{role.msp_identifier}.{msp_principal_pb2.MSPRole.MSPRoleType.Name(role.role)}"
        )

    def rule(r: policies_pb2.SignaturePolicy) -> str:
        if r.WhichOneof("Type") == "signed_by":
            return str(r.signed_by)
        return f"{r.n_out_of.n}[{','.join(rule(x) for x in r.n_out_of.rules)}]"

    return names, rule(env.rule)


@pytest.mark.parametrize(
    ("text", "identities", "rule"),
    [
        pytest.param(
            "OR('A.member', AND('B.member', 'C.member'))",
            ["B.MEMBER", "C.MEMBER", "A.MEMBER"],
            "1[2,2[0,1]]",
            id="a gate's own principals come after those of its nested gates (TestComplex1)",
        ),
        pytest.param(
            "OR(AND('A.member', 'B.member'), OR('C.admin', 'D.member'))",
            ["A.MEMBER", "B.MEMBER", "C.ADMIN", "D.MEMBER"],
            "1[2[0,1],1[2,3]]",
            id="sibling gates append left to right (TestComplex2)",
        ),
        pytest.param(
            "AND('A.peer', OR('B.member'), 'A.peer')",
            ["B.MEMBER", "A.PEER", "A.PEER"],
            "3[1,1[0],2]",
            id="repeated principals are not de-duplicated",
        ),
        pytest.param(
            "OutOf('1', 'A.member', 'B.member')",
            ["A.MEMBER", "B.MEMBER"],
            "1[0,1]",
            id="a quoted count is a count (TestOutOfNumIsString)",
        ),
        pytest.param(
            "OR('MSP.WITH.DOTS.member', 'MSP-WITH-DASHES.client')",
            ["MSP.WITH.DOTS.MEMBER", "MSP-WITH-DASHES.CLIENT"],
            "1[0,1]",
            id="MSP ids may hold dots and dashes",
        ),
    ],
)
def test_compiles_exactly_as_fabric(text: str, identities: list[str], rule: str) -> None:
    assert _compiled(text) == (identities, rule)


def test_nested_policies_round_trip_through_format() -> None:
    env = parse_policy("OR('A.member', AND('B.member', OutOf(1, 'C.peer', 'D.client')))")
    assert parse_policy(format_policy(env)) == env


# --- more of Fabric's parsing rules ---------------------------------------------------------------


def principal_of(env: policies_pb2.SignaturePolicyEnvelope, i: int) -> tuple[str, str]:
    role = msp_principal_pb2.MSPRole()
    role.ParseFromString(env.identities[i].principal)
    return role.msp_identifier, msp_principal_pb2.MSPRole.MSPRoleType.Name(role.role)


@pytest.mark.parametrize(
    "gate",
    ["AND", "And", "and", "OR", "Or", "or"],
)
def test_every_fabric_spelling_of_and_or_parses(gate: str) -> None:
    assert len(parse_policy(f"{gate}('A.member', \"B.peer\")").identities) == 2


@pytest.mark.parametrize("gate", ["OutOf", "outof", "OUTOF"])
def test_every_fabric_spelling_of_outof_parses(gate: str) -> None:
    assert parse_policy(f"{gate}(1, 'A.member')").rule.n_out_of.n == 1


def test_identities_are_appended_in_fabrics_order_without_deduplication() -> None:
    # Fabric appends a gate's own principals after those of its nested gates (govaluate
    # evaluates arguments first; policyparser_test.go TestComplex1).
    env = parse_policy("OR('A.member', AND('B.admin', 'A.member'), 'Org.x.client')")
    assert [principal_of(env, i) for i in range(len(env.identities))] == [
        ("B", "ADMIN"),
        ("A", "MEMBER"),
        ("A", "MEMBER"),
        ("Org.x", "CLIENT"),
    ]
    outer, nested = env.rule.n_out_of, env.rule.n_out_of.rules[1].n_out_of
    assert (nested.n, [r.signed_by for r in nested.rules]) == (2, [0, 1])
    assert (outer.n, outer.rules[0].signed_by, outer.rules[2].signed_by) == (1, 2, 3)
    assert env.version == 0


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param("AND('A.member',)", "position 15", id="a trailing comma says where"),
        pytest.param("AND(A.member)", "position 5", id="an unquoted principal says where"),
        pytest.param("AND('Amember')", "'Amember'", id="a principal without a role is named"),
        pytest.param("OutOf(x, 'A.member')", "expected num", id="OutOf needs a number"),
        pytest.param("AND()", "position 4", id="a gate needs an argument"),
        pytest.param("Outof(1, 'A.member')", "unknown gate 'Outof'", id="Outof is not Fabric's"),
    ],
)
def test_syntax_errors_say_what_and_where(text: str, where: str) -> None:
    with pytest.raises(PolicySyntaxError) as caught:
        parse_policy(text)
    assert where in str(caught.value)


def test_format_writes_readable_gates() -> None:
    text = "OutOf(2, 'A.peer', OR('B.member', 'C.admin'), AND('D.client', 'E.orderer'))"
    assert format_policy(parse_policy(text)) == text
    assert format_policy(parse_policy("OutOf(0, 'A.member')")) == "OutOf(0, 'A.member')"


def test_deep_nesting_is_a_syntax_error_not_a_crash() -> None:
    with pytest.raises(PolicySyntaxError, match="nested deeper"):
        parse_policy("AND(" * 200 + "'A.member'" + ")" * 200)


# --- more of Fabric's evaluation rules ------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "who", "ok"),
    [
        pytest.param(
            "AND('Org1MSP.member', 'Org1MSP.peer')",
            ["p1", "c1"],
            False,
            id="greedy order: member takes the peer first and nothing is left for peer",
        ),
        pytest.param(
            "AND('Org1MSP.member', 'Org1MSP.peer')",
            ["c1", "p1"],
            True,
            id="greedy order: the same signers in the other order pass",
        ),
        pytest.param(
            "OutOf(2, 'Org1MSP.peer', 'Org1MSP.peer', 'Org2MSP.peer')",
            ["p1", "p2"],
            True,
            id="OutOf counts satisfied sub-rules",
        ),
        pytest.param(
            "OutOf(3, 'Org1MSP.member', 'Org2MSP.member')",
            ["p1", "p2"],
            False,
            id="OutOf n+1 is never satisfied",
        ),
        pytest.param(
            "OR(AND('Org1MSP.peer', 'Org2MSP.peer'), 'Org1MSP.admin')",
            ["p1", "a1"],
            True,
            id="a failed sub-rule does not consume its signatures",
        ),
        pytest.param("OutOf(0, 'Org1MSP.admin')", [], True, id="OutOf zero needs nobody"),
        pytest.param("OR('Org1MSP.member')", [], False, id="no signatures satisfy nothing"),
    ],
)
def test_evaluation_follows_fabrics_greedy_algorithm(
    policy: str, who: list[str], ok: bool, people: dict[str, Signer], msps: MspManager
) -> None:
    env = parse_policy(policy)
    assert evaluate(env, [signed(people[w]) for w in who], msps, at=NOW) is ok


def test_a_high_s_signature_is_ignored(people: dict[str, Signer], msps: MspManager) -> None:
    good = signed(people["p1"])
    r, s = decode_dss_signature(good.signature)
    high = SignedData(good.data, good.identity, encode_dss_signature(r, P256_ORDER - s))
    env = parse_policy("OR('Org1MSP.peer')")
    assert not evaluate(env, [high], msps, at=NOW)
    assert evaluate(env, [high, good], msps, at=NOW)


def test_identities_that_do_not_deserialize_are_dropped(
    people: dict[str, Signer], msps: MspManager
) -> None:
    env = parse_policy("OR('Org1MSP.peer')")
    garbage = SignedData(b"payload", b"\xff\xff", b"sig")
    expired_at = NOW + dt.timedelta(days=400)
    assert evaluate(env, [garbage, signed(people["p1"])], msps, at=NOW)
    assert not evaluate(env, [signed(people["p1"])], msps, at=expired_at)


def test_envelopes_fabric_would_not_compile_are_never_satisfied(
    people: dict[str, Signer], msps: MspManager
) -> None:
    env = parse_policy("OutOf(0, 'Org1MSP.peer')")
    bad_version = policies_pb2.SignaturePolicyEnvelope()
    bad_version.CopyFrom(env)
    bad_version.version = 1
    bad_index = policies_pb2.SignaturePolicyEnvelope()
    bad_index.CopyFrom(env)
    bad_index.rule.n_out_of.rules[0].signed_by = 5
    for envelope in (bad_version, bad_index):
        assert not evaluate(envelope, [signed(people["p1"])], msps, at=NOW)
        assert compile_policy(envelope) is None


@pytest.mark.parametrize(
    ("rule", "n", "threshold"),
    [
        pytest.param("ANY", 3, 1, id="ANY is one"),
        pytest.param("ALL", 3, 3, id="ALL is all"),
        pytest.param("MAJORITY", 4, 3, id="MAJORITY of four is three"),
        pytest.param("ALL", 0, 0, id="no sub-policies is zero"),
    ],
)
def test_implicit_meta_threshold(rule: str, n: int, threshold: int) -> None:
    assert implicit_meta_threshold(rule, n) == threshold  # type: ignore[arg-type]
