"""Consensus messages between ordering nodes: exact round trips, and hostile bytes refused."""

from __future__ import annotations

import base64
import contextlib
import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medalliance.consensus.hard_state import HardState, LastSigned, Step
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
from medalliance.errors import InvalidArgument
from medalliance.node import consensus_wire
from medalliance.node.consensus_wire import (
    decode,
    decode_hard_state,
    encode,
    encode_hard_state,
    value_bodies,
)

VALUE = Value(b"\x01" * 32, b"block-body")
OTHER = Value(b"\x02" * 32, b"\x00\xff" * 100)
PREVOTE = Vote(Kind.PREVOTE, "ch", 5, 1, VALUE.value_id, "orderer1", b"sig-1")
NIL = Vote(Kind.PRECOMMIT, "ch", 5, 1, None, "orderer2", b"sig-2")
PRECOMMIT = Vote(Kind.PRECOMMIT, "ch", 5, 1, VALUE.value_id, "orderer3", b"sig-3")
PROPOSAL = Proposal("ch", 5, 2, VALUE, 1, (PREVOTE,), "orderer0", b"sig-p")
MESSAGES: list[Message] = [
    PROPOSAL,
    Proposal("ch", 5, 0, OTHER, -1, (), "orderer0", b"sig-q"),
    PREVOTE,
    NIL,
    Vote(Kind.PREVOTE, "ch", 5, 1, None, "orderer1", b""),  # unsigned: decoded, then dropped
    Decision("ch", 5, VALUE, Certificate((PRECOMMIT, PRECOMMIT)), "orderer3"),
    Status("ch", 5, 2, "orderer1", b"sig-s"),
    Status("ch", 5, 2, "orderer1", b""),
]
STATE = HardState(
    height=5, round=2, step=Step.PRECOMMIT, locked_round=1, locked_value=VALUE,
    valid_round=1, valid_value=VALUE, valid_pol=(PREVOTE,),
    last_signed=LastSigned(5, 2, Kind.PRECOMMIT, None), sent=(PROPOSAL, NIL),
    round_proof=(PRECOMMIT, NIL),
)  # fmt: skip
FRESH = HardState(6, 0, Step.PROPOSE, -1, None, -1, None, (), None, ())


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(message: Message) -> None:
    data = encode(message)
    assert data[0] == consensus_wire.VERSION
    assert decode(data) == message


def test_a_block_travels_as_raw_bytes() -> None:
    body = bytes(range(256)) * 400
    data = encode(Proposal("ch", 1, 0, Value(b"\x01" * 32, body), -1, (), "o0", b"s"))
    assert body in data
    assert len(data) < len(body) + 120  # no base64, no JSON around it


@pytest.mark.parametrize("state", [STATE, FRESH], ids=["mid-height", "fresh"])
def test_hard_state_round_trips_with_its_bodies_apart(state: HardState) -> None:
    data = encode_hard_state(state)
    bodies = value_bodies(state)
    assert all(body not in data for body in bodies.values())
    assert decode_hard_state(data, bodies) == state


def test_a_hard_state_names_each_body_once() -> None:
    assert value_bodies(STATE) == {VALUE.value_id: VALUE.body}


def test_a_hard_state_whose_body_is_missing_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="unreadable consensus hard state: the body"):
        decode_hard_state(encode_hard_state(STATE), {})


# --- hostile bytes ----------------------------------------------------------------------------

VOTE_BYTES = encode(PREVOTE)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "cut short"),
        (b"\x02" + VOTE_BYTES[1:], "format version 2 is not 1"),
        (b"\x01\x09", "unknown message kind 9"),
        (b"\x01\x10" + VOTE_BYTES[2:], "unknown message kind 16"),
        (VOTE_BYTES[:-1], "cut short"),
        (VOTE_BYTES + b"\x00", "1 bytes follow the record"),
        (b"\x01\x02" + struct.pack(">H", 60000) + b"ch", "longer than 1024"),
        (b"\x01\x02\x00\x02\xff\xfe", "can't decode"),
        (b"\x01\x02\x00\x02ch" + struct.pack(">q", 2**63 - 1), "out of range"),
        (b"\x01\x05\x00\x02ch" + struct.pack(">qq", 1, 1) + b"\x00\x01o" + b"\xff" * 4,
         "signature of 4294967295 bytes"),
        (encode(Decision("ch", 5, VALUE, Certificate((PRECOMMIT,)), "o"))[:-8] + b"\x00\x00"
         + b"\x00\x01o", None),
        (b"\x01\x04\x00\x02ch" + struct.pack(">q", 5) + b"\x00\x00\x00\x01\x01\x00\x00\x00\x00"
         + b"\x00\x00\x00\x01o", "a decision without certificate"),
        (b"\x01\x04\x00\x02ch" + struct.pack(">q", 5) + b"\x00\x00\x00\x00",
         "empty value id"),
        (b"\x01\x01\x00\x02ch" + struct.pack(">qq", 5, 0) + b"\x00\x00\x00\x01\x01\x00\x00\x00\x00"
         + struct.pack(">q", -1) + b"\xff\xff", "votes are more than"),
    ],
    ids=["empty", "newer version", "unknown kind", "hard state as message", "truncated",
         "trailing byte", "oversized name", "bad UTF-8", "huge number", "oversized signature",
         "garbled certificate", "decision without certificate", "empty value id",
         "too many votes"],
)  # fmt: skip
def test_hostile_bytes_are_refused(data: bytes, problem: str | None) -> None:
    with pytest.raises(InvalidArgument, match="malformed consensus message") as caught:
        decode(data)
    if problem is not None:
        assert problem in str(caught.value)


