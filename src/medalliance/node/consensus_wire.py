"""Consensus messages and hard state as bytes: what ordering nodes send each other and persist.

A hand-written binary format, version 1 (docs/consensus.md, "Wire format"): a version byte, a
kind byte, then the fields in a fixed order — integers as 8-byte big-endian signed, names as a
2-byte length and UTF-8, byte strings (ids, signatures, block bodies: raw, never base64) as a
4-byte length and the bytes, an optional field behind a 0/1 byte, lists behind a 2-byte count.
Signatures cover the canonical bytes of the consensus core (`consensus/messages.py`), never
this encoding, so the encoding only has to be unambiguous and strict: a peer's bytes are
hostile input, and anything malformed, oversized, truncated, followed by extra bytes, or of an
unknown version or kind is an `InvalidArgument` before it reaches the core — no other exception
escapes. JSON (first byte `{`) is the previous release's format: its hard state is still read
(`legacy_wire.py`), its messages are refused (every ordering node is upgraded together).

A hard state names its values (locked, valid, proposed) by id only: their block bodies are
written to the log once (`hard_state_log.py`) and handed back to `decode_hard_state`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from enum import IntEnum
from typing import TypeVar

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
from medalliance.node import legacy_wire

VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # a proposal carries a block; blocks are ≤ AbsoluteMaxBytes
MAX_NAME = 1024  # a channel or consenter name, UTF-8 bytes
MAX_ID = 64  # a value id (a block header's SHA-256: 32)
MAX_SIGNATURE = 1024  # an ECDSA or Ed25519 signature is far shorter
MAX_VOTES = 1024  # votes in a POL, certificate or proof: one per consenter at most
MAX_INT = 2**62  # heights and rounds; -1 means "none" for rounds
_JSON = b"{"

_I64 = struct.Struct(">q")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
T = TypeVar("T")


class Tag(IntEnum):
    """The kind byte after the version."""

    PROPOSAL = 1
    PREVOTE = 2
    PRECOMMIT = 3
    DECISION = 4
    STATUS = 5
    HARD_STATE = 16


_VOTE_TAGS = {Kind.PREVOTE: Tag.PREVOTE, Kind.PRECOMMIT: Tag.PRECOMMIT}
_TAG_VOTES = {tag: kind for kind, tag in _VOTE_TAGS.items()}


class _Malformed(Exception):
    """Why bytes are not one valid record; reported as `InvalidArgument` by the public API."""


# --- public API ------------------------------------------------------------------------------


def encode(message: Message) -> bytes:
    out = bytearray((VERSION,))
    _message(out, message, bodies=True)
    return bytes(out)


def decode(data: bytes) -> Message:
    """A message from a peer; `InvalidArgument` for anything that is not exactly one."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise InvalidArgument(f"consensus message of {len(data)} bytes is too large")
    if data[:1] == _JSON:
        raise InvalidArgument(
            "a JSON consensus message, the format of the previous release: upgrade every "
            "ordering node of the network together"
        )
    return _strictly(data, "malformed consensus message", lambda r: _read_message(r, None))


def encode_hard_state(state: HardState) -> bytes:
    """The hard state without block bodies (`value_bodies` lists those it refers to)."""
    out = bytearray((VERSION, Tag.HARD_STATE))
    _i64(out, state.height)
    _i64(out, state.round)
    out.append(state.step)
    _i64(out, state.locked_round)
    _opt_blob(out, None if state.locked_value is None else state.locked_value.value_id)
    _i64(out, state.valid_round)
    _opt_blob(out, None if state.valid_value is None else state.valid_value.value_id)
    _votes(out, state.valid_pol)
    last = state.last_signed
    out.append(last is not None)
    if last is not None:
        _i64(out, last.height)
        _i64(out, last.round)
        out.append(last.kind)
        _opt_blob(out, last.value_id)
    out += _U16.pack(len(state.sent))
    for message in state.sent:
        _message(out, message, bodies=False)
    _votes(out, state.round_proof)
    return bytes(out)


def value_bodies(state: HardState) -> dict[bytes, bytes]:
    """The block bodies `state` refers to, by value id."""
    values = [state.locked_value, state.valid_value]
    values += [m.value for m in state.sent if isinstance(m, Proposal)]
    return {v.value_id: v.body for v in values if v is not None}


