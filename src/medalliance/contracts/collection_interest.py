"""The collections of an endorsement's interest: which private data it read or wrote.

Fabric's endorser adds to its `ChaincodeInterest` one call per collection a namespace read or
wrote privately, naming that one collection and whether it was only written
(`no_private_reads`), so the gateway and discovery can ask for the collection's endorsement
policy and, where private data was read, endorsers of member organisations only. Read from the
hashed sets of the read-write set alone: no private value is needed. Pure: no I/O.
"""

from __future__ import annotations

from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import proposal_response_pb2


def add_collection_calls(interest: proposal_response_pb2.ChaincodeInterest, rwset: bytes) -> None:
    """Append to `interest` a call per (namespace, collection) of `rwset`'s hashed sets."""
    txrw = rwset_pb2.TxReadWriteSet.FromString(rwset)
    for ns in txrw.ns_rwset:
        for coll in ns.collection_hashed_rwset:
            hashed = kv_rwset_pb2.HashedRWSet.FromString(coll.hashed_rwset)
            if not hashed.hashed_reads and not hashed.hashed_writes:
                continue
            interest.chaincodes.add(
                name=ns.namespace,
                collection_names=[coll.collection_name],
                no_private_reads=not hashed.hashed_reads,
            )
