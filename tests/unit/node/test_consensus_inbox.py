"""What an ordering node refuses before a consensus message reaches its core (issue 11, 7–8)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from tests.conftest import NOW, make_org

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
from medalliance.consensus.validators import ValidatorSet
from medalliance.identity.msp import Identity, MspManager
from medalliance.ledger.block import header_hash, new_block
from medalliance.node.consensus_inbox import (
    RefusalLog,
    RejectedMessage,
    block_problem,
    check_message,
)

ORG = make_org("OrdMSP")
MEMBER = make_org("Org1MSP")
MSPS = MspManager([ORG.msp, MEMBER.msp])
NAMES = tuple(f"orderer{i}.example.com" for i in range(4))
SIGNERS = {name: ORG.signer(name.split(".")[0], ou="orderer") for name in NAMES}
OUTSIDER = MEMBER.signer("peer0", ou="peer")
VALIDATORS = ValidatorSet(NAMES)
CHANNEL = "mychannel"


def identity_of(name: str) -> Identity:
    signer = SIGNERS.get(name, OUTSIDER)
    return MSPS.deserialize(signer.serialized_identity, at=NOW)


def block_value(height: int, envelopes: list[bytes]) -> Value:
    block = new_block(height, b"\x01" * 32, envelopes)
    return Value(header_hash(block.header), block.SerializeToString())


VALUE = block_value(5, [b"tx-a", b"tx-b"])


def sign_vote(vote: Vote) -> Vote:
    return replace(vote, signature=SIGNERS[vote.voter].sign(vote.signed_bytes()))


def decision(value: Value = VALUE, voters: tuple[str, ...] = NAMES[:3]) -> Decision:
    precommits = tuple(
        sign_vote(Vote(Kind.PRECOMMIT, CHANNEL, 5, 0, VALUE.value_id, v)) for v in voters
    )
    return Decision(CHANNEL, 5, value, Certificate(precommits), NAMES[3])


def status(sender: str = NAMES[1], *, signer: object = None, round: int = 1000) -> Status:
    unsigned = Status(CHANNEL, 5, round, sender)
    key = SIGNERS.get(sender) if signer is None else signer
    return replace(unsigned, signature=key.sign(unsigned.signed_bytes()))  # type: ignore[union-attr]


def check(message: Message, caller: str | None = None) -> int:
    return check_message(
        message,
        channel_id=CHANNEL,
        validators=VALIDATORS,
        caller=caller,
        identity_of=identity_of,
    )


def swapped_body() -> Value:
    """A genuine header (so a genuine certificate) with other transactions beside it."""
    block = new_block(5, b"\x01" * 32, [b"tx-a", b"tx-b"])
    del block.data.data[:]
    block.data.data.extend([b"tx-evil"])
    return Value(VALUE.value_id, block.SerializeToString())


def test_a_signed_status_of_a_consenter_is_accepted() -> None:
    assert check(status(), caller=NAMES[1]) == 1


def test_a_genuine_decision_is_accepted_with_every_precommit_verified() -> None:
    assert check(decision(), caller=NAMES[3]) == 3


@pytest.mark.parametrize(
    ("message", "caller", "reason"),
    [
        pytest.param(
            Status(CHANNEL, 5, 1000, NAMES[1]), None, "unsigned", id="an unsigned STATUS"
        ),
        pytest.param(
            status(signer=OUTSIDER), None, "bad-signature",
            id="a STATUS in a consenter's name signed by a member's key",
        ),
        pytest.param(
            status("peer0.org1.example.com", signer=OUTSIDER), None, "not-consenter",
            id="a STATUS of a member that is not a consenter",
        ),
        pytest.param(
            status(NAMES[1]), NAMES[2], "wrong-sender",
            id="a STATUS relayed by another consenter than its sender",
        ),
        pytest.param(
            replace(status(), channel="other"), None, "wrong-channel",
            id="a message for another channel",
        ),
        pytest.param(
            decision(swapped_body()), None, "bad-block",
            id="a DECISION with a genuine certificate and a swapped body",
        ),
        pytest.param(
            decision(block_value(6, [b"tx-a"])), None, "bad-certificate",
            id="a DECISION whose certificate is for another block",
        ),
        pytest.param(
            decision(voters=NAMES[:2]), None, "bad-certificate",
            id="a DECISION with fewer precommits than a quorum",
        ),
        pytest.param(
            replace(  # the signature of round 0 moved to round 3
                sign_vote(Vote(Kind.PREVOTE, CHANNEL, 5, 0, None, NAMES[0])), round=3
            ),
            None, "bad-signature", id="a vote with a broken signature",
        ),
        pytest.param(
            replace(
                Proposal(CHANNEL, 5, 0, swapped_body(), -1, (), NAMES[1]),
                signature=SIGNERS[NAMES[1]].sign(
                    Proposal(CHANNEL, 5, 0, swapped_body(), -1, (), NAMES[1]).signed_bytes()
                ),
            ),
            None, "bad-block", id="a PROPOSAL whose body is not its header's",
        ),
    ],
)  # fmt: skip
def test_a_forged_message_is_refused_with_its_reason(
    message: Message, caller: str | None, reason: str
) -> None:
    with pytest.raises(RejectedMessage) as refused:
        check(message, caller)
    assert refused.value.reason == reason
    assert f"({reason})" in str(refused.value)


@pytest.mark.parametrize(
    ("value", "height", "problem"),
    [
        pytest.param(VALUE, 5, None, id="a block that matches its header"),
        pytest.param(swapped_body(), 5, "does not match its header's data hash", id="a swap"),
        pytest.param(VALUE, 6, "carried as height 6", id="a block carried at another height"),
        pytest.param(Value(b"\x00" * 32, VALUE.body), 5, "not the one voted on", id="another id"),
        pytest.param(Value(VALUE.value_id, b"\xff\xff"), 5, "does not parse", id="garbage"),
    ],
)
def test_a_block_body_must_match_its_header(value: Value, height: int, problem: str | None) -> None:
    found = block_problem(value, height)
    assert found == problem if problem is None else problem in (found or "")


def test_a_flood_of_refusals_is_logged_logarithmically_per_key() -> None:
    refusals = RefusalLog()
    logged = [n for n in (refusals.note("unsigned", "orderer3") for _ in range(100)) if n]
    assert logged == [1, 2, 4, 8, 16, 32, 64]
    assert refusals.note("bad-signature", "orderer3") == 1  # another key starts afresh
