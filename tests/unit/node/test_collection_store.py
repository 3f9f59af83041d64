"""The collection store keeps only private sets that match the committed hashes."""

from __future__ import annotations

from pathlib import Path

from fabric_protos.common import common_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from tests.unit.contracts.fakes import DictState

from medalliance.contracts.collections import Collection
from medalliance.contracts.stub import Stub
from medalliance.ledger.private_hashing import HashedCollection, parse_hashed
from medalliance.node.collection_store import (
    CollectionStore,
    Missing,
    collection_set,
    matching_collection_set,
)

SHARED = Collection(
    name="shared", members=frozenset({"AMSP"}), member_policy="", required_peer_count=0,
    max_peer_count=1, block_to_live=0, member_only_read=True, member_only_write=True,
    endorsement_policy=None,
)  # fmt: skip


def simulated(value: bytes) -> tuple[HashedCollection, bytes]:
    """A transaction's hashed set and its private collection set, as an endorser builds them."""
    stub = Stub(
        DictState(), "cc", tx_id="t", channel_id="ch", timestamp_ms=1, transient={},
        collections=lambda ns: {"shared": SHARED}, creator_msp="AMSP",
    )  # fmt: skip
    stub.begin_call("f", read_only=False)
    stub.put_private_data("shared", "k", value)
    (hashed,) = parse_hashed(stub.rwset().SerializeToString())
    private = stub.ns_pvt_rwset()
    assert private is not None
    txp = rwset_pb2.TxPvtReadWriteSet(ns_pvt_rwset=[private]).SerializeToString()
    found = collection_set(txp, "cc", "shared")
    assert found is not None
    return hashed, found


def test_only_the_committed_set_matches() -> None:
    hashed, real = simulated(b"real value")
    _, other = simulated(b"other value")
    assert matching_collection_set(real, hashed) is not None
    assert matching_collection_set(other, hashed) is None  # another value: another hash
    assert matching_collection_set(real + b"\x00", hashed) is None
    assert matching_collection_set(b"\xff", hashed) is None


def test_reconciliation_never_brings_back_an_older_value(tmp_path: Path) -> None:
    store = CollectionStore.open(tmp_path / "c.db", "AMSP")
    old_hashed, old = simulated(b"old value")
    new_hashed, new = simulated(b"new value")
    assert store.reconcile(Missing(5, 0, "cc", "shared", "t5"), new, new_hashed, SHARED)
    assert not store.reconcile(Missing(3, 0, "cc", "shared", "t3"), new, old_hashed, SHARED)
    assert store.reconcile(Missing(3, 0, "cc", "shared", "t3"), old, old_hashed, SHARED)
    held = store.get_private("cc", "shared", "k")
    assert held is not None
    assert (held.value, held.version.block_num) == (b"new value", 5)
    assert store.committed_set("t3", "cc", "shared") == old  # served to other members
    store.close()


def test_transient_sets_are_bounded_per_transaction(tmp_path: Path) -> None:
    store = CollectionStore.open(tmp_path / "c.db", "AMSP")
    assert [store.put_transient("t", bytes([i])) for i in range(5)] == [True] * 4 + [False]
    assert store.put_transient("t", b"\x00")  # a replay of a held set
    assert len(store.transient("t")) == 4
    store.close()


def test_a_block_drops_the_transient_sets_of_its_transactions_only(tmp_path: Path) -> None:
    """Whether a committed transaction wrote private data or not, its transient sets go at
    commit (a flood pushed under its id included); another transaction's stay."""
    store = CollectionStore.open(tmp_path / "c.db", "AMSP")
    hashed, real = simulated(b"value")
    txp = rwset_pb2.TxPvtReadWriteSet()
    txp.ns_pvt_rwset.add(namespace="cc").collection_pvt_rwset.add(
        collection_name="shared", rwset=real
    )
    sets = (("t", txp.SerializeToString()), ("public", b"pushed"), ("later", b"pending"))
    for tx_id, data in sets:
        assert store.put_transient(tx_id, data)
    block = common_pb2.Block()
    block.header.number = 1
    store.apply_block(
        block, lambda ns: {"shared": SHARED}, [(0, "t", (hashed,)), (1, "public", ())]
    )
    assert (store.transient("t"), store.transient("public")) == ([], [])
    assert store.transient("later") == [b"pending"]
    held = store.get_private("cc", "shared", "k")
    assert held is not None
    assert held.value == b"value"
    assert store.savepoint == 1
    # a commit lost to a power failure is a savepoint behind: the store applies it again alike
    store.close()
    reopened = CollectionStore.open(tmp_path / "c.db", "AMSP")
    assert reopened.savepoint == 1
    assert reopened._db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    reopened.close()
