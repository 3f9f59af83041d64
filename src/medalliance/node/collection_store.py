"""A peer's private data of one channel: committed collection values, transient sets, gaps.

`private/collections/<channel>.db` (SQLite, WAL, secure delete) beside the ledger, never in it:

- `pvt`: the committed private values of collections this peer's organisation is a member of,
  with the version (block, tx) of the transaction that wrote them, equal to the hashed state's;
- `committed`: each committed collection set as endorsed (the bytes `pvt_rwset_hash` covers),
  which other member peers fetch to reconcile; purges and expiry delete from it too;
- `transient`: private read-write sets received before their transaction commits (from this
  peer's own endorsements or pushed by an endorsing peer), keyed by tx id, dropped at commit
  or, for a transaction that never commits, `TRANSIENT_RETENTION` blocks after it arrived;
- `missing`: (block, tx, namespace, collection) whose private set this member peer has not got
  yet: reconciliation fetches them from other member peers;
- `expiry`: when a value's `blockToLive` runs out;
- `savepoint`: the last block whose private side was applied. A block's private side is one
  SQLite transaction (values, purges, expiries, gaps and transient clean-up together), applied
  after the block's state: a peer killed between the two re-applies it on restart.

`synchronous=NORMAL` (no fsync per commit, as for the world state): a commit lost to a power
failure takes its savepoint with it, atomically, and the block's private side, derivable from
the fsynced block store and the transient sets it kept, is applied again on restart. A transient
set pushed just before such a failure may be lost, as with Fabric's transient store: the
transaction's private data is then a gap that reconciliation fetches.

A private set is kept only if it is the one the transaction committed: SHA-256 of each
collection's set equals the endorsed `pvt_rwset_hash`, and its writes hash to the hashed writes.
A peer of a non-member organisation keeps nothing here: an endorsing non-member passes the
values on without keeping them, and pushes and fetches answer members only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from fabric_protos.common import common_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from google.protobuf.message import DecodeError

from medalliance.contracts.collections import Collection
from medalliance.ledger.private_hashing import (
    HashedCollection,
    key_hash,
    valid_hashed_sets,
    value_hash,
)
from medalliance.ledger.state import Version, VersionedValue

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pvt (
    ns TEXT NOT NULL, coll TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
    block INTEGER NOT NULL, tx INTEGER NOT NULL, PRIMARY KEY (ns, coll, key));
CREATE TABLE IF NOT EXISTS committed (
    block INTEGER NOT NULL, tx INTEGER NOT NULL, ns TEXT NOT NULL, coll TEXT NOT NULL,
    tx_id TEXT NOT NULL, rwset BLOB NOT NULL, PRIMARY KEY (block, tx, ns, coll));
CREATE INDEX IF NOT EXISTS committed_tx ON committed (tx_id);
CREATE TABLE IF NOT EXISTS transient (
    tx_id TEXT NOT NULL, digest BLOB NOT NULL, rwset BLOB NOT NULL, height INTEGER NOT NULL,
    PRIMARY KEY (tx_id, digest));
CREATE TABLE IF NOT EXISTS missing (
    block INTEGER NOT NULL, tx INTEGER NOT NULL, ns TEXT NOT NULL, coll TEXT NOT NULL,
    tx_id TEXT NOT NULL, PRIMARY KEY (block, tx, ns, coll));
CREATE TABLE IF NOT EXISTS expiry (
    at_block INTEGER NOT NULL, ns TEXT NOT NULL, coll TEXT NOT NULL, key BLOB NOT NULL,
    PRIMARY KEY (ns, coll, key));
CREATE TABLE IF NOT EXISTS savepoint (id INTEGER PRIMARY KEY CHECK (id = 0), block INTEGER);
"""

TRANSIENT_RETENTION = 1000  # blocks an uncommitted set is held (Fabric's default retention)
MAX_TRANSIENT_PER_TX = 4  # different private sets held for one tx id: more is a flood
# (namespace) -> its committed collections
CollectionsOf = Callable[[str], Mapping[str, Collection]]


@dataclass(frozen=True, slots=True)
class Missing:
    block: int
    tx: int
    namespace: str
    collection: str
    tx_id: str


