"""Multi-version concurrency control at commit (protocol doc §6). Pure over a `StateReader`.

In block order, a valid-so-far transaction stays valid when every key it read still has the
version it read (absent = absent), no earlier valid transaction of the same block wrote such a
key, and re-running each range query over committed state merged with those earlier writes
returns exactly the keys and versions recorded. Blind writes never conflict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import transaction_pb2

from medalliance.ledger.state import StateReader, Version, Write

VALID: int = transaction_pb2.TxValidationCode.Value("VALID")
MVCC_READ_CONFLICT: int = transaction_pb2.TxValidationCode.Value("MVCC_READ_CONFLICT")
PHANTOM_READ_CONFLICT: int = transaction_pb2.TxValidationCode.Value("PHANTOM_READ_CONFLICT")
UNCHANGED = -1  # for a tx already invalid: keep its earlier code


@dataclass(frozen=True, slots=True)
class MvccTx:
    tx_num: int
    ns_rwsets: tuple[tuple[str, kv_rwset_pb2.KVRWSet], ...]
    valid_so_far: bool


def check_block(reader: StateReader, txs: Sequence[MvccTx]) -> list[int]:
    """One code per tx: VALID, MVCC_READ_CONFLICT, PHANTOM_READ_CONFLICT, or UNCHANGED."""
    written: dict[tuple[str, str], bool] = {}  # keys written by earlier valid txs: True = deleted
    codes = []
    for tx in txs:
        if not tx.valid_so_far:
            codes.append(UNCHANGED)
            continue
        code = _check_tx(reader, tx, written)
        codes.append(code)
        if code == VALID:
            for ns, rw in tx.ns_rwsets:
                for w in rw.writes:
                    written[(ns, w.key)] = bool(w.is_delete)
    return codes


def _check_tx(reader: StateReader, tx: MvccTx, written: dict[tuple[str, str], bool]) -> int:
    for ns, rw in tx.ns_rwsets:
        for read in rw.reads:
            if (ns, read.key) in written:
                return MVCC_READ_CONFLICT
            committed = reader.get(ns, read.key)
            expected = (
                Version(int(read.version.block_num), int(read.version.tx_num))
                if read.HasField("version")
                else None
            )
            if (committed.version if committed else None) != expected:
                return MVCC_READ_CONFLICT
        for rq in rw.range_queries_info:
            if not _range_unchanged(reader, ns, rq, written):
                return PHANTOM_READ_CONFLICT
    return VALID


def _range_unchanged(
    reader: StateReader,
    ns: str,
    rq: kv_rwset_pb2.RangeQueryInfo,
    written: dict[tuple[str, str], bool],
) -> bool:
    if rq.WhichOneof("reads_info") == "reads_merkle_hashes":
        return False  # we never emit summaries; one we cannot re-check is treated as a conflict
    recorded = [
        (r.key, (int(r.version.block_num), int(r.version.tx_num))) for r in rq.raw_reads.kv_reads
    ]
    end = rq.end_key
    # A contract that stopped iterating early saw the range only up to its last key.
    last = recorded[-1][0] if not rq.itr_exhausted and recorded else None
    for written_ns, key in written:
        if (
            written_ns == ns
            and key >= rq.start_key
            and ((not end or key < end) if last is None else key <= last)
        ):
            return False  # an earlier tx of this block changed a key in the range
    current = []
    for key, versioned in reader.range(ns, rq.start_key, "" if last is not None else end):
        if last is not None and key > last:
            break
        current.append((key, (versioned.version.block_num, versioned.version.tx_num)))
    return current == recorded


def writes_of(ns_rwsets: Sequence[tuple[str, kv_rwset_pb2.KVRWSet]]) -> tuple[Write, ...]:
    return tuple(
        Write(ns, w.key, None if w.is_delete else bytes(w.value))
        for ns, rw in ns_rwsets
        for w in rw.writes
    )
