"""The stub's private data calls: Fabric's collection semantics, recorded as hashed and private sets.

A contract reads and writes a collection's private data by key, as Fabric's `GetPrivateData`,
`PutPrivateData`, `DelPrivateData`, `PurgePrivateData`, `GetPrivateDataHash`,
`GetPrivateDataByRange` and `GetPrivateDataByPartialCompositeKey`. What the ledger sees is the
collection's hashed read-write set (SHA-256 of each key and value, `private_hashing`) inside the
namespace's read-write set, plus `pvt_rwset_hash`; the values travel apart as the private
read-write set (`TxPvtReadWriteSet`), which the endorsing peer keeps in its transient store and
disseminates to the collection's member peers, never on the ledger.

Reads record the hashed key's committed version (hashed MVCC at commit). Range reads of private
data are not re-checked at commit, as in Fabric: a contract must not base a write on them alone.
A collection with `memberOnlyRead` refuses reads to clients of other organisations; a peer that
lacks the value whose hash is committed (not a member, or not yet reconciled) refuses the read
rather than answer with stale data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Protocol

from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2

from medalliance.contracts.collections import Collection
from medalliance.contracts.composite_key import partial_key_range
from medalliance.errors import ContractError
from medalliance.ledger.private_hashing import hashed_namespace, key_hash, value_hash
from medalliance.ledger.state import StateReader, Version, VersionedValue


class PrivateReader(Protocol):
    """This peer's committed private values (none on a peer of a non-member organisation)."""

    def get_private(self, namespace: str, collection: str, key: str) -> VersionedValue | None: ...

    def range_private(
        self, namespace: str, collection: str, start_key: str, end_key: str
    ) -> Iterator[tuple[str, VersionedValue]]:
        """Keys in [start_key, end_key) in UTF-8 byte order ("" = unbounded)."""
        ...


class NoPrivateData:
    """The private data of a peer that holds none."""

    def get_private(self, namespace: str, collection: str, key: str) -> VersionedValue | None:
        return None

    def range_private(
        self, namespace: str, collection: str, start_key: str, end_key: str
    ) -> Iterator[tuple[str, VersionedValue]]:
        return iter(())


NO_PRIVATE_DATA = NoPrivateData()


def no_collections(namespace: str) -> Mapping[str, Collection]:
    return {}


# namespace -> its committed collections
Collections = Callable[[str], Mapping[str, Collection]]


