"""Consensus messages between ordering nodes: exact round trips, and hostile bytes refused."""

from __future__ import annotations

import json

import pytest

from medalliance.consensus.hard_state import HardState, LastSigned, Step
from medalliance.consensus.messages import (
    Certificate,
    Decision,
    Kind,
    Proposal,
    Status,
    Value,
    Vote,
)
from medalliance.errors import InvalidArgument
from medalliance.node.consensus_wire import decode, decode_hard_state, encode, encode_hard_state

VALUE = Value(b"\x01" * 32, b"block-body")
PREVOTE = Vote(Kind.PREVOTE, "ch", 5, 1, VALUE.value_id, "orderer1", b"sig-1")
NIL = Vote(Kind.PRECOMMIT, "ch", 5, 1, None, "orderer2", b"sig-2")
PRECOMMIT = Vote(Kind.PRECOMMIT, "ch", 5, 1, VALUE.value_id, "orderer3", b"sig-3")
MESSAGES = [
    Proposal("ch", 5, 2, VALUE, 1, (PREVOTE,), "orderer0", b"sig-p"),
    PREVOTE,
    NIL,
    Decision("ch", 5, VALUE, Certificate((PRECOMMIT,)), "orderer3"),
    Status("ch", 5, 2, "orderer1", b"sig-s"),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(message: object) -> None:
    assert decode(encode(message)) == message  # type: ignore[arg-type]


def test_an_unsigned_status_decodes_with_no_signature_for_the_host_to_refuse() -> None:
    doc = {"t": "status", "channel": "ch", "height": 5, "round": 1000, "from": "orderer1"}
    assert decode(json.dumps(doc).encode()) == Status("ch", 5, 1000, "orderer1", b"")


def test_hard_state_round_trips() -> None:
    state = HardState(
        height=5, round=2, step=Step.PRECOMMIT, locked_round=1, locked_value=VALUE,
        valid_round=1, valid_value=VALUE, valid_pol=(PREVOTE,),
        last_signed=LastSigned(5, 2, Kind.PRECOMMIT, None), sent=(MESSAGES[0], NIL),
        round_proof=(PRECOMMIT, NIL),
    )  # fmt: skip
    assert decode_hard_state(encode_hard_state(state)) == state


@pytest.mark.parametrize(
    "doc",
    [
        b"not json",
        b"[]",
        json.dumps({"t": "gossip", "channel": "ch", "height": 1, "from": "x"}).encode(),
        json.dumps({"t": "prevote", "channel": "ch", "height": "5", "round": 0, "id": None,
                    "from": "x", "sig": ""}).encode(),
        json.dumps({"t": "prevote", "channel": "ch", "height": 5, "round": 0, "id": "%%%",
                    "from": "x", "sig": ""}).encode(),
        json.dumps({"t": "prevote", "channel": "ch", "height": True, "round": 0, "id": None,
                    "from": "x", "sig": ""}).encode(),
        json.dumps({"t": "decision", "channel": "ch", "height": 5, "from": "x",
                    "value": {"id": "AQ==", "body": "AQ=="}, "cert": []}).encode(),
        json.dumps({"t": "status", "channel": "ch", "height": 2**70, "round": 0,
                    "from": "x"}).encode(),
    ],
    ids=["not JSON", "not an object", "unknown kind", "a height as text", "bad base64",
         "a boolean height", "a decision without certificate", "a huge number"],
)  # fmt: skip
def test_hostile_bytes_are_refused(doc: bytes) -> None:
    with pytest.raises(InvalidArgument, match="malformed consensus message"):
        decode(doc)


def test_unreadable_hard_state_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="unreadable consensus hard state"):
        decode_hard_state(b'{"height": 1}')
