"""What `DeliverWithPrivateData` may send: the private data of collections the requester belongs to.

Fabric's peer answers each block with the private write sets it holds for it, keeping, per
transaction and namespace, only the collections whose member policy the requester satisfies;
a requester of another organisation gets the block and nothing private. The block itself
carries only hashes, so it goes to every reader. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fabric_protos.ledger.rwset import rwset_pb2

from medalliance.contracts.collections import Collection

# namespace -> its committed collections
CollectionsOf = Callable[[str], Mapping[str, Collection]]


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
