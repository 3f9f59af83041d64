"""What `DeliverWithPrivateData` may send: the private data of collections the requester belongs to.

Fabric's peer answers each block with the private write sets it holds for it, keeping, per
transaction and namespace, only the collections whose member policy the requester satisfies;
a requester of another organisation gets the block and nothing private. The block itself
carries only hashes, so it goes to every reader. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fabric_protos.common import common_pb2
from fabric_protos.ledger.rwset import rwset_pb2

from medalliance.contracts.collections import Collection
from medalliance.ledger.private_hashing import valid_hashed_sets

# namespace -> its committed collections
CollectionsOf = Callable[[str], Mapping[str, Collection]]
# (tx id, namespace, collection) -> the collection's committed private set (a serialized
# KVRWSet) this peer holds, or None
CommittedSet = Callable[[str, str, str], bytes | None]


def held_private_data(
    block: common_pb2.Block, committed_set: CommittedSet
) -> dict[int, rwset_pb2.TxPvtReadWriteSet]:
    """The private sets this peer holds for the valid transactions of `block`, by transaction
    number (what it may send before `readable_private_data` picks the requester's)."""
    held: dict[int, rwset_pb2.TxPvtReadWriteSet] = {}
    for tx_num, tx_id, hashed in valid_hashed_sets(block):
        pvt = rwset_pb2.TxPvtReadWriteSet(data_model=rwset_pb2.TxReadWriteSet.DataModel.Value("KV"))
        namespaces: dict[str, rwset_pb2.NsPvtReadWriteSet] = {}
        for h in hashed:
            found = committed_set(tx_id, h.namespace, h.collection)
            if found is None:
                continue
            ns = namespaces.get(h.namespace)
            if ns is None:
                ns = namespaces[h.namespace] = pvt.ns_pvt_rwset.add(namespace=h.namespace)
            ns.collection_pvt_rwset.add(collection_name=h.collection, rwset=found)
        if pvt.ns_pvt_rwset:
            held[tx_num] = pvt
    return held


def readable_private_data(
    held: Mapping[int, rwset_pb2.TxPvtReadWriteSet],
    requester_msp: str,
    collections: CollectionsOf,
) -> dict[int, rwset_pb2.TxPvtReadWriteSet]:
    """`held` (transaction number in the block -> its private write set) reduced to what an
    identity of `requester_msp` may read; transactions left with nothing are dropped. A
    collection no longer defined is kept from no one."""
    readable: dict[int, rwset_pb2.TxPvtReadWriteSet] = {}
    for tx_num, pvt in held.items():
        kept = rwset_pb2.TxPvtReadWriteSet(data_model=pvt.data_model)
        for ns in pvt.ns_pvt_rwset:
            defined = collections(ns.namespace)
            allowed = [
                coll
                for coll in ns.collection_pvt_rwset
                if (found := defined.get(coll.collection_name)) and found.is_member(requester_msp)
            ]
            if allowed:
                kept.ns_pvt_rwset.add(namespace=ns.namespace, collection_pvt_rwset=allowed)
        if kept.ns_pvt_rwset:
            readable[tx_num] = kept
    return readable
