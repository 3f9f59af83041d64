"""What an ordering node checks in a peer's consensus message before the core may see it.

The core trusts its `MessageReceived` inputs (consensus/inputs.py), so everything a Byzantine
consenter or a stolen TLS key could forge is refused here: the channel, who relays it, every
signature `signatures_of` lists (each by a consenter of the set in force), a decision's
certificate quorum, and a carried block's body against its header (Fabric's data hash) and its
number. A refusal is a `RejectedMessage` naming one of `REASONS`, which the host counts.

Pure: no I/O; identities come from the caller's `identity_of`.
"""

from __future__ import annotations

from collections.abc import Callable

from fabric_protos.common import common_pb2
from google.protobuf.message import DecodeError

from medalliance.consensus.messages import (
    Decision,
    Message,
    Proposal,
    Status,
    Value,
    certificate_problem,
)
from medalliance.consensus.signing import signatures_of
from medalliance.consensus.validators import ValidatorSet
from medalliance.errors import InvalidArgument
from medalliance.identity.msp import Identity
from medalliance.ledger.block import data_hash, header_hash

REASONS = (
    "malformed",  # bytes that are not one consensus message
    "wrong-channel",
    "wrong-sender",  # a STATUS or DECISION not from the consenter whose TLS identity sent it
    "unsigned",
    "not-consenter",  # signed in the name of someone outside the consenter set in force
    "bad-signature",
    "bad-certificate",  # a DECISION's precommits are not a quorum for its block
    "bad-block",  # a carried block's body or number does not match its (signed) header
)


class RefusalLog:
    """Counts refusals per key and says which to log: the 1st, 2nd, 4th, 8th, ... of each key.

    A flood of forged messages must not become a flood of log lines (disk, I/O): the log keeps
    every kind of refusal and its order of magnitude, the exact counts are in `/status`.
    """

    def __init__(self) -> None:
        self._counts: dict[tuple[str, ...], int] = {}

    def note(self, *key: str) -> int | None:
        """Count one refusal of `key`; its count when it should be logged, else None."""
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        return count if count & (count - 1) == 0 else None


class RejectedMessage(InvalidArgument):
    """A consensus message the node dropped; `reason` is one of `REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        assert reason in REASONS, reason
        super().__init__(f"consensus message dropped ({reason}): {detail}")
        self.reason = reason


def check_message(
    message: Message,
    *,
    channel_id: str,
    validators: ValidatorSet,
    caller: str | None,
    identity_of: Callable[[str], Identity],
) -> int:
    """Raise `RejectedMessage` unless `message` may reach the core; return how many
    signatures were verified.

    `caller` is the consenter the transport authenticated (None: not known, as in tests). A
    relayed PROPOSAL or vote may come from anyone who holds it; a STATUS or DECISION names its
    sender, who must be the caller.
    """
    if message.channel != channel_id:
        raise RejectedMessage("wrong-channel", f"the message is for channel {message.channel!r}")
    if isinstance(message, Status | Decision) and caller is not None and message.sender != caller:
        raise RejectedMessage(
            "wrong-sender", f"{caller} sent a {type(message).__name__} in the name of another"
        )
    checks = signatures_of(message)
    for check in checks:
        if not check.signature:
            raise RejectedMessage("unsigned", f"a signature of {check.signer} is missing")
        if not validators.contains(check.signer):
            raise RejectedMessage(
                "not-consenter", f"{check.signer} is not a consenter of {channel_id}"
            )
        if not identity_of(check.signer).verify(check.signature, check.payload):
            raise RejectedMessage("bad-signature", f"a signature of {check.signer} does not verify")
    if isinstance(message, Decision):
        problem = certificate_problem(
            message.certificate,
            validators,
            channel=channel_id,
            height=message.height,
            value_id=message.value.value_id,
        )
        if problem is not None:
            raise RejectedMessage("bad-certificate", problem)
    if isinstance(message, Proposal | Decision):
        problem = block_problem(message.value, message.height)
        if problem is not None:
            raise RejectedMessage("bad-block", problem)
    return len(checks)


def block_problem(value: Value, height: int) -> str | None:
    """Why `value` is not a block numbered `height` whose header is `value_id` and whose
    transactions are the ones its header's data hash names; None when it is.

    A certificate signs the header only, so a genuine certificate proves nothing about a body
    sent beside it: this check is what binds them.
    """
    try:
        block = common_pb2.Block.FromString(value.body)
    except DecodeError:
        return "the block does not parse"
    if header_hash(block.header) != value.value_id:
        return "the block's header is not the one voted on"
    if bytes(block.header.data_hash) != data_hash([bytes(d) for d in block.data.data]):
        return f"the body of block {block.header.number} does not match its header's data hash"
    if int(block.header.number) != height:
        return f"block {block.header.number} is carried as height {height}"
    return None