def decode_hard_state(data: bytes, bodies: Mapping[bytes, bytes]) -> HardState:
    """A stored hard state, its values' bodies taken from `bodies`; `InvalidArgument` if it is
    unreadable or refers to a body that is not there."""
    if data[:1] == _JSON:
        return legacy_wire.decode_hard_state(data)
    return _strictly(data, "unreadable consensus hard state", lambda r: _read_state(r, bodies))


# --- encoding --------------------------------------------------------------------------------


def _message(out: bytearray, message: Message, *, bodies: bool) -> None:
    match message:
        case Proposal():
            out.append(Tag.PROPOSAL)
            _name(out, message.channel)
            _i64(out, message.height)
            _i64(out, message.round)
            _value(out, message.value, bodies)
            _i64(out, message.valid_round)
            _votes(out, message.pol)
            _name(out, message.proposer)
            _blob(out, message.signature)
        case Vote():
            out.append(_VOTE_TAGS[message.kind])
            _name(out, message.channel)
            _i64(out, message.height)
            _i64(out, message.round)
            _opt_blob(out, message.value_id)
            _name(out, message.voter)
            _blob(out, message.signature)
        case Decision():
            out.append(Tag.DECISION)
            _name(out, message.channel)
            _i64(out, message.height)
            _value(out, message.value, bodies)
            _votes(out, message.certificate.precommits)
            _name(out, message.sender)
        case Status():
            out.append(Tag.STATUS)
            _name(out, message.channel)
            _i64(out, message.height)
            _i64(out, message.round)
            _name(out, message.sender)
            _blob(out, message.signature)


def _value(out: bytearray, value: Value, body: bool) -> None:
    _blob(out, value.value_id)
    if body:
        _blob(out, value.body)


def _votes(out: bytearray, votes: tuple[Vote, ...]) -> None:
    out += _U16.pack(len(votes))
    for vote in votes:
        _message(out, vote, bodies=False)


def _i64(out: bytearray, value: int) -> None:
    out += _I64.pack(value)


def _name(out: bytearray, text: str) -> None:
    data = text.encode()
    out += _U16.pack(len(data))
    out += data


def _blob(out: bytearray, data: bytes) -> None:
    out += _U32.pack(len(data))
    out += data


def _opt_blob(out: bytearray, data: bytes | None) -> None:
    out.append(data is not None)
    if data is not None:
        _blob(out, data)


# --- decoding --------------------------------------------------------------------------------


