"""The ordering replica, pure: admission, cutting on ticks, valid(v) from the proposal and the
chain only, effects in the contract's order. A one-consenter channel on a real block store,
real signatures; no clock, no asyncio.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fabric_protos.common import common_pb2
from tests.conftest import NOW
from tests.unit.node.test_bft_channel_supervision import MEMBERS, SIGNER, genesis

from medalliance.consensus.effects import AppendBlock, Forward, PersistHardState
from medalliance.consensus.inputs import Start
from medalliance.consensus.machine import ConsensusMachine
from medalliance.consensus.messages import Value
from medalliance.consensus.pending import CutRules
from medalliance.consensus.ready import Decided, Send
from medalliance.consensus.replica import Replica, Submitted, Tick
from medalliance.consensus.validators import ValidatorSet
from medalliance.errors import BadSignature, DuplicateTransaction, InvalidArgument, Overloaded
from medalliance.ledger.block import header_hash, new_block
from medalliance.ledger.block_store import BlockStore
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.tx import ENDORSER_TRANSACTION, sign_envelope
from medalliance.node.block_rules import TX_IDS_KEPT, BlockRules, ConsenterSigner

CLIENT = MEMBERS.signer("client1")
TIMEOUT_TICKS = 5


def transaction(tx_id: str, *, signer: object = CLIENT, nonce: bytes | None = None) -> bytes:
    channel_header = common_pb2.ChannelHeader(
        type=ENDORSER_TRANSACTION, channel_id="ch", tx_id=tx_id
    )
    channel_header.timestamp.FromDatetime(NOW)  # valid(v) judges certificates at this time
    signature_header = common_pb2.SignatureHeader(
        creator=CLIENT.serialized_identity, nonce=tx_id.encode() if nonce is None else nonce
    )
    payload = common_pb2.Payload(
        header=common_pb2.Header(
            channel_header=channel_header.SerializeToString(),
            signature_header=signature_header.SerializeToString(),
        )
    ).SerializeToString()
    return sign_envelope(payload, signer)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[BlockStore]:
    store = BlockStore.open(tmp_path / "blocks")
    store.append(genesis())
    yield store
    store.close()


def replica(
    store: BlockStore, max_count: int = 3, pending_max: int = 8
) -> tuple[Replica, BlockRules]:
    config = ChannelConfig.from_block(genesis())
    name = config.consenter_set[0].name
    rules = BlockRules(config=lambda: config, store=store, signer=SIGNER, now=lambda: NOW)
    machine = ConsensusMachine("ch", ConsenterSigner(name, SIGNER))
    replica = Replica(machine, rules, CutRules(max_count, 1 << 20, TIMEOUT_TICKS), pending_max)
    replica.step(Start(store.height, ValidatorSet((name,))))
    return replica, rules


def test_a_batch_waits_for_the_timeout_then_is_decided_with_effects_in_order(
    store: BlockStore,
) -> None:
    node, _ = replica(store)
    tx = transaction("a")
    node.submit(Submitted(tx, NOW))
    effects = node.step(Tick(0))
    assert effects[0] == Forward((tx,))
    assert not any(isinstance(e, AppendBlock) for e in effects)  # one transaction, no timeout
    assert node.step(Tick(TIMEOUT_TICKS - 1)) == []
    effects = node.step(Tick(TIMEOUT_TICKS))
    kinds = [type(e) for e in effects]
    append = kinds.index(AppendBlock)
    assert PersistHardState in kinds[:append]  # hard state on disk before the block
    assert kinds[append + 1 :].count(Decided) == 1
    block = common_pb2.Block.FromString(effects[append].commit.value.body)  # type: ignore[union-attr]
    assert (int(block.header.number), len(block.data.data)) == (1, 1)
    assert len(node.pending) == 0  # ordered: it left the pending transactions
    sends = [i for i, kind in enumerate(kinds) if kind is Send]
    assert sends
    assert min(sends) > kinds.index(PersistHardState)


def test_a_full_batch_is_cut_at_once(store: BlockStore) -> None:
    node, _ = replica(store, max_count=2)
    node.submit(Submitted(transaction("a"), NOW))
    node.step(Tick(0))
    node.submit(Submitted(transaction("b"), NOW, forward=False))
    effects = node.step(Tick(0))
    assert any(isinstance(e, AppendBlock) for e in effects)
    assert not any(isinstance(e, Forward) for e in effects)  # forwarded to us: not passed on


def test_hostile_submissions_are_refused_with_nothing_kept(store: BlockStore) -> None:
    node, _ = replica(store, pending_max=2)
    node.submit(Submitted(transaction("a"), NOW))
    with pytest.raises(DuplicateTransaction):  # replay of a pending one
        node.submit(Submitted(transaction("a"), NOW))
    forged = transaction("f", signer=MEMBERS.signer("mallory"))  # signed by another key
    with pytest.raises(BadSignature):
        node.submit(Submitted(forged, NOW))
    node.submit(Submitted(transaction("b"), NOW))
    with pytest.raises(Overloaded):  # flood
        node.submit(Submitted(transaction("c"), NOW))
    assert len(node.pending) == 2


def test_broadcast_admission_is_the_shared_signed_header_check(store: BlockStore) -> None:
    """Broadcast refuses what the shared check refuses, with the texts its clients know, and
    (as Fabric's orderer) leaves a tx id not derived from nonce and creator to the peers."""
    node, _ = replica(store)
    with pytest.raises(InvalidArgument, match="nonce and creator set"):  # no replay protection
        node.submit(Submitted(transaction("n", nonce=b""), NOW))
    forged = transaction("f", signer=MEMBERS.signer("mallory"))
    with pytest.raises(BadSignature, match="does not verify against its creator"):
        node.submit(Submitted(forged, NOW))
    node.submit(Submitted(transaction("not-sha256-of-nonce-and-creator"), NOW))
    assert len(node.pending) == 1


def test_valid_is_a_function_of_the_proposal_and_the_chain_only(store: BlockStore) -> None:
    """Two replicas, one with the transaction pending and one without, judge alike."""
    holder, rules = replica(store)
    holder.submit(Submitted(transaction("a"), NOW))
    _, stranger = replica(store)

    def value(envelopes: list[bytes], previous: bytes = store.last_header_hash) -> Value:
        block = new_block(1, previous, envelopes)
        return Value(header_hash(block.header), block.SerializeToString())

    good = value([transaction("a")])
    assert rules.valid(1, good)
    assert stranger.valid(1, good)
    for bad in (
        value([transaction("f", signer=MEMBERS.signer("mallory"))]),  # forged signature
        value([transaction("a"), transaction("a")]),  # the same transaction twice
        value([transaction("a")], previous=b"\0" * 32),  # does not extend the chain
        value([]),  # empty
    ):
        assert not rules.valid(1, bad)
        assert not stranger.valid(1, bad)
    assert not rules.valid(2, good)  # the wrong height


def test_a_proposal_replaying_a_committed_transaction_is_not_valid(store: BlockStore) -> None:
    """A Byzantine proposer re-proposes a transaction the chain already holds, alone or hidden
    among new ones: refused, whatever its position in the block."""
    _, rules = replica(store)
    store.append(new_block(1, store.last_header_hash, [transaction("a")]), ["a"])

    def value(envelopes: list[bytes]) -> Value:
        block = new_block(2, store.last_header_hash, envelopes)
        return Value(header_hash(block.header), block.SerializeToString())

    assert rules.valid(2, value([transaction("b")]))
    for replay in (["a"], ["b", "a"], ["a", "c"]):
        assert not rules.valid(2, value([transaction(t) for t in replay]))


def test_the_tx_ids_of_a_judged_value_are_remembered_and_bounded(store: BlockStore) -> None:
    """The decision reads the tx ids valid(v) found; a value never judged valid, or one whose
    body does not hash to its id, is parsed afresh."""
    _, rules = replica(store)

    def value(*tx_ids: str) -> Value:
        block = new_block(1, store.last_header_hash, [transaction(t) for t in tx_ids])
        return Value(header_hash(block.header), block.SerializeToString())

    good = value("a", "b")
    assert rules.valid(1, good)
    assert rules.tx_ids(good) == ("a", "b")
    forged = Value(good.value_id, value("c").body)  # another body under the judged id
    assert not rules.valid(1, forged)
    refused = value("x", "x")  # judged invalid: not remembered, parsed when asked
    assert not rules.valid(1, refused)
    assert rules.tx_ids(refused) == ("x", "x")
    for i in range(TX_IDS_KEPT + 4):
        assert rules.valid(1, value(f"t{i}"))
    assert len(rules._tx_ids) == TX_IDS_KEPT
    assert good.value_id not in rules._tx_ids  # the oldest went
    assert rules.tx_ids(good) == ("a", "b")
