"""Consensus messages and the canonical bytes their signatures cover (consensus-design §2.3).

Pure: no I/O. Signed bytes are length-prefixed fields behind the domain tag
"medalliance/bft/v1": kind, channel, height, round, valid round and value id (or NIL). The
channel and kind are signed so that a vote cannot be replayed on another channel or as another
kind. Values (blocks) are opaque here: the host computes `value_id` from the block header and
checks it against the body before a message reaches the core.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum

from medalliance.consensus.validators import ValidatorSet
from medalliance.ledger.commit_certificate import signed_bytes as ledger_signed_bytes

STATUS_KIND = "STATUS"  # signed like the kinds below, but outside LAST: it cannot equivocate


class Kind(IntEnum):
    """Signed message kinds, in the order they are signed within one round (LAST compares them)."""

    PROPOSAL = 0
    PREVOTE = 1
    PRECOMMIT = 2


@dataclass(frozen=True, slots=True)
class Value:
    """A block as the core sees it: an id to vote on and a body to commit."""

    value_id: bytes
    body: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Vote:
    """A PREVOTE or PRECOMMIT for `value_id`, or for NIL when `value_id` is None."""

    kind: Kind
    channel: str
    height: int
    round: int
    value_id: bytes | None
    voter: str
    signature: bytes = field(default=b"", repr=False)

    @property
    def signer(self) -> str:
        return self.voter

    def signed_bytes(self) -> bytes:
        return signed_bytes(self.kind, self.channel, self.height, self.round, -1, self.value_id)


@dataclass(frozen=True, slots=True)
class Proposal:
    """PROPOSAL: `value` for (height, round); a re-proposal (valid_round ≥ 0) carries its POL."""

    channel: str
    height: int
    round: int
    value: Value
    valid_round: int
    pol: tuple[Vote, ...]  # q PREVOTEs for (height, valid_round, value id); empty for a fresh value
    proposer: str
    signature: bytes = field(default=b"", repr=False)

    @property
    def signer(self) -> str:
        return self.proposer

    def signed_bytes(self) -> bytes:
        return signed_bytes(
            Kind.PROPOSAL,
            self.channel,
            self.height,
            self.round,
            self.valid_round,
            self.value.value_id,
        )


@dataclass(frozen=True, slots=True)
class Certificate:
    """A commit certificate: q PRECOMMITs of one round for one value id, from distinct voters."""

    precommits: tuple[Vote, ...]

    @property
    def round(self) -> int:
        return self.precommits[0].round

    @property
    def value_id(self) -> bytes | None:
        return self.precommits[0].value_id


@dataclass(frozen=True, slots=True)
class Decision:
    """DECISION: a decided block relayed with its certificate. Unsigned: the certificate proves it."""

    channel: str
    height: int
    value: Value
    certificate: Certificate
    sender: str


@dataclass(frozen=True, slots=True)
class Status:
    """STATUS: where the sender is (its tip is height − 1). Signed by the sender: it moves rounds
    (rule K counts it) and starts catch-up, so a forged one must never reach the core."""

    channel: str
    height: int
    round: int
    sender: str
    signature: bytes = field(default=b"", repr=False)

    @property
    def signer(self) -> str:
        return self.sender

    def signed_bytes(self) -> bytes:
        # Its own kind name: a STATUS signature can never pass for a vote or a proposal.
        return ledger_signed_bytes(STATUS_KIND, self.channel, self.height, self.round, -1, None)


Signed = Proposal | Vote
Message = Proposal | Vote | Decision | Status


def signed_bytes(
    kind: Kind,
    channel: str,
    height: int,
    round: int,
    valid_round: int,
    value_id: bytes | None,
) -> bytes:
    """The canonical bytes a signature covers; equal inputs give equal bytes on every node.

    One definition with the ledger's commit certificates: a block's certificate is made of
    the very PRECOMMITs that decided it.
    """
    return ledger_signed_bytes(kind.name, channel, height, round, valid_round, value_id)


def sender_of(message: Message) -> str:
    match message:
        case Proposal():
            return message.proposer
        case Vote():
            return message.voter
        case Decision() | Status():
            return message.sender


def kind_of(message: Signed) -> Kind:
    return Kind.PROPOSAL if isinstance(message, Proposal) else message.kind


def value_id_of(message: Signed) -> bytes | None:
    return message.value.value_id if isinstance(message, Proposal) else message.value_id


def quorum_problem(
    votes: Iterable[Vote],
    validators: ValidatorSet,
    *,
    channel: str,
    kind: Kind,
    height: int,
    round: int,
    value_id: bytes | None,
) -> str | None:
    """Why `votes` are not q votes of `kind` for (channel, height, round, value_id), or None.

    Checks structure and membership only: the host has verified every signature already.
    """
    voters: set[str] = set()
    for vote in votes:
        if (vote.kind, vote.channel, vote.height, vote.round, vote.value_id) != (
            kind,
            channel,
            height,
            round,
            value_id,
        ):
            return (
                f"a vote of {vote.voter} is not a {kind.name} for the same height, round and value"
            )
        if not validators.contains(vote.voter):
            return f"{vote.voter} is not a validator"
        if vote.voter in voters:
            return f"{vote.voter} is counted twice"
        voters.add(vote.voter)
    if len(voters) < validators.quorum:
        return f"{len(voters)} distinct voters, a quorum is {validators.quorum}"
    return None


def certificate_problem(
    certificate: Certificate,
    validators: ValidatorSet,
    *,
    channel: str,
    height: int,
    value_id: bytes,
) -> str | None:
    """Why `certificate` does not prove `value_id` decided at `height`, or None if it does."""
    if not certificate.precommits:
        return "the certificate is empty"
    return quorum_problem(
        certificate.precommits,
        validators,
        channel=channel,
        kind=Kind.PRECOMMIT,
        height=height,
        round=certificate.round,
        value_id=value_id,
    )


def pol_problem(proposal: Proposal, validators: ValidatorSet) -> str | None:
    """Why a re-proposal's POL does not prove q prevotes of an earlier round, or None."""
    if proposal.valid_round >= proposal.round:
        return f"valid round {proposal.valid_round} is not before round {proposal.round}"
    return quorum_problem(
        proposal.pol,
        validators,
        channel=proposal.channel,
        kind=Kind.PREVOTE,
        height=proposal.height,
        round=proposal.valid_round,
        value_id=proposal.value.value_id,
    )