def test_an_oversized_message_is_refused_before_parsing() -> None:
    with pytest.raises(InvalidArgument, match="too large"):
        decode(b"\x01" * (consensus_wire.MAX_MESSAGE_BYTES + 1))


def test_a_message_is_not_a_hard_state() -> None:
    with pytest.raises(InvalidArgument, match="kind 2 is not a hard state"):
        decode_hard_state(VOTE_BYTES, {})


# --- the previous release's JSON ---------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _json_vote(vote: Vote) -> dict[str, object]:
    return {
        "t": vote.kind.name.lower(), "channel": vote.channel, "height": vote.height,
        "round": vote.round, "id": None if vote.value_id is None else _b64(vote.value_id),
        "from": vote.voter, "sig": _b64(vote.signature),
    }  # fmt: skip


def test_a_json_message_of_the_previous_release_is_refused_with_what_to_do() -> None:
    with pytest.raises(InvalidArgument, match="upgrade every ordering node"):
        decode(json.dumps(_json_vote(PREVOTE)).encode())


def test_a_json_hard_state_of_the_previous_release_is_read() -> None:
    value = {"id": _b64(VALUE.value_id), "body": _b64(VALUE.body)}
    proposal = {
        "t": "proposal", "channel": "ch", "height": 5, "round": 2, "value": value,
        "validRound": 1, "pol": [_json_vote(PREVOTE)], "from": "orderer0", "sig": _b64(b"sig-p"),
    }  # fmt: skip
    doc = {
        "height": 5, "round": 2, "step": 2, "lockedRound": 1, "lockedValue": value,
        "validRound": 1, "validValue": value, "validPol": [_json_vote(PREVOTE)],
        "lastSigned": [5, 2, 2, None], "sent": [proposal, _json_vote(NIL)],
        "roundProof": [_json_vote(PRECOMMIT), _json_vote(NIL)],
    }  # fmt: skip
    assert decode_hard_state(json.dumps(doc).encode(), {}) == STATE


@pytest.mark.parametrize(
    "doc",
    [
        b"{not json",
        json.dumps({"t": "gossip", "channel": "ch", "height": 1, "from": "x"}).encode(),
        json.dumps({"t": "prevote", "channel": "ch", "height": "5", "round": 0, "id": None,
                    "from": "x", "sig": ""}).encode(),
        json.dumps({"t": "prevote", "channel": "ch", "height": 5, "round": 0, "id": "%%%",
                    "from": "x", "sig": ""}).encode(),
        json.dumps({"t": "decision", "channel": "ch", "height": 5, "from": "x",
                    "value": {"id": "AQ==", "body": "AQ=="}, "cert": []}).encode(),
        b"{" * 100_000,
    ],
    ids=["not JSON", "unknown kind", "a height as text", "bad base64",
         "a decision without certificate", "deep nesting"],
)  # fmt: skip
def test_hostile_json_is_refused(doc: bytes) -> None:
    with pytest.raises(InvalidArgument, match="unreadable consensus hard state"):
        decode_hard_state(doc, {})
    sent_by_hand = b'{"height": 5, "round": 0, "step": 0, "lockedRound": -1, "lockedValue": null,'
    sent_by_hand += b' "validRound": -1, "validValue": null, "validPol": [], "lastSigned": null,'
    with pytest.raises(InvalidArgument, match="unreadable consensus hard state"):
        decode_hard_state(sent_by_hand + b' "sent": [' + doc + b"]}", {})


# --- fuzz: nothing but InvalidArgument, whatever the bytes ---------------------------------------

VALID = [encode(m) for m in MESSAGES]
STATE_BYTES = encode_hard_state(STATE)
BODIES = value_bodies(STATE)


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int) -> bytes:
    raw = bytearray(data)
    for position, byte in edits:
        raw[position % len(raw)] = byte
    return bytes(raw[: len(raw) - cut % 4])


def _decoded_or_refused(data: bytes) -> None:
    for parse in (decode, lambda d: decode_hard_state(d, BODIES)):
        with contextlib.suppress(InvalidArgument):
            parse(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise_anything_else(data: bytes) -> None:
    _decoded_or_refused(data)
    _decoded_or_refused(b"\x01" + data)


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from([*VALID, STATE_BYTES]),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    st.integers(0, 3),
)
def test_mutated_messages_never_raise_anything_else(
    data: bytes, edits: list[tuple[int, int]], cut: int
) -> None:
    _decoded_or_refused(_mutate(data, edits, cut))
