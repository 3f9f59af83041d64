"""The ordering nodes' admission path (issue 15): what each transaction costs a node, and that the
memos that cut the cost (parse once per process, ECDSA once per signature, the Writers verdict
once per certificate) never let through what a fresh check would refuse. Real signatures, a real
block store, one consenter; no clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from fabric_protos.common import common_pb2
from tests.conftest import NOW
from tests.unit.consensus.test_replica import TIMEOUT_TICKS, replica
from tests.unit.node.test_bft_channel_supervision import MEMBERS, genesis

from medalliance.consensus.effects import AppendBlock
from medalliance.consensus.messages import Value
from medalliance.consensus.replica import Submitted, Tick
from medalliance.errors import BadSignature, InvalidArgument, InvalidIdentity, PermissionDenied
from medalliance.identity.policy import SignedData
from medalliance.identity.signing import Signer
from medalliance.ledger.block import header_hash, new_block
from medalliance.ledger.block_store import BlockStore
from medalliance.ledger.channel_config import VERDICTS_KEPT, ChannelConfig
from medalliance.ledger.tx import ENDORSER_TRANSACTION, compute_tx_id
from medalliance.node import ordering
from medalliance.node.block_rules import BlockRules
from medalliance.node.ordering import WRITERS_POLICY

CLIENT = MEMBERS.signer("admission-client")
PEER = MEMBERS.signer("admission-peer", ou="peer")  # a member, but not a writer


def transaction(
    nonce: str,
    *,
    creator: Signer = CLIENT,
    signer: Signer | None = None,
    at: dt.datetime = NOW,
) -> bytes:
    """An endorser transaction of `creator`, signed by `signer` (the creator unless forged),
    timestamped `at` (a block's time is its newest transaction's)."""
    identity = creator.serialized_identity
    channel_header = common_pb2.ChannelHeader(
        type=ENDORSER_TRANSACTION, channel_id="ch", tx_id=compute_tx_id(nonce.encode(), identity)
    )
    channel_header.timestamp.FromDatetime(at)
    signature_header = common_pb2.SignatureHeader(creator=identity, nonce=nonce.encode())
    payload = common_pb2.Payload(
        header=common_pb2.Header(
            channel_header=channel_header.SerializeToString(),
            signature_header=signature_header.SerializeToString(),
        )
    ).SerializeToString()
    signature = (signer or creator).sign(payload)
    return common_pb2.Envelope(payload=payload, signature=signature).SerializeToString()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[BlockStore]:
    with closing(BlockStore.open(tmp_path / "blocks")) as chain:
        chain.append(genesis())
        yield chain


def proposal(store: BlockStore, envelopes: list[bytes]) -> Value:
    block = new_block(store.height, store.last_header_hash, envelopes)
    return Value(header_hash(block.header), block.SerializeToString())


def test_a_transaction_costs_each_node_one_ecdsa_verification(store: BlockStore) -> None:
    """Admitted, then judged in the proposal: two checks, one verification; the same when the
    proposal comes first and the forward after it."""
    node, rules = replica(store, max_count=8)
    admitted = [transaction(f"a{i}") for i in range(4)]
    for envelope in admitted:
        node.submit(Submitted(envelope, NOW, forward=False))
    assert (rules.checked, rules.verified) == (4, 4)
    assert rules.valid(store.height, proposal(store, admitted))
    assert (rules.checked, rules.verified) == (8, 4)
    early = [transaction(f"b{i}") for i in range(3)]  # the proposal overtook the forward
    assert rules.valid(store.height, proposal(store, early))
    for envelope in early:
        node.submit(Submitted(envelope, NOW, forward=False))
    assert (rules.checked, rules.verified) == (14, 7)


def test_a_forwarded_transaction_with_a_forged_signature_is_refused(store: BlockStore) -> None:
    """Another consenter's word counts for nothing: the forward is checked here, and a forgery of
    an admitted transaction (its payload, another key's signature) is other bytes: judged afresh
    in a proposal, refused."""
    node, rules = replica(store)
    genuine = transaction("f")
    forged = transaction("f", signer=MEMBERS.signer("mallory"))
    with pytest.raises(BadSignature):
        node.submit(Submitted(forged, NOW, forward=False))
    node.submit(Submitted(genuine, NOW, forward=False))
    assert len(node.pending) == 1
    assert not rules.valid(store.height, proposal(store, [forged]))
    assert rules.valid(store.height, proposal(store, [genuine]))


def test_a_proposal_with_transactions_this_node_never_saw_is_judged_in_full(
    store: BlockStore,
) -> None:
    _, rules = replica(store)
    unseen = transaction("u")
    assert rules.valid(store.height, proposal(store, [unseen]))
    assert rules.verified == 1  # verified here, not taken on the proposer's word
    refused = (
        transaction("p", creator=PEER),  # a member that may not write
        transaction("m", signer=MEMBERS.signer("mallory")),  # forged
    )
    for envelope in refused:
        assert not rules.valid(store.height, proposal(store, [unseen, envelope]))


def test_a_creator_whose_certificate_expired_before_the_block_time_is_refused(
    store: BlockStore,
) -> None:
    """Admission judged the certificate at arrival; valid(v) judges it again at the block's
    time, though its signature and its Writers verdict are remembered."""
    short = MEMBERS.signer("short-lived", valid_days=1)
    node, rules = replica(store)
    envelope = transaction("e", creator=short)
    node.submit(Submitted(envelope, NOW, forward=False))
    assert rules.valid(store.height, proposal(store, [envelope]))
    later = transaction("late", at=NOW + dt.timedelta(days=2))  # makes the block's time
    assert not rules.valid(store.height, proposal(store, [envelope, later]))
    fresh = transaction("e2", creator=short, at=NOW + dt.timedelta(days=2))
    with pytest.raises(InvalidIdentity):  # and admission, at that time, too
        node.submit(Submitted(fresh, NOW + dt.timedelta(days=2), forward=False))


def stamped(nonce: str, seconds: int) -> bytes:
    """A writer's genuine transaction whose header names any second it likes (an int64)."""
    envelope = common_pb2.Envelope.FromString(transaction(nonce))
    payload = common_pb2.Payload.FromString(envelope.payload)
    header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    header.timestamp.seconds = seconds
    payload.header.channel_header = header.SerializeToString()
    signed = payload.SerializeToString()
    return common_pb2.Envelope(payload=signed, signature=CLIENT.sign(signed)).SerializeToString()


MINUTE = 60
DAY = 86400
NOW_S = int(NOW.timestamp())


@pytest.mark.parametrize(
    "seconds",
    [NOW_S + 16 * MINUTE, NOW_S + 10**11, 2**62],
    ids=["16 minutes ahead", "year 5138", "beyond any date"],
)
def test_a_transaction_stamped_far_ahead_is_refused_and_holds_up_no_block(
    store: BlockStore, seconds: int
) -> None:
    """Hostile writer: valid(v) judges creators at a block's newest timestamp, so a transaction
    stamped far ahead, once admitted, would make every block that holds it invalid and wait in
    every node's pool forever. Admission refuses it, with a message that names the clock. A
    Byzantine proposer may still propose one: valid(v) answers (never raises) — invalid once
    the stamp is past the creators' certificates or any date."""
    node, rules = replica(store)
    hostile = stamped("far", seconds)
    with pytest.raises(InvalidArgument, match="more than 15 minutes ahead of this ordering node"):
        node.submit(Submitted(hostile, NOW, forward=False))
    assert len(node.pending) == 0
    honest = transaction("near", at=NOW + dt.timedelta(minutes=14))
    node.submit(Submitted(honest, NOW, forward=False))
    holding = rules.valid(store.height, proposal(store, [honest, hostile]))
    assert holding is (seconds <= NOW_S + 16 * MINUTE)
    assert rules.valid(store.height, proposal(store, [honest]))


@pytest.mark.parametrize(
    ("seconds", "ordered"),
    [(NOW_S + DAY - 16 * MINUTE, True), (NOW_S - DAY, False), (-(2**62), False)],
    ids=["16 minutes behind", "before its certificate", "before any date"],
)
def test_an_old_stamp_is_ordered_when_a_block_may_hold_it_and_else_leaves(
    store: BlockStore, seconds: int, ordered: bool
) -> None:
    """As Fabric, a transaction may be submitted long after it was endorsed. Alone in a batch,
    its stamp is the block's time: ordered if its creator was valid then, else left out and
    dropped from the pool — never an error, never a proposal the others refuse."""
    node, rules = replica(store)
    old = stamped("old", seconds)
    node.submit(Submitted(old, NOW + dt.timedelta(seconds=DAY), forward=False))
    effects = node.step(Tick(TIMEOUT_TICKS))
    appended = [e for e in effects if isinstance(e, AppendBlock)]
    assert len(node.pending) == 0
    if ordered:
        (append,) = appended
        assert list(common_pb2.Block.FromString(append.commit.value.body).data.data) == [old]
        assert rules.valid(store.height, append.commit.value)
    else:
        assert appended == []


def test_the_writers_verdict_is_remembered_per_certificate(store: BlockStore) -> None:
    """A writer's remembered verdict does not carry over to another certificate of the same
    organisation; `satisfied_by` agrees with `evaluate_policy`; the memo is bounded."""
    node, _ = replica(store)
    node.submit(Submitted(transaction("w"), NOW, forward=False))
    with pytest.raises(PermissionDenied):
        node.submit(Submitted(transaction("p", creator=PEER), NOW, forward=False))
    config = ChannelConfig.from_block(genesis())
    msps = config.msps
    client = msps.deserialize(CLIENT.serialized_identity, at=NOW)
    peer = msps.deserialize(PEER.serialized_identity, at=NOW)
    admin = msps.deserialize(
        MEMBERS.signer("admission-admin", ou="admin").serialized_identity, at=NOW
    )
    org_admins = "/Channel/Application/Org1MSP/Admins"
    for path, who, expected in (
        (WRITERS_POLICY, (client,), True),
        (WRITERS_POLICY, (peer,), False),
        (org_admins, (client,), False),
        (org_admins, (admin,), True),
        (WRITERS_POLICY, (), False),
    ):
        for _ in range(2):  # computed, then remembered
            assert config.satisfied_by(path, who) is expected
    # evaluate_policy shares the memory, after checking signatures and validity each time
    good = SignedData(b"m", CLIENT.serialized_identity, CLIENT.sign(b"m"))
    assert config.evaluate_policy(WRITERS_POLICY, [good], at=NOW)
    forged = SignedData(b"m", CLIENT.serialized_identity, CLIENT.sign(b"other"))
    assert not config.evaluate_policy(WRITERS_POLICY, [forged], at=NOW)
    assert not config.evaluate_policy(WRITERS_POLICY, [good], at=NOW + dt.timedelta(days=400))
    flood = [MEMBERS.signer(f"flood{i}") for i in range(3)]
    for signer in flood:
        config.satisfied_by(WRITERS_POLICY, (msps.deserialize(signer.serialized_identity, at=NOW),))
    assert len(config._verdicts) <= VERDICTS_KEPT


def test_the_parse_memo_is_bounded_and_keyed_by_exact_bytes(
    store: BlockStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ordering, "PARSED_MAX", 4)
    monkeypatch.setattr(ordering, "_parsed", {})
    _, rules = replica(store)
    envelopes = [transaction(f"x{i}") for i in range(6)]
    for envelope in envelopes:
        rules.admit(envelope, NOW)
    assert list(ordering._parsed) == envelopes[4:]  # full at 4: started afresh
    assert rules.valid(store.height, proposal(store, envelopes))  # parsed again when evicted
    with pytest.raises(ordering.InvalidArgument):  # a malformed envelope is refused, not kept
        rules.admit(b"\x0a\xff", NOW)
    assert b"\x0a\xff" not in ordering._parsed


def test_rules_of_another_channel_config_object_judge_alike(store: BlockStore) -> None:
    """The verdict memo lives with one configuration object: a fresh reading of the same block
    (a restart) judges the same transactions alike."""
    envelope = transaction("r")
    verdicts = []
    for _ in range(2):
        config = ChannelConfig.from_block(genesis())
        rules = BlockRules(config=lambda c=config: c, store=store, signer=CLIENT, now=lambda: NOW)
        verdicts.append(rules.valid(store.height, proposal(store, [envelope])))
    assert verdicts == [True, True]


def test_a_pending_transaction_that_can_no_longer_be_ordered_leaves_and_holds_up_nothing(
    store: BlockStore,
) -> None:
    """Admitted while its creator's certificate was valid, then a newer transaction makes the
    block's time later than its expiry: kept, every proposal holding it would be invalid and the
    channel would order nothing more (the same holds for a creator revoked by a config update
    while its transactions wait). The proposer leaves it out, and it leaves the pending pool."""
    short = MEMBERS.signer("expiring", valid_days=1)
    node, rules = replica(store, max_count=8)
    expiring = transaction("x", creator=short)
    node.submit(Submitted(expiring, NOW, forward=False))
    later = NOW + dt.timedelta(days=2)
    fresh = transaction("y", at=later)
    node.submit(Submitted(fresh, later, forward=False))
    effects = node.step(Tick(TIMEOUT_TICKS))
    (append,) = [e for e in effects if isinstance(e, AppendBlock)]
    block = common_pb2.Block.FromString(append.commit.value.body)
    assert list(block.data.data) == [fresh]
    assert rules.valid(store.height, append.commit.value)  # what the other consenters judge
    assert len(node.pending) == 0