class PrivateCalls:
    """Mixed into `Stub`: its private data calls and their hashed and private sets."""

    namespace: str
    _reader: StateReader
    _private: PrivateReader
    _collections: Collections
    _creator_msp: str
    # collection -> hashed key -> (key, committed version of the hash or None)
    _pvt_reads: dict[str, dict[bytes, Version | None]]
    # collection -> key -> (value or None for a delete, purge)
    _pvt_writes: dict[str, dict[str, tuple[bytes | None, bool]]]

    def _check_writable(self) -> None: ...

    def _init_private(
        self, private: PrivateReader, collections: Collections, creator_msp: str
    ) -> None:
        self._private = private
        self._collections = collections
        self._creator_msp = creator_msp
        self._pvt_reads = {}
        self._pvt_writes = {}

    # --- reads -----------------------------------------------------------------------------------

    def get_private_data(self, collection: str, key: str) -> bytes | None:
        self._readable(collection)
        _check_private_key(key)
        hashed = self._hashed(collection, key)
        self._pvt_reads.setdefault(collection, {}).setdefault(
            key_hash(key), hashed.version if hashed else None
        )
        if hashed is None:
            return None
        held = self._private.get_private(self.namespace, collection, key)
        if held is None or held.version != hashed.version:
            raise ContractError(
                f"private data of collection {collection} matching the committed hash version "
                "is not available on this peer",
                500,
            )
        return held.value

    def get_private_data_hash(self, collection: str, key: str) -> bytes | None:
        """SHA-256 of the committed value; any peer answers it, members or not."""
        self._collection(collection)
        _check_private_key(key)
        hashed = self._hashed(collection, key)
        return hashed.value if hashed else None

    def get_private_data_by_range(
        self, collection: str, start_key: str, end_key: str
    ) -> Iterator[tuple[str, bytes]]:
        self._readable(collection)
        for key in (start_key, end_key):
            if key:
                _check_private_key(key)
        return self._private_range(collection, start_key, end_key)

    def get_private_data_by_partial_composite_key(
        self, collection: str, object_type: str, attributes: Sequence[str] = ()
    ) -> Iterator[tuple[str, bytes]]:
        self._readable(collection)
        return self._private_range(collection, *partial_key_range(object_type, attributes))

    def _private_range(
        self, collection: str, start_key: str, end_key: str
    ) -> Iterator[tuple[str, bytes]]:
        for key, held in self._private.range_private(
            self.namespace, collection, start_key, end_key
        ):
            yield key, held.value

    def _hashed(self, collection: str, key: str) -> VersionedValue | None:
        return self._reader.get(hashed_namespace(self.namespace, collection), key_hash(key).hex())

    # --- writes ----------------------------------------------------------------------------------

    def put_private_data(self, collection: str, key: str, value: bytes) -> None:
        self._writable(collection, key)
        if not value:
            raise ContractError("value is empty; use del_private_data to delete a key", 400)
        self._pvt_writes.setdefault(collection, {})[key] = (bytes(value), False)

    def del_private_data(self, collection: str, key: str) -> None:
        self._writable(collection, key)
        self._pvt_writes.setdefault(collection, {})[key] = (None, False)

    def purge_private_data(self, collection: str, key: str) -> None:
        """Delete the key and, on every peer that commits this, all its earlier values."""
        self._writable(collection, key)
        self._pvt_writes.setdefault(collection, {})[key] = (None, True)

    def _writable(self, collection: str, key: str) -> None:
        self._check_writable()
        self._collection(collection)
        _check_private_key(key)

    # --- access ----------------------------------------------------------------------------------

    def _collection(self, collection: str) -> Collection:
        if not collection:
            raise ContractError("collection must not be an empty string", 400)
        found = self._collections(self.namespace).get(collection)
        if found is None:
            raise ContractError(
                f"collection {collection} is not defined for contract {self.namespace}", 404
            )
        return found

    def _readable(self, collection: str) -> None:
        found = self._collection(collection)
        if found.member_only_read and not found.is_member(self._creator_msp):
            raise ContractError(
                f"tx creator does not have read access permission on private data in contract "
                f"{self.namespace} collection {collection}",
                403,
            )

    # --- results ---------------------------------------------------------------------------------

    def collection_hashed_rwsets(self) -> list[rwset_pb2.CollectionHashedReadWriteSet]:
        """The namespace's hashed sets, by collection name (Fabric's order)."""
        out = []
        for collection in sorted(set(self._pvt_reads) | set(self._pvt_writes)):
            hashed = kv_rwset_pb2.HashedRWSet()
            reads = self._pvt_reads.get(collection, {})
            for hashed_key in sorted(reads):
                read = hashed.hashed_reads.add(key_hash=hashed_key)
                version = reads[hashed_key]
                if version is not None:
                    read.version.block_num = version.block_num
                    read.version.tx_num = version.tx_num
            writes = self._pvt_writes.get(collection, {})
            for key in sorted(writes, key=key_hash):
                value, purge = writes[key]
                hashed.hashed_writes.add(
                    key_hash=key_hash(key),
                    is_delete=value is None,
                    value_hash=value_hash(value) if value is not None else b"",
                    is_purge=purge,
                )
            entry = rwset_pb2.CollectionHashedReadWriteSet(
                collection_name=collection, hashed_rwset=hashed.SerializeToString()
            )
            private = self._collection_pvt_rwset(collection)
            if private is not None:
                entry.pvt_rwset_hash = value_hash(private.rwset)
            out.append(entry)
        return out

    def ns_pvt_rwset(self) -> rwset_pb2.NsPvtReadWriteSet | None:
        """The namespace's private writes, or None when it wrote no private data."""
        found = [
            private
            for collection in sorted(self._pvt_writes)
            if (private := self._collection_pvt_rwset(collection)) is not None
        ]
        if not found:
            return None
        return rwset_pb2.NsPvtReadWriteSet(namespace=self.namespace, collection_pvt_rwset=found)

    def _collection_pvt_rwset(self, collection: str) -> rwset_pb2.CollectionPvtReadWriteSet | None:
        writes = self._pvt_writes.get(collection)
        if not writes:
            return None
        kv = kv_rwset_pb2.KVRWSet()
        for key in sorted(writes):
            value, _ = writes[key]
            kv.writes.add(key=key, is_delete=value is None, value=value or b"")
        return rwset_pb2.CollectionPvtReadWriteSet(
            collection_name=collection, rwset=kv.SerializeToString()
        )


def _check_private_key(key: str) -> None:
    if not key:
        raise ContractError("a key must not be empty", 400)
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise ContractError("a key must be valid UTF-8", 400) from None
