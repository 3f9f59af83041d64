"""Signing this node's own messages: the host's key behind a protocol, and the guard against
equivocation that stands in front of it (consensus-design §2.6 sign_and_send, §2.8); and the one
list of what a received message's signatures cover (`signatures_of`), which every host checks
before a message reaches the core.

Pure: the guard keeps LAST and SENT in memory; the host persists them (they are in `HardState`)
before any signed message leaves the node.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol, assert_never

from medalliance.consensus.hard_state import LastSigned, WouldEquivocate
from medalliance.consensus.messages import (
    Decision,
    Kind,
    Message,
    Proposal,
    Signed,
    Status,
    Vote,
    kind_of,
    value_id_of,
)


class Signer(Protocol):
    """Signs canonical bytes (`messages.signed_bytes`) with this node's validator key.

    Production signs with the node's MSP signing key (ECDSA P-256, `identity/signing.py`), whose
    signatures are randomised: re-signing the same bytes gives different signatures. That is why
    the guard keeps SENT and re-sends the stored message instead of signing again (§2.8). The
    simulator signs with a per-node HMAC key.
    """

    @property
    def node_id(self) -> str: ...

    def sign(self, payload: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """One signature a host must verify: `signature` by consenter `signer` over `payload`."""

    signer: str
    payload: bytes = field(repr=False)
    signature: bytes = field(repr=False)


def signatures_of(message: Message) -> tuple[SignatureCheck, ...]:
    """Every signature `message` carries, each with the bytes it must cover.

    A host drops the message unless every one verifies against a consenter of the channel: a
    proposal and the votes of its POL, a vote, the precommits of a decision's certificate (the
    relayer of a DECISION signs nothing; the certificate proves it), a STATUS.
    """
    match message:
        case Proposal():
            own = SignatureCheck(message.proposer, message.signed_bytes(), message.signature)
            return (own, *(_check(vote) for vote in message.pol))
        case Vote():
            return (_check(message),)
        case Decision():
            return tuple(_check(vote) for vote in message.certificate.precommits)
        case Status():
            return (SignatureCheck(message.sender, message.signed_bytes(), message.signature),)
        case _:
            assert_never(message)


def _check(vote: Vote) -> SignatureCheck:
    return SignatureCheck(vote.voter, vote.signed_bytes(), vote.signature)


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

    def sign_status(self, unsigned: Status) -> Status:
        """A signed STATUS. Not guarded: it votes for nothing, so it cannot equivocate."""
        return replace(unsigned, signature=self._signer.sign(unsigned.signed_bytes()))

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
