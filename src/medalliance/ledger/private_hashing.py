"""Fabric's hashing of private data, and where committed hashes live in the state store.

Fabric records a private write on the ledger as SHA-256 of the key's UTF-8 bytes and SHA-256 of
the value; every peer, member of the collection or not, keeps these hashes as versioned state (its
"hashed state"), which is what hashed MVCC and `GetPrivateDataHash` read. Here the hashed state of
collection `c` of contract `ns` is the state namespace `ns$$hc`, keyed by the hex of the key hash
(`$` cannot occur in a contract name, so no contract can write there).

Validation turns each collection's hashed set into plain reads and writes of that namespace
(`parse_hashed`), so that MVCC of private reads ("hashed MVCC") and the hashed state's updates
are the public state's own, committed in the same database transaction as the block's writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from fabric_protos.common import common_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from google.protobuf.message import DecodeError

from medalliance.ledger.block import transactions_filter
from medalliance.ledger.tx import Code, MalformedTransaction, parse_envelope

HASHED_SEPARATOR = "$$h"
_VALID = 0  # TxValidationCode VALID
HASH_SIZE = 32


def key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def value_hash(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def hashed_namespace(namespace: str, collection: str) -> str:
    return f"{namespace}{HASHED_SEPARATOR}{collection}"


@dataclass(frozen=True, slots=True)
class HashedCollection:
    """One collection's hashed read-write set in a transaction, in state-store terms: reads and
    writes of `hashed_namespace(namespace, collection)` keyed by the hex of the key hash."""

    namespace: str
    collection: str
    rwset: kv_rwset_pb2.KVRWSet  # hashed reads and writes as plain state reads and writes
    purged: tuple[str, ...]  # hex key hashes whose history a purge removes
    pvt_rwset_hash: bytes  # SHA-256 of the collection's private KVRWSet; b"": it wrote nothing

    @property
    def state_namespace(self) -> str:
        return hashed_namespace(self.namespace, self.collection)


def parse_hashed(data: bytes) -> tuple[HashedCollection, ...]:
    """The collections' hashed sets of a TxReadWriteSet, namespace by namespace; raises
    `MalformedTransaction(BAD_RWSET)` for a set that does not decode or a malformed hash."""
    txrw = rwset_pb2.TxReadWriteSet()
    out: list[HashedCollection] = []
    try:
        txrw.ParseFromString(data)
        for ns in txrw.ns_rwset:
            seen: set[str] = set()
            for coll in ns.collection_hashed_rwset:
                if coll.collection_name in seen or not coll.collection_name:
                    raise MalformedTransaction(
                        Code.Value("BAD_RWSET"), "a collection appears twice or unnamed"
                    )
                seen.add(coll.collection_name)
                out.append(_hashed(str(ns.namespace), coll))
    except DecodeError as exc:
        raise MalformedTransaction(
            Code.Value("BAD_RWSET"), "the hashed read-write set does not decode"
        ) from exc
    return tuple(out)


def _hashed(namespace: str, coll: rwset_pb2.CollectionHashedReadWriteSet) -> HashedCollection:
    hashed = kv_rwset_pb2.HashedRWSet.FromString(coll.hashed_rwset)
    kv = kv_rwset_pb2.KVRWSet()
    for read in hashed.hashed_reads:
        _check_hash(read.key_hash)
        entry = kv.reads.add(key=bytes(read.key_hash).hex())
        if read.HasField("version"):
            entry.version.CopyFrom(read.version)
    purged = []
    for write in hashed.hashed_writes:
        _check_hash(write.key_hash)
        if not write.is_delete:
            _check_hash(write.value_hash)
        key = bytes(write.key_hash).hex()
        kv.writes.add(key=key, is_delete=write.is_delete, value=bytes(write.value_hash))
        if write.is_purge:
            purged.append(key)
    return HashedCollection(
        namespace, str(coll.collection_name), kv, tuple(purged), bytes(coll.pvt_rwset_hash)
    )


def _check_hash(value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise MalformedTransaction(Code.Value("BAD_RWSET"), "a private data hash is not SHA-256")


def valid_hashed_sets(
    block: common_pb2.Block,
) -> Iterator[tuple[int, str, tuple[HashedCollection, ...]]]:
    """(transaction number, tx id, its collections' hashed sets) of each valid endorser
    transaction of a committed block (its codes in TRANSACTIONS_FILTER); none for the genesis
    block or a config transaction."""
    if block.header.number == 0:
        return
    codes = transactions_filter(block)
    for tx_num, data in enumerate(block.data.data):
        if tx_num >= len(codes) or codes[tx_num] != _VALID:
            continue
        try:
            view = parse_envelope(bytes(data))
            hashed = parse_hashed(view.endorser_tx().rwset)
        except MalformedTransaction:
            continue  # a config transaction: no private data
        yield tx_num, view.tx_id, hashed
