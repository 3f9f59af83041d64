"""The JSON hard state of the previous release, read-only: kept for one release.

Ordering nodes upgraded in place keep their `consensus.wal`, whose last record may be a JSON
hard state (first byte `{`): it is read here; nothing writes JSON any more. JSON messages are
not read: the batched `Step` body already refuses an older node's call, so the ordering nodes
of a network are upgraded together. Remove this module in the release after next, once every
node has written a binary record.

As strict as the binary decoder: anything malformed raises `InvalidArgument`.
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

_VOTE_KINDS = {"prevote": Kind.PREVOTE, "precommit": Kind.PRECOMMIT}
_FAILURES = (ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError)


def decode_hard_state(data: bytes) -> HardState:
    try:
        doc = json.loads(data)
        last = doc["lastSigned"]
        sent = tuple(_parse_message(m) for m in doc["sent"])
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
            sent=tuple(_signed(m) for m in sent),
            round_proof=tuple(_vote(v) for v in doc.get("roundProof", [])),
        )
    except _FAILURES as exc:
        raise InvalidArgument(f"unreadable consensus hard state ({type(exc).__name__})") from None


def _signed(message: Message) -> Proposal | Vote:
    if not isinstance(message, Proposal | Vote):
        raise TypeError("sent")
    return message


def _parse_message(doc: dict[str, Any]) -> Message:
    kind = doc["t"]
    channel, height, sender = _str(doc["channel"]), _int(doc["height"]), _str(doc["from"])
    if kind == "proposal":
        return Proposal(
            channel,
            height,
            _int(doc["round"]),
            _required_value(doc["value"]),
            _int(doc["validRound"]),
            tuple(_vote(v) for v in doc["pol"]),
            sender,
            _unb64(doc["sig"]) or b"",
        )
    if kind in _VOTE_KINDS:
        return _vote(doc)
    if kind == "decision":
        certificate = Certificate(tuple(_vote(v) for v in doc["cert"]))
        if not certificate.precommits:
            raise ValueError("empty certificate")
        return Decision(channel, height, _required_value(doc["value"]), certificate, sender)
    if kind == "status":
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


def _required_value(doc: dict[str, Any] | None) -> Value:
    value = _parse_value(doc)
    if value is None:
        raise TypeError("value")
    return value


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
