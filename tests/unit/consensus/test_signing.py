"""What a received consensus message's signatures cover, and how a node signs its STATUS."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

import pytest

from medalliance.consensus.messages import (
    Certificate,
    Decision,
    Kind,
    Message,
    Proposal,
    Status,
    Value,
    Vote,
)
from medalliance.consensus.signing import SigningGuard, signatures_of

VALUE = Value(b"\x07" * 32, b"body")


class HmacSigner:
    def __init__(self, node_id: str) -> None:
        self.node_id = node_id

    def sign(self, payload: bytes) -> bytes:
        return hmac.new(self.node_id.encode(), payload, hashlib.sha256).digest()


def signed(message: Vote) -> Vote:
    return replace(message, signature=HmacSigner(message.voter).sign(message.signed_bytes()))


PREVOTE = signed(Vote(Kind.PREVOTE, "ch", 3, 1, VALUE.value_id, "o1"))
PRECOMMIT = signed(Vote(Kind.PRECOMMIT, "ch", 3, 1, VALUE.value_id, "o2"))


@pytest.mark.parametrize(
    ("message", "signers"),
    [
        pytest.param(PREVOTE, ["o1"], id="a vote is signed by its voter"),
        pytest.param(
            Proposal("ch", 3, 2, VALUE, 1, (PREVOTE,), "o0", b"s"),
            ["o0", "o1"],
            id="a proposal by its proposer and its POL by the POL's voters",
        ),
        pytest.param(
            Decision("ch", 3, VALUE, Certificate((PRECOMMIT,)), "o3"),
            ["o2"],
            id="a decision by its certificate's voters, not by its relayer",
        ),
        pytest.param(Status("ch", 3, 1, "o3", b"s"), ["o3"], id="a status by its sender"),
    ],
)
def test_every_message_lists_each_signature_it_carries(
    message: Message, signers: list[str]
) -> None:
    assert [check.signer for check in signatures_of(message)] == signers


def test_a_status_signature_covers_height_round_and_channel() -> None:
    status = Status("ch", 3, 1, "o3")
    others = [replace(status, round=1000), replace(status, height=4), replace(status, channel="x")]
    assert all(other.signed_bytes() != status.signed_bytes() for other in others)


def test_a_status_signature_is_not_a_nil_vote_signature() -> None:
    status = Status("ch", 3, 1, "o3")
    for kind in Kind:
        vote_bytes = Vote(kind, "ch", 3, 1, None, "o3").signed_bytes()
        assert status.signed_bytes() != vote_bytes


def test_the_guard_signs_a_status_without_touching_last() -> None:
    guard = SigningGuard(HmacSigner("o3"), None)
    status = guard.sign_status(Status("ch", 3, 1, "o3"))
    (check,) = signatures_of(status)
    assert check.signature == HmacSigner("o3").sign(check.payload)
    assert guard.last is None
    assert guard.sent == {}
