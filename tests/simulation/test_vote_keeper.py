"""The vote keeper and the quorum arithmetic it relies on."""

from __future__ import annotations

import pytest

from medalliance.consensus.messages import Kind, Vote, signed_bytes
from medalliance.consensus.validators import ValidatorSet
from medalliance.consensus.votes import Equivocation, VoteKeeper

V4 = ValidatorSet(("a", "b", "c", "d"))
X, Y = b"x" * 32, b"y" * 32


def vote(voter: str, value: bytes | None, round: int = 0, kind: Kind = Kind.PREVOTE) -> Vote:
    return Vote(kind, "ch", 1, round, value, voter, signature=voter.encode())


@pytest.mark.parametrize(
    ("n", "f", "quorum"),
    [
        pytest.param(1, 0, 1, id="one node decides alone"),
        pytest.param(4, 1, 3, id="four nodes tolerate one"),
        pytest.param(5, 1, 4, id="five nodes tolerate one, with a larger quorum"),
        pytest.param(6, 1, 4, id="six nodes tolerate one"),
        pytest.param(7, 2, 5, id="seven nodes tolerate two"),
    ],
)
def test_quorum_sizes(n: int, f: int, quorum: int) -> None:
    validators = ValidatorSet(tuple(f"v{i}" for i in range(n)))
    assert (validators.f, validators.quorum, validators.weak) == (f, quorum, f + 1)
    assert 2 * quorum - n >= f + 1  # two quorums share a correct validator
    assert n - f >= quorum  # the correct ones alone can decide


def test_the_proposer_rotates_by_height_and_round() -> None:
    assert [V4.proposer(1, r) for r in range(4)] == ["b", "c", "d", "a"]
    assert V4.proposer(2, 0) == V4.proposer(1, 1)


def test_distinct_validators_count_once() -> None:
    keeper = VoteKeeper(V4, height=1, window_rounds=4)
    for voter in ("a", "b", "b", "b"):
        assert keeper.add(vote(voter, X)) is None
    assert keeper.count(0, Kind.PREVOTE, X) == 2
    assert keeper.quorum(0, Kind.PREVOTE, X) is None
    keeper.add(vote("c", X))
    assert keeper.quorum(0, Kind.PREVOTE, X) is not None


def test_a_conflicting_second_vote_is_evidence_and_does_not_count() -> None:
    keeper = VoteKeeper(V4, height=1, window_rounds=4)
    first, second = vote("a", X), vote("a", Y)
    keeper.add(first)
    assert keeper.add(second) == Equivocation(first, second)
    assert (keeper.count(0, Kind.PREVOTE, X), keeper.count(0, Kind.PREVOTE, Y)) == (1, 0)
    assert keeper.add(vote("a", X, kind=Kind.PRECOMMIT)) is None  # another kind is another slot


def test_votes_of_non_members_are_ignored() -> None:
    keeper = VoteKeeper(V4, height=1, window_rounds=4)
    keeper.add(vote("mallory", X))
    assert keeper.count_any(0, Kind.PREVOTE) == 0
    assert keeper.skip_round() is None


def test_a_quorum_is_exported_in_validator_order_and_exactly_q_long() -> None:
    keeper = VoteKeeper(V4, height=1, window_rounds=4)
    for voter in ("d", "b", "a", "c"):
        keeper.add(vote(voter, X, kind=Kind.PRECOMMIT))
    exported = keeper.quorum(0, Kind.PRECOMMIT, X)
    assert exported is not None
    assert [v.voter for v in exported] == ["a", "b", "c"]
    assert keeper.precommit_quorums == [(0, X)]  # reported once, when the quorum formed


def test_far_future_votes_are_not_kept_but_their_round_is() -> None:
    keeper = VoteKeeper(V4, height=1, window_rounds=2)
    keeper.add(vote("a", X, round=9))
    keeper.add(vote("b", X, round=12))
    assert keeper.count_any(9, Kind.PREVOTE) == 0
    assert keeper.skip_round() == 9  # a and b (f+1 = 2) have both reached round 9


def test_one_sender_alone_cannot_make_others_skip_rounds() -> None:
    keeper = VoteKeeper(V4, height=1, window_rounds=2)
    keeper.add(vote("a", X, round=50))
    keeper.note_round("a", 90)
    assert keeper.skip_round() is None


def test_nil_and_a_value_sign_different_bytes_on_each_channel_and_kind() -> None:
    payloads = {
        signed_bytes(Kind.PREVOTE, "ch", 1, 0, -1, None),
        signed_bytes(Kind.PREVOTE, "ch", 1, 0, -1, b""),
        signed_bytes(Kind.PREVOTE, "other", 1, 0, -1, None),
        signed_bytes(Kind.PRECOMMIT, "ch", 1, 0, -1, None),
        signed_bytes(Kind.PREVOTE, "ch", 1, 1, -1, None),
    }
    assert len(payloads) == 5
    assert signed_bytes(Kind.PREVOTE, "ch", 1, 0, -1, X).startswith(
        b"\x00\x00\x00\x12medalliance/bft/v1"
    )
