"""The integrity monitor's judgement (audit.integrity): who is named, and who never is."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medalliance.audit.integrity import LedgerDigest, compare_ledgers, new_findings

AT = "2026-12-03T12:00:00+00:00"


def digest(peer: str, height: int = 5, block: str = "b", state: str = "s") -> LedgerDigest:
    return LedgerDigest(peer, f"{peer}MSP", "ch", height, block * 64, state * 64)


@pytest.mark.parametrize(
    ("digests", "named", "undecided"),
    [
        pytest.param(
            [digest("a"), digest("b"), digest("c")], [], False, id="agreeing peers are never named"
        ),
        pytest.param(
            [digest("a"), digest("b"), digest("c", state="x")],
            [("c", "state-hash")],
            False,
            id="a peer whose state differs from the majority is named",
        ),
        pytest.param(
            [digest("a"), digest("b"), digest("c", block="x", state="x")],
            [("c", "block-hash")],
            False,
            id="a peer with another block is named for its block, not its state too",
        ),
        pytest.param(
            [digest("a"), digest("b", state="x")],
            [],
            True,
            id="two peers that differ leave the channel undecided and nobody named",
        ),
        pytest.param(
            [digest("a"), digest("b", state="x"), digest("c", state="y")],
            [],
            True,
            id="three different states have no majority",
        ),
        pytest.param(
            [digest("a"), digest("b"), digest("c", height=4, state="x")],
            [],
            False,
            id="a peer at another height is not compared",
        ),
        pytest.param(
            [digest("a", height=6), digest("b", height=6), digest("c", height=5, state="x")],
            [],
            False,
            id="the height most peers are at is compared",
        ),
    ],
)
def test_who_is_named(
    digests: list[LedgerDigest], named: list[tuple[str, str]], undecided: bool
) -> None:
    check = compare_ledgers(digests, at=AT)
    assert [(f.peer, f.kind) for f in check.findings] == named
    assert [c.undecided for c in check.channels] == [undecided]


def test_a_finding_says_who_agrees_and_what_differs() -> None:
    check = compare_ledgers([digest("a"), digest("b"), digest("c", state="x")], at=AT)
    (finding,) = check.findings
    assert finding.agreeing == ("a", "b")
    assert (finding.expected, finding.found) == ("s" * 64, "x" * 64)
    assert "c (cMSP) diverges on channel ch at height 5" in finding.describe()
    assert check.divergent_peers == ("c",)


def test_unreachable_peers_are_listed_not_named() -> None:
    check = compare_ledgers([digest("a"), digest("b")], at=AT, unreachable=["c", "c"])
    assert check.unreachable == ("c",)
    assert check.findings == ()


def test_a_finding_is_new_once() -> None:
    first = compare_ledgers([digest("a"), digest("b"), digest("c", state="x")], at=AT)
    second = compare_ledgers([digest("a"), digest("b"), digest("c", state="x")], at=AT)
    assert new_findings(None, first) == list(first.findings)
    assert new_findings(first, second) == []


@given(
    st.lists(st.sampled_from(["s", "x", "y"]), min_size=1, max_size=9),
)
def test_a_peer_holding_the_majority_state_is_never_named(states: list[str]) -> None:
    digests = [digest(f"p{i}", state=s) for i, s in enumerate(states)]
    check = compare_ledgers(digests, at=AT)
    majority = max(set(states), key=states.count)
    named = set(check.divergent_peers)
    if 2 * states.count(majority) > len(states):
        assert named == {d.peer for d in digests if d.state_hash != majority * 64}
    else:
        assert named == set()