class CollectionStore:
    """One channel's private data on one peer. Not thread-safe: the node serialises commits."""

    def __init__(self, db: sqlite3.Connection, msp_id: str) -> None:
        self._db = db
        self.msp_id = msp_id

    @classmethod
    def open(cls, path: Path, msp_id: str) -> CollectionStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA secure_delete=ON")  # purged values leave no readable page behind
        db.execute("PRAGMA synchronous=NORMAL")  # see the module's docstring
        db.executescript(_SCHEMA)
        return cls(db, msp_id)

    def close(self) -> None:
        self._db.close()

    @property
    def savepoint(self) -> int:
        row = self._db.execute("SELECT block FROM savepoint").fetchone()
        return -1 if row is None else int(row[0])

    # --- PrivateReader ---------------------------------------------------------------------------

    def get_private(self, namespace: str, collection: str, key: str) -> VersionedValue | None:
        row = self._db.execute(
            "SELECT value, block, tx FROM pvt WHERE ns = ? AND coll = ? AND key = ?",
            (namespace, collection, key.encode()),
        ).fetchone()
        return None if row is None else VersionedValue(bytes(row[0]), Version(row[1], row[2]))

    def range_private(
        self, namespace: str, collection: str, start_key: str, end_key: str
    ) -> Iterator[tuple[str, VersionedValue]]:
        # keys are stored as UTF-8 BLOBs: SQLite compares them bytewise, Fabric's order
        sql = "SELECT key, value, block, tx FROM pvt WHERE ns = ? AND coll = ? AND key >= ?"
        params: list[object] = [namespace, collection, start_key.encode()]
        if end_key:
            sql += " AND key < ?"
            params.append(end_key.encode())
        rows = self._db.execute(sql + " ORDER BY key", params).fetchall()
        for key, value, block, tx in rows:
            yield bytes(key).decode(), VersionedValue(bytes(value), Version(block, tx))

    # --- transient sets --------------------------------------------------------------------------

    def put_transient(self, tx_id: str, pvt_rwset: bytes) -> bool:
        """Hold a private set until its transaction commits; whether it is held (a replayed push
        is held once). False when this tx already has `MAX_TRANSIENT_PER_TX` different sets (a
        flood). Sets are not trusted here: at commit only one matching the committed hashes is
        kept, so a forged set pushed first cannot shadow the real one."""
        digest = value_hash(pvt_rwset)
        rows = self._db.execute("SELECT digest FROM transient WHERE tx_id = ?", (tx_id,)).fetchall()
        if any(bytes(row[0]) == digest for row in rows):
            return True
        if len(rows) >= MAX_TRANSIENT_PER_TX:
            return False
        self._db.execute(
            "INSERT INTO transient VALUES (?, ?, ?, ?)",
            (tx_id, digest, pvt_rwset, self.savepoint + 1),
        )
        return True

    def transient(self, tx_id: str) -> list[bytes]:
        rows = self._db.execute("SELECT rwset FROM transient WHERE tx_id = ?", (tx_id,)).fetchall()
        return [bytes(row[0]) for row in rows]

    def missing(self) -> list[Missing]:
        rows = self._db.execute(
            "SELECT block, tx, ns, coll, tx_id FROM missing ORDER BY block, tx, ns, coll"
        ).fetchall()
        return [Missing(*row) for row in rows]

    def committed_set(self, tx_id: str, namespace: str, collection: str) -> bytes | None:
        """A committed collection set as endorsed (a serialized KVRWSet), for reconciliation."""
        row = self._db.execute(
            "SELECT rwset FROM committed WHERE tx_id = ? AND ns = ? AND coll = ?",
            (tx_id, namespace, collection),
        ).fetchone()
        return None if row is None else bytes(row[0])

    # --- commit ----------------------------------------------------------------------------------

    def apply_block(
        self,
        block: common_pb2.Block,
        collections_of: CollectionsOf,
        hashed_sets: Iterable[tuple[int, str, tuple[HashedCollection, ...]]] | None = None,
    ) -> list[Missing]:
        """Apply the private side of a committed block (codes in its TRANSACTIONS_FILTER); the
        gaps it leaves. Idempotent: a block at or below the savepoint is skipped.

        `hashed_sets` are the valid transactions' hashed sets when the caller has them (the
        validation that just ran parsed them); otherwise they are read from the block."""
        number = int(block.header.number)
        if number <= self.savepoint:
            return []
        gaps: list[Missing] = []
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._expire(number)
            # sets of transactions that never committed (evaluations, refused or lost ones)
            self._db.execute(
                "DELETE FROM transient WHERE height < ?", (number - TRANSIENT_RETENTION,)
            )
            sets = valid_hashed_sets(block) if hashed_sets is None else hashed_sets
            committed: list[tuple[str]] = []
            for tx_num, tx_id, hashed in sets:
                for h in hashed:
                    gap = self._apply_collection(number, tx_num, tx_id, h, collections_of)
                    if gap is not None:
                        gaps.append(gap)
                committed.append((tx_id,))
            # after every set is applied (valid tx ids are distinct): one call for the block
            self._db.executemany("DELETE FROM transient WHERE tx_id = ?", committed)
            self._db.execute(
                "INSERT INTO savepoint (id, block) VALUES (0, ?) "
                "ON CONFLICT (id) DO UPDATE SET block = excluded.block",
                (number,),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return gaps

    def _apply_collection(
        self,
        number: int,
        tx_num: int,
        tx_id: str,
        hashed: HashedCollection,
        collections_of: CollectionsOf,
    ) -> Missing | None:
        collection = collections_of(hashed.namespace).get(hashed.collection)
        if hashed.purged:
            self._purge(hashed.namespace, hashed.collection, set(hashed.purged))
        if not hashed.rwset.writes or collection is None or not collection.is_member(self.msp_id):
            return None
        found, kv = None, None
        for data in self.transient(tx_id):
            found = collection_set(data, hashed.namespace, hashed.collection)
            kv = None if found is None else matching_collection_set(found, hashed)
            if kv is not None:
                break
        if found is None or kv is None:
            self._db.execute(
                "INSERT OR IGNORE INTO missing VALUES (?, ?, ?, ?, ?)",
                (number, tx_num, hashed.namespace, hashed.collection, tx_id),
            )
            return Missing(number, tx_num, hashed.namespace, hashed.collection, tx_id)
        self._write(number, tx_num, hashed.namespace, collection, kv)
        self._keep(number, tx_num, tx_id, hashed, found)
        return None

    def _keep(
        self, number: int, tx_num: int, tx_id: str, hashed: HashedCollection, data: bytes
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO committed VALUES (?, ?, ?, ?, ?, ?)",
            (number, tx_num, hashed.namespace, hashed.collection, tx_id, data),
        )

    def _purge(self, namespace: str, collection: str, key_hashes: set[str]) -> None:
        """Forget every value of the purged keys: current ones and every committed set that
        wrote them (so no peer can serve them again)."""
        for (key,) in self._db.execute(
            "SELECT key FROM pvt WHERE ns = ? AND coll = ?", (namespace, collection)
        ).fetchall():
            if key_hash(bytes(key).decode()).hex() in key_hashes:
                self._db.execute(
                    "DELETE FROM pvt WHERE ns = ? AND coll = ? AND key = ?",
                    (namespace, collection, key),
                )
        rows = self._db.execute(
            "SELECT block, tx, rwset FROM committed WHERE ns = ? AND coll = ?",
            (namespace, collection),
        ).fetchall()
        for block, tx, data in rows:
            kv = kv_rwset_pb2.KVRWSet.FromString(bytes(data))
            if any(key_hash(w.key).hex() in key_hashes for w in kv.writes):
                self._db.execute(
                    "DELETE FROM committed WHERE block = ? AND tx = ? AND ns = ? AND coll = ?",
                    (block, tx, namespace, collection),
                )

    def _write(
        self,
        number: int,
        tx_num: int,
        namespace: str,
        collection: Collection,
        kv: kv_rwset_pb2.KVRWSet,
    ) -> None:
        for write in kv.writes:
            key = str(write.key).encode()
            if write.is_delete:
                self._db.execute(
                    "DELETE FROM pvt WHERE ns = ? AND coll = ? AND key = ?",
                    (namespace, collection.name, key),
                )
                continue
            self._db.execute(
                "INSERT INTO pvt VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (ns, coll, key) DO UPDATE "
                "SET value = excluded.value, block = excluded.block, tx = excluded.tx",
                (namespace, collection.name, key, bytes(write.value), number, tx_num),
            )
            if collection.block_to_live:
                # Fabric: written at block n with blockToLive k, gone once block n + k + 1 commits
                self._db.execute(
                    "INSERT OR REPLACE INTO expiry VALUES (?, ?, ?, ?)",
                    (number + collection.block_to_live + 1, namespace, collection.name, key),
                )
        self._db.execute(
            "DELETE FROM missing WHERE block = ? AND tx = ? AND ns = ? AND coll = ?",
            (number, tx_num, namespace, collection.name),
        )

    def _expire(self, number: int) -> None:
        expired = self._db.execute(
            "SELECT ns, coll, key FROM expiry WHERE at_block <= ?", (number,)
        ).fetchall()
        for ns, coll, key in expired:
            self._db.execute(
                "DELETE FROM pvt WHERE ns = ? AND coll = ? AND key = ?", (ns, coll, key)
            )
            self._purge(ns, coll, {key_hash(bytes(key).decode()).hex()})
        self._db.execute("DELETE FROM expiry WHERE at_block <= ?", (number,))

    def reconcile(
        self,
        gap: Missing,
        data: bytes,
        hashed: HashedCollection,
        collection: Collection,
    ) -> bool:
        """Fill a gap with a fetched collection set (a serialized KVRWSet), if it matches the
        committed hashes. Values a later transaction replaced (or that expired) stay gone."""
        kv = matching_collection_set(data, hashed)
        if kv is None:
            return False
        self._db.execute("BEGIN IMMEDIATE")
        try:
            newer = kv_rwset_pb2.KVRWSet()
            for write in kv.writes:
                held = self.get_private(gap.namespace, gap.collection, write.key)
                if held is None or (held.version.block_num, held.version.tx_num) < (
                    gap.block,
                    gap.tx,
                ):
                    newer.writes.append(write)
            expired = collection.block_to_live and gap.block + collection.block_to_live < (
                self.savepoint
            )
            if not expired:
                self._write(gap.block, gap.tx, gap.namespace, collection, newer)
                self._keep(gap.block, gap.tx, gap.tx_id, hashed, data)
            self._db.execute(
                "DELETE FROM missing WHERE block = ? AND tx = ? AND ns = ? AND coll = ?",
                (gap.block, gap.tx, gap.namespace, gap.collection),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return True


def collection_set(pvt_rwset: bytes, namespace: str, collection: str) -> bytes | None:
    """One collection's set (a serialized KVRWSet) within a TxPvtReadWriteSet, if present."""
    try:
        txp = rwset_pb2.TxPvtReadWriteSet.FromString(pvt_rwset)
    except DecodeError:
        return None
    for ns in txp.ns_pvt_rwset:
        if ns.namespace == namespace:
            for coll in ns.collection_pvt_rwset:
                if coll.collection_name == collection:
                    return bytes(coll.rwset)
    return None


def matching_collection_set(data: bytes, hashed: HashedCollection) -> kv_rwset_pb2.KVRWSet | None:
    """A collection set, if it is exactly the one the transaction committed: its SHA-256 is the
    endorsed `pvt_rwset_hash` and its writes hash to the hashed writes (else None: forged or
    stale)."""
    if value_hash(data) != hashed.pvt_rwset_hash:
        return None
    try:
        kv = kv_rwset_pb2.KVRWSet.FromString(data)
    except DecodeError:
        return None
    mine = {
        (key_hash(w.key).hex(), w.is_delete, b"" if w.is_delete else value_hash(w.value))
        for w in kv.writes
    }
    committed = {(w.key, w.is_delete, bytes(w.value)) for w in hashed.rwset.writes}
    return kv if mine == committed else None
