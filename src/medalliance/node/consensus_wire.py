"""Consensus messages and hard state as bytes: what ordering nodes send each other and persist.

JSON with base64 for binary fields. Signatures cover the canonical bytes of the consensus core
(`consensus/messages.py`), never this encoding, so the encoding only has to be unambiguous and
strict: a peer's bytes are hostile input, and anything malformed, oversized or of the wrong
type is an `InvalidArgument` before it reaches the core.
"""

from __future__ import annotations

import base64
import json
from typing import Any

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

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # a proposal carries a block; blocks are ≤ AbsoluteMaxBytes
_VOTE_KINDS = {"prevote": Kind.PREVOTE, "precommit": Kind.PRECOMMIT}


def encode(message: Message) -> bytes:
    return json.dumps(_message(message), separators=(",", ":")).encode()


def decode(data: bytes) -> Message:
    """A message from a peer; `InvalidArgument` for anything that is not exactly one."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise InvalidArgument(f"consensus message of {len(data)} bytes is too large")
    try:
        return _parse_message(json.loads(data))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidArgument(f"malformed consensus message ({type(exc).__name__})") from None


def encode_hard_state(state: HardState) -> bytes:
    last = state.last_signed
    return json.dumps(
        {
            "height": state.height,
            "round": state.round,
            "step": int(state.step),
            "lockedRound": state.locked_round,
            "lockedValue": _value(state.locked_value),
            "validRound": state.valid_round,
            "validValue": _value(state.valid_value),
            "validPol": [_message(v) for v in state.valid_pol],
            "lastSigned": None
            if last is None
            else [last.height, last.round, int(last.kind), _b64(last.value_id)],
            "sent": [_message(m) for m in state.sent],
            "roundProof": [_message(v) for v in state.round_proof],
        },
        separators=(",", ":"),
    ).encode()


def decode_hard_state(data: bytes) -> HardState:
    try:
        doc = json.loads(data)
        last = doc["lastSigned"]
        sent = tuple(_parse_message(m) for m in doc["sent"])
        if not all(isinstance(m, (Proposal, Vote)) for m in sent):
            raise TypeError("sent")
        return HardState(
            height=_int(doc["height"]),
            round=_int(doc["round"]),
            step=Step(_int(doc["step"])),
            locked_round=_int(doc["lockedRound"]),
            locked_value=_parse_value(doc["lockedValue"]),
            valid_round=_int(doc["validRound"]),
            valid_value=_parse_value(doc["validValue"]),
            valid_pol=tuple(_vote(v) for v in doc["validPol"]),
            last_signed=None
            if last is None
            else LastSigned(_int(last[0]), _int(last[1]), Kind(_int(last[2])), _unb64(last[3])),
            sent=tuple(m for m in sent if isinstance(m, (Proposal, Vote))),
            round_proof=tuple(_vote(v) for v in doc.get("roundProof", [])),
        )
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise InvalidArgument(f"unreadable consensus hard state ({type(exc).__name__})") from None


# --- encoding --------------------------------------------------------------------------------


def _message(message: Message) -> dict[str, Any]:
    match message:
        case Proposal():
            return {
                "t": "proposal",
                "channel": message.channel,
                "height": message.height,
                "round": message.round,
                "value": _value(message.value),
                "validRound": message.valid_round,
                "pol": [_message(v) for v in message.pol],
                "from": message.proposer,
                "sig": _b64(message.signature),
            }
        case Vote():
            return {
                "t": message.kind.name.lower(),
                "channel": message.channel,
                "height": message.height,
                "round": message.round,
                "id": _b64(message.value_id),
                "from": message.voter,
                "sig": _b64(message.signature),
            }
        case Decision():
            return {
                "t": "decision",
                "channel": message.channel,
                "height": message.height,
                "value": _value(message.value),
                "cert": [_message(v) for v in message.certificate.precommits],
                "from": message.sender,
            }
        case Status():
            return {
                "t": "status",
                "channel": message.channel,
                "height": message.height,
                "round": message.round,
                "from": message.sender,
                "sig": _b64(message.signature),
            }


def _value(value: Value | None) -> dict[str, str] | None:
    if value is None:
        return None
    return {"id": _b64(value.value_id) or "", "body": _b64(value.body) or ""}


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


# --- decoding --------------------------------------------------------------------------------


def _parse_message(doc: dict[str, Any]) -> Message:
    kind = doc["t"]
    channel, height, sender = _str(doc["channel"]), _int(doc["height"]), _str(doc["from"])
    if kind == "proposal":
        value = _parse_value(doc["value"])
        if value is None:
            raise TypeError("value")
        return Proposal(
            channel,
            height,
            _int(doc["round"]),
            value,
            _int(doc["validRound"]),
            tuple(_vote(v) for v in doc["pol"]),
            sender,
            _unb64(doc["sig"]) or b"",
        )
    if kind in _VOTE_KINDS:
        return _vote(doc)
    if kind == "decision":
        value = _parse_value(doc["value"])
        if value is None:
            raise TypeError("value")
        certificate = Certificate(tuple(_vote(v) for v in doc["cert"]))
        if not certificate.precommits:
            raise ValueError("empty certificate")
        return Decision(channel, height, value, certificate, sender)
    if kind == "status":
        # An unsigned STATUS decodes (with an empty signature) so the host can count it dropped.
        return Status(channel, height, _int(doc["round"]), sender, _unb64(doc.get("sig")) or b"")
    raise ValueError(f"unknown kind {kind!r}")


def _vote(doc: dict[str, Any]) -> Vote:
    return Vote(
        _VOTE_KINDS[doc["t"]],
        _str(doc["channel"]),
        _int(doc["height"]),
        _int(doc["round"]),
        _unb64(doc["id"]),
        _str(doc["from"]),
        _unb64(doc["sig"]) or b"",
    )


def _parse_value(doc: dict[str, Any] | None) -> Value | None:
    if doc is None:
        return None
    value_id, body = _unb64(doc["id"]), _unb64(doc["body"])
    if not value_id or body is None:
        raise ValueError("value")
    return Value(value_id, body)


def _unb64(text: object) -> bytes | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise TypeError("base64")
    return base64.b64decode(text, validate=True)


def _int(value: object) -> int:
    if type(value) is not int or not -(2**62) < value < 2**62:
        raise TypeError("integer")
    return value


def _str(value: object) -> str:
    if not isinstance(value, str) or len(value) > 256:
        raise TypeError("string")
    return value
