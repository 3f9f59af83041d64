"""Test doubles for the simulator: HMAC signatures per node and a deterministic workload.

A node signs with its own secret; hosts verify against the whole table, so a Byzantine node
can sign anything as itself but nothing as anyone else. Values are byte strings named after
(height, proposer); valid(v) is a pure function of the value and the height, as the design asks.
A value may end in `;config=a,b,c`: a config block naming the validators from the next height.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from medalliance.consensus.messages import (
    Certificate,
    Decision,
    Message,
    Proposal,
    Status,
    Value,
    Vote,
)
from medalliance.consensus.signing import signatures_of

CHANNEL = "medalliance-sim"
OUTSIDER = "outsider"  # holds a key and a link, but is not a validator


def secret_for(node_id: str) -> bytes:
    return hashlib.sha256(b"sim-secret/" + node_id.encode()).digest()


@dataclass(frozen=True, slots=True)
class FakeSigner:
    node_id: str
    secret: bytes = field(repr=False)

    @classmethod
    def for_node(cls, node_id: str) -> FakeSigner:
        return cls(node_id, secret_for(node_id))

    def sign(self, payload: bytes) -> bytes:
        return hmac.new(self.secret, payload, hashlib.sha256).digest()


class KeyTable:
    """Every validator's secret: what the hosts verify signatures against."""

    def __init__(self, node_ids: tuple[str, ...]) -> None:
        self._secrets = {node_id: secret_for(node_id) for node_id in node_ids}

    def is_signed_by(self, signer: str, payload: bytes, signature: bytes) -> bool:
        secret = self._secrets.get(signer)
        if secret is None:
            return False
        expected = hmac.new(secret, payload, hashlib.sha256).digest()
        return hmac.compare_digest(expected, signature)

    def vote_ok(self, vote: Vote) -> bool:
        return self.is_signed_by(vote.voter, vote.signed_bytes(), vote.signature)

    def certificate_ok(self, certificate: Certificate, value: Value) -> bool:
        return value_ok(value) and all(self.vote_ok(vote) for vote in certificate.precommits)

    def message_ok(self, message: Message, link_sender: str) -> bool:
        """What a production host checks before a message reaches the core: every signature
        `signatures_of` lists, a value's body against its id, and that a relayed DECISION or a
        STATUS names the consenter the (mutually authenticated) link comes from."""
        signed = all(
            self.is_signed_by(check.signer, check.payload, check.signature)
            for check in signatures_of(message)
        )
        match message:
            case Vote():
                return signed
            case Proposal():
                return signed and value_ok(message.value)
            case Decision():
                return signed and message.sender == link_sender and value_ok(message.value)
            case Status():
                return signed and message.sender == link_sender


def make_value(body: bytes) -> Value:
    return Value(hashlib.sha256(body).digest(), body)


def value_ok(value: Value) -> bool:
    return hashlib.sha256(value.body).digest() == value.value_id


CONFIG = b";config="


def honest_value(height: int, proposer: str, config: tuple[str, ...] | None = None) -> Value:
    return make_value(with_config(b"block-%d-%s" % (height, proposer.encode()), config))


def with_config(body: bytes, config: tuple[str, ...] | None) -> bytes:
    """`body` as a config block naming `config` when there is one."""
    return body if config is None else body + CONFIG + ",".join(config).encode()


def config_of(value: Value) -> tuple[str, ...] | None:
    """The validators a config value names, or None for an ordinary one."""
    _, found, names = value.body.partition(CONFIG)
    return tuple(names.decode(errors="replace").split(",")) if found else None


def is_valid(value: Value, height: int) -> bool:
    """valid(v): deterministic over the value and the height, never over local state."""
    return value.body.startswith(b"block-%d-" % height)
