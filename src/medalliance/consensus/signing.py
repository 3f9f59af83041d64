"""Signing this node's own messages: the host's key behind a protocol, and the guard against
equivocation that stands in front of it (consensus-design §2.6 sign_and_send, §2.8).

Pure: the guard keeps LAST and SENT in memory; the host persists them (they are in `HardState`)
before any signed message leaves the node.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from medalliance.consensus.hard_state import LastSigned, WouldEquivocate
from medalliance.consensus.messages import Kind, Signed, kind_of, value_id_of


class Signer(Protocol):
    """Signs canonical bytes (`messages.signed_bytes`) with this node's validator key.

    Production signs with deterministic ECDSA so a re-signed message has identical bytes
    (consensus-design §2.8); the simulator signs with a per-node HMAC key.
    """

    @property
    def node_id(self) -> str: ...

    def sign(self, payload: bytes) -> bytes: ...


class SigningGuard:
    """Signs each (height, round, kind) at most once, and only strictly after LAST."""

    def __init__(self, signer: Signer, last: LastSigned | None) -> None:
        self._signer = signer
        self.last = last
        self.sent: dict[Kind, Signed] = {}  # SENT: own signed messages of the current round

    def new_round(self) -> None:
        self.sent = {}

    def restore(self, sent: tuple[Signed, ...]) -> None:
        self.sent = {kind_of(message): message for message in sent}

    def sent_in_order(self) -> tuple[Signed, ...]:
        return tuple(self.sent[kind] for kind in sorted(self.sent))

    def sign(self, unsigned: Signed) -> tuple[Signed, bool]:
        """The signed message, and whether it is new (False: the stored bytes, to re-send).

        Raises `WouldEquivocate` instead of signing different content for a slot already signed,
        or anything at or below LAST: the node must stop, not contradict itself.
        """
        kind, value_id = kind_of(unsigned), value_id_of(unsigned)
        earlier = self.sent.get(kind)
        if earlier is not None and (earlier.height, earlier.round) == (
            unsigned.height,
            unsigned.round,
        ):
            if value_id_of(earlier) != value_id:
                raise WouldEquivocate(
                    f"{kind.name} for height {unsigned.height} round {unsigned.round} "
                    "was already signed for another value"
                )
            return earlier, False
        slot = LastSigned(unsigned.height, unsigned.round, kind, value_id)
        if self.last is not None and slot.position <= self.last.position:
            raise WouldEquivocate(
                f"{kind.name} for height {slot.height} round {slot.round} is not after the last "
                f"signed message ({self.last.kind.name}, height {self.last.height}, "
                f"round {self.last.round})"
            )
        signed = replace(unsigned, signature=self._signer.sign(unsigned.signed_bytes()))
        self.last = slot
        self.sent[kind] = signed
        return signed, True
