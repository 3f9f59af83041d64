"""Multi-version concurrency control at commit (protocol doc §6). Pure over a `StateReader`.

In block order, a valid-so-far transaction stays valid when every key it read still has the
version it read (absent = absent), no earlier valid transaction of the same block wrote such a
key, and re-running each range query over committed state merged with those earlier writes
returns exactly the keys and versions recorded. Blind writes never conflict. A metadata write
(a key's endorsement policy) gives the key a new version, so it counts as a write of the key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, cast

from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import transaction_pb2

from medalliance.ledger.state import MetadataWrite, StateReader, Version, VersionedValue, Write

VALID: int = transaction_pb2.TxValidationCode.Value("VALID")
MVCC_READ_CONFLICT: int = transaction_pb2.TxValidationCode.Value("MVCC_READ_CONFLICT")
PHANTOM_READ_CONFLICT: int = transaction_pb2.TxValidationCode.Value("PHANTOM_READ_CONFLICT")
UNCHANGED = -1  # for a tx already invalid: keep its earlier code


@dataclass(frozen=True, slots=True)
class MvccTx:
    tx_num: int
    ns_rwsets: tuple[tuple[str, kv_rwset_pb2.KVRWSet], ...]
    valid_so_far: bool


class BatchReader(StateReader, Protocol):
    """A reader that can fetch many keys in one round trip (SqliteState does)."""

    def get_many(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], VersionedValue | None]: ...


def check_block(reader: StateReader, txs: Sequence[MvccTx]) -> list[int]:
    """One code per tx, in order: VALID, MVCC_READ_CONFLICT, PHANTOM_READ_CONFLICT, or UNCHANGED.

    UNCHANGED (-1) is returned for a tx with `valid_so_far=False`: it keeps the code an earlier
    check gave it, and its writes do not count against later txs. A range recorded as a Merkle
    summary (`reads_merkle_hashes`) cannot be re-checked here and is a PHANTOM_READ_CONFLICT.
    """
    # Each tx's reads, read out of its rwsets once: for the batch look-up and for the check.
    reads = [_reads(tx) if tx.valid_so_far else [] for tx in txs]
    committed = _prefetch(reader, txs, reads)
    written: set[tuple[str, str]] = set()  # keys written (or deleted) by earlier valid txs
    codes = []
    for tx, tx_reads in zip(txs, reads, strict=True):
        if not tx.valid_so_far:
            codes.append(UNCHANGED)
            continue
        code = _check_tx(reader, committed, tx, tx_reads, written)
        codes.append(code)
        if code == VALID:
            for ns, rw in tx.ns_rwsets:
                written.update([(ns, w.key) for w in rw.writes])
                written.update([(ns, m.key) for m in rw.metadata_writes])
    return codes


# Per namespace of a tx, in order: (key, the version read; None when it was read as absent).
_Reads = list[list[tuple[str, Version | None]]]


def _reads(tx: MvccTx) -> _Reads:
    return [
        [
            (
                read.key,
                Version(int(read.version.block_num), int(read.version.tx_num))
                if read.HasField("version")
                else None,  # an unset version records that the key was absent
            )
            for read in rw.reads
        ]
        for _, rw in tx.ns_rwsets
    ]


def _prefetch(
    reader: StateReader, txs: Sequence[MvccTx], reads: Sequence[_Reads]
) -> dict[tuple[str, str], VersionedValue | None]:
    """The committed versions of every key read, in one batch when the reader can."""
    keys = {
        (ns, key)
        for tx, tx_reads in zip(txs, reads, strict=True)
        for (ns, _), ns_reads in zip(tx.ns_rwsets, tx_reads, strict=False)
        for key, _ in ns_reads
    }
    get_many = getattr(reader, "get_many", None)
    if get_many is not None:
        return cast(BatchReader, reader).get_many(keys)
    return {key: reader.get(*key) for key in keys}


def _check_tx(
    reader: StateReader,
    committed: dict[tuple[str, str], VersionedValue | None],
    tx: MvccTx,
    reads: _Reads,
    written: set[tuple[str, str]],
) -> int:
    for (ns, rw), ns_reads in zip(tx.ns_rwsets, reads, strict=True):
        for key, expected in ns_reads:
            if (ns, key) in written:
                return MVCC_READ_CONFLICT
            current = committed[(ns, key)]
            if (current.version if current else None) != expected:
                return MVCC_READ_CONFLICT
        for rq in rw.range_queries_info:
            if not _range_unchanged(reader, ns, rq, written):
                return PHANTOM_READ_CONFLICT
    return VALID


def _range_unchanged(
    reader: StateReader,
    ns: str,
    rq: kv_rwset_pb2.RangeQueryInfo,
    written: set[tuple[str, str]],
) -> bool:
    """Whether re-running the range over committed state + earlier writes gives the same reads."""
    if rq.WhichOneof("reads_info") == "reads_merkle_hashes":
        return False  # we never emit summaries; one we cannot re-check is treated as a conflict
    start, end = rq.start_key, rq.end_key
    # A contract that stopped iterating early recorded its last key as `end_key` (Fabric's
    # simulator does the same), and saw the range up to and including it.
    inclusive = not rq.itr_exhausted and bool(end)

    def in_range(key: str) -> bool:
        # str order is code-point order, which is the UTF-8 byte order of the state's keys.
        return key >= start and (not end or key < end or (inclusive and key == end))

    if any(w_ns == ns and in_range(key) for w_ns, key in written):
        # Merging the earlier write in would add a key or a version of this block, which the
        # recorded reads (all from earlier blocks) cannot contain: a phantom either way.
        return False
    current = [(key, v.version) for key, v in reader.range(ns, start, end)]
    if inclusive:
        at_end = reader.get(ns, end)
        if at_end is not None:
            current.append((end, at_end.version))
    recorded = [
        (
            r.key,
            Version(int(r.version.block_num), int(r.version.tx_num))
            if r.HasField("version")
            else None,
        )
        for r in rq.raw_reads.kv_reads
    ]
    return current == recorded


def writes_of(ns_rwsets: Sequence[tuple[str, kv_rwset_pb2.KVRWSet]]) -> tuple[Write, ...]:
    """The writes of a valid tx in rwset order; a KVWrite with `is_delete` has value None."""
    return tuple(
        Write(ns, w.key, None if w.is_delete else bytes(w.value))
        for ns, rw in ns_rwsets
        for w in rw.writes
    )


def metadata_writes_of(
    ns_rwsets: Sequence[tuple[str, kv_rwset_pb2.KVRWSet]],
) -> tuple[MetadataWrite, ...]:
    """The metadata writes of a valid tx in rwset order (Fabric's `KVMetadataWrite`s)."""
    return tuple(
        MetadataWrite(ns, m.key, tuple((e.name, bytes(e.value)) for e in m.entries))
        for ns, rw in ns_rwsets
        for m in rw.metadata_writes
    )