class _Reader:
    """Bytes consumed front to back; every length is checked against what remains and a cap."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, size: int) -> bytes:
        end = self.at + size
        if end > len(self.data):
            raise _Malformed(f"cut short at byte {self.at}")
        chunk, self.at = self.data[self.at : end], end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def flag(self) -> bool:
        value = self.u8()
        if value > 1:
            raise _Malformed(f"flag byte {value} is neither 0 nor 1")
        return value == 1

    def count(self) -> int:
        value: int = _U16.unpack(self.take(2))[0]
        if value > MAX_VOTES:
            raise _Malformed(f"{value} votes are more than {MAX_VOTES}")
        return value

    def i64(self) -> int:
        value: int = _I64.unpack(self.take(8))[0]
        if not -MAX_INT < value < MAX_INT:
            raise _Malformed(f"number {value} out of range")
        return value

    def name(self) -> str:
        size: int = _U16.unpack(self.take(2))[0]
        if size > MAX_NAME:
            raise _Malformed(f"a name of {size} bytes is longer than {MAX_NAME}")
        return self.take(size).decode()  # UnicodeDecodeError is a ValueError: refused

    def blob(self, limit: int, what: str) -> bytes:
        size: int = _U32.unpack(self.take(4))[0]
        if size > limit:
            raise _Malformed(f"a {what} of {size} bytes is longer than {limit}")
        return self.take(size)

    def value_id(self) -> bytes:
        value_id = self.blob(MAX_ID, "value id")
        if not value_id:
            raise _Malformed("empty value id")
        return value_id

    def opt_value_id(self) -> bytes | None:
        return self.value_id() if self.flag() else None


def _strictly(data: bytes, problem: str, read: Callable[[_Reader], T]) -> T:
    """`read` all of `data` (version byte first), every failure as one `InvalidArgument`."""
    reader = _Reader(data)
    try:
        version = reader.u8()
        if version != VERSION:
            raise _Malformed(
                f"format version {version} is not {VERSION}; is the sending node of a newer "
                "release? upgrade this one"
            )
        result = read(reader)
        if reader.at != len(data):
            raise _Malformed(f"{len(data) - reader.at} bytes follow the record")
    except (_Malformed, ValueError, struct.error) as exc:
        raise InvalidArgument(f"{problem}: {exc}") from None
    return result


def _read_message(r: _Reader, bodies: Mapping[bytes, bytes] | None) -> Message:
    """One message; with `bodies`, a carried value is an id to look up there (hard state)."""
    raw_tag = r.u8()
    if raw_tag in _TAG_VOTES:
        return _read_vote_fields(r, _TAG_VOTES[Tag(raw_tag)])
    if raw_tag not in (Tag.PROPOSAL, Tag.DECISION, Tag.STATUS):
        raise _Malformed(f"unknown message kind {raw_tag}")
    channel, height = r.name(), r.i64()
    if raw_tag == Tag.PROPOSAL:
        round_, value, valid_round = r.i64(), _read_value(r, bodies), r.i64()
        pol = _read_votes(r)
        return Proposal(channel, height, round_, value, valid_round, pol, r.name(), _sig(r))
    if raw_tag == Tag.DECISION:
        value, precommits = _read_value(r, bodies), _read_votes(r)
        if not precommits:
            raise _Malformed("a decision without certificate")
        return Decision(channel, height, value, Certificate(precommits), r.name())
    # a STATUS; an unsigned one decodes (empty signature) so the host can count it dropped
    return Status(channel, height, r.i64(), r.name(), _sig(r))


def _read_vote_fields(r: _Reader, kind: Kind) -> Vote:
    channel, height, round_ = r.name(), r.i64(), r.i64()
    return Vote(kind, channel, height, round_, r.opt_value_id(), r.name(), _sig(r))


def _read_votes(r: _Reader) -> tuple[Vote, ...]:
    votes = []
    for _ in range(r.count()):
        raw_tag = r.u8()
        if raw_tag not in _TAG_VOTES:
            raise _Malformed(f"kind {raw_tag} where a vote belongs")
        votes.append(_read_vote_fields(r, _TAG_VOTES[Tag(raw_tag)]))
    return tuple(votes)


def _read_value(r: _Reader, bodies: Mapping[bytes, bytes] | None) -> Value:
    value_id = r.value_id()
    if bodies is None:
        return Value(value_id, r.blob(MAX_MESSAGE_BYTES, "block"))
    return _stored_value(value_id, bodies)


def _stored_value(value_id: bytes, bodies: Mapping[bytes, bytes]) -> Value:
    body = bodies.get(value_id)
    if body is None:
        raise _Malformed(f"the body of value {value_id.hex()[:16]} is not in the log")
    return Value(value_id, body)


def _sig(r: _Reader) -> bytes:
    return r.blob(MAX_SIGNATURE, "signature")


def _read_state(r: _Reader, bodies: Mapping[bytes, bytes]) -> HardState:
    if (tag := r.u8()) != Tag.HARD_STATE:
        raise _Malformed(f"kind {tag} is not a hard state")
    height, round_, step = r.i64(), r.i64(), Step(r.u8())
    locked_round, locked_id = r.i64(), r.opt_value_id()
    valid_round, valid_id = r.i64(), r.opt_value_id()
    valid_pol = _read_votes(r)
    last = None
    if r.flag():
        last = LastSigned(r.i64(), r.i64(), Kind(r.u8()), r.opt_value_id())
    sent: list[Proposal | Vote] = []
    for _ in range(r.count()):
        message = _read_message(r, bodies)
        if not isinstance(message, Proposal | Vote):
            raise _Malformed(f"a {type(message).__name__} among the signed messages")
        sent.append(message)
    return HardState(
        height=height,
        round=round_,
        step=step,
        locked_round=locked_round,
        locked_value=None if locked_id is None else _stored_value(locked_id, bodies),
        valid_round=valid_round,
        valid_value=None if valid_id is None else _stored_value(valid_id, bodies),
        valid_pol=valid_pol,
        last_signed=last,
        sent=tuple(sent),
        round_proof=_read_votes(r),
    )
