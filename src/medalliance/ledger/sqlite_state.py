"""World state on SQLite (WAL): the embedded default behind `StateStore`.

`synchronous=NORMAL`: the state is derivable from the block store, which is fsynced, so a state
commit lost in a power cut is replayed from the blocks on the next open (node.channel). Keys are
TEXT compared with SQLite's BINARY collation, i.e. by their UTF-8 bytes, as Fabric orders keys.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from medalliance.errors import PreconditionFailed
from medalliance.ledger.state import KeyModification, QueryPage, TxWrites, Version, VersionedValue
from medalliance.ledger.state_rules import StateExport, final_writes, query_page, state_digest

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state (ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
    block_num INTEGER NOT NULL, tx_num INTEGER NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (ns TEXT NOT NULL, key TEXT NOT NULL, block_num INTEGER NOT NULL,
    tx_num INTEGER NOT NULL, tx_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, is_delete INTEGER NOT NULL,
    value BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS history_key ON history (ns, key, block_num, tx_num);
CREATE TABLE IF NOT EXISTS metadata (ns TEXT NOT NULL, key TEXT NOT NULL, name TEXT NOT NULL,
    value BLOB NOT NULL, PRIMARY KEY (ns, key, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS savepoint (id INTEGER PRIMARY KEY CHECK (id = 0), block_num INTEGER NOT NULL);
"""
_BATCH = 500  # keys per statement, well under SQLite's bound-parameter limit


class SqliteState:
    """A `StateStore` in one SQLite file."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        # One connection shared by the committer and readers on other threads (web, gateway):
        # without the lock a read between a block's statements would see it half-applied.
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: Path) -> SqliteState:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        return cls(db)

    @property
    def savepoint(self) -> int:
        rows = self._rows("SELECT block_num FROM savepoint WHERE id = 0", ())
        row = rows[0] if rows else None
        return -1 if row is None else int(row[0])

    def get(self, namespace: str, key: str) -> VersionedValue | None:
        rows = self._rows(
            "SELECT value, block_num, tx_num FROM state WHERE ns = ? AND key = ?", (namespace, key)
        )
        row = rows[0] if rows else None
        return None if row is None else VersionedValue(bytes(row[0]), Version(row[1], row[2]))

    def get_metadata(self, namespace: str, key: str) -> Mapping[str, bytes]:
        rows = self._rows(
            "SELECT name, value FROM metadata WHERE ns = ? AND key = ? ORDER BY name",
            (namespace, key),
        )
        return {str(name): bytes(value) for name, value in rows}

    def has_metadata(self, namespace: str) -> bool:
        """Whether any key of `namespace` has metadata: when none has, validation asks no key."""
        return bool(self._rows("SELECT 1 FROM metadata WHERE ns = ? LIMIT 1", (namespace,)))

    def get_many(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], VersionedValue | None]:
        """`get` of many (namespace, key) pairs in a few statements: MVCC checks a block at once."""
        found: dict[tuple[str, str], VersionedValue | None] = {}
        by_ns: dict[str, list[str]] = {}
        for ns, key in keys:
            if (ns, key) not in found:
                found[(ns, key)] = None
                by_ns.setdefault(ns, []).append(key)
        for ns, names in by_ns.items():
            for i in range(0, len(names), _BATCH):
                chunk = names[i : i + _BATCH]
                # `ns = ? AND key IN (...)` walks the primary key; a row-value IN would scan.
                rows = self._rows(
                    "SELECT key, value, block_num, tx_num FROM state "  # noqa: S608 - placeholders only
                    f"WHERE ns = ? AND key IN ({', '.join('?' * len(chunk))})",
                    [ns, *chunk],
                )
                for key, value, block_num, tx_num in rows:
                    found[(ns, key)] = VersionedValue(bytes(value), Version(block_num, tx_num))
        return found

    def range(
        self, namespace: str, start_key: str, end_key: str
    ) -> Iterator[tuple[str, VersionedValue]]:
        sql = "SELECT key, value, block_num, tx_num FROM state WHERE ns = ? AND key >= ?"
        params: list[Any] = [namespace, start_key]
        if end_key:
            sql += " AND key < ?"
            params.append(end_key)
        rows = self._rows(sql + " ORDER BY key", params)
        for key, value, block_num, tx_num in rows:
            yield key, VersionedValue(bytes(value), Version(block_num, tx_num))

    def query(
        self,
        namespace: str,
        query: Mapping[str, Any] | str,
        page_size: int = 0,
        bookmark: str = "",
    ) -> QueryPage:
        """Matching JSON values in sort order (then key order), a page at a time.

        Evaluated in Python over the namespace (state_rules.query_page, shared with every
        backend). Raises `QuerySyntaxError` for an unsupported query or a foreign bookmark.
        """
        return query_page(self.range(namespace, "", ""), query, page_size, bookmark)

    def history(self, namespace: str, key: str) -> Sequence[KeyModification]:
        rows = self._rows(
            "SELECT tx_id, block_num, tx_num, ts_ms, is_delete, value FROM history "
            "WHERE ns = ? AND key = ? ORDER BY block_num DESC, tx_num DESC",
            (namespace, key),
        )
        return [
            KeyModification(r[0], Version(r[1], r[2]), r[3], bool(r[4]), bytes(r[5])) for r in rows
        ]

    def apply_block(self, block_num: int, txs: Sequence[TxWrites]) -> None:
        with self._lock:
            self._apply_block(block_num, txs)

    def _apply_block(self, block_num: int, txs: Sequence[TxWrites]) -> None:
        if block_num != self.savepoint + 1:
            raise PreconditionFailed(
                f"world state is at block {self.savepoint}; cannot apply block {block_num}"
            )
        history = [
            (
                w.namespace,
                w.key,
                block_num,
                tx.tx_num,
                tx.tx_id,
                tx.timestamp_ms,
                int(w.value is None),
                w.value or b"",
            )
            for tx in txs
            for w in tx.writes
        ]
        final, metadata = final_writes(txs, self._committed_value)
        upserts = [(ns, k, v, block_num, n) for (ns, k), (v, n) in final.items() if v is not None]
        deletes = [(ns, k) for (ns, k), (v, _) in final.items() if v is None]
        entries = [(ns, k, name, value) for (ns, k), es in metadata.items() for name, value in es]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?, ?)", upserts)
            self._db.executemany("DELETE FROM state WHERE ns = ? AND key = ?", deletes)
            self._db.executemany("DELETE FROM metadata WHERE ns = ? AND key = ?", list(metadata))
            self._db.executemany("INSERT INTO metadata VALUES (?, ?, ?, ?)", entries)
            self._db.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?, ?)", history)
            self._db.execute("INSERT OR REPLACE INTO savepoint VALUES (0, ?)", (block_num,))

    def _committed_value(self, namespace: str, key: str) -> bytes | None:
        committed = self.get(namespace, key)
        return committed.value if committed else None

    def state_hash(self) -> bytes:
        """SHA-256 over every (namespace, key, value, version) in order: compares replicas."""
        with self._lock:
            values = self._rows(
                "SELECT ns, key, value, block_num, tx_num FROM state ORDER BY ns, key", ()
            )
            metadata = self._rows(
                "SELECT ns, key, name, value FROM metadata ORDER BY ns, key, name", ()
            )
        return state_digest(
            ((ns, key, bytes(v), b, t) for ns, key, v, b, t in values),
            ((ns, key, name, bytes(v)) for ns, key, name, v in metadata),
        )

    def export_rows(self) -> StateExport:
        with self._lock, self._db:
            self._db.execute("BEGIN")  # WAL: one read snapshot while another process commits
            savepoint = self._db.execute("SELECT block_num FROM savepoint WHERE id = 0").fetchone()
            values = self._db.execute(
                "SELECT ns, key, value, block_num, tx_num FROM state ORDER BY ns, key"
            ).fetchall()
            metadata = self._db.execute(
                "SELECT ns, key, name, value FROM metadata ORDER BY ns, key, name"
            ).fetchall()
        return StateExport(
            -1 if savepoint is None else int(savepoint[0]),
            tuple((ns, k, bytes(v), b, t) for ns, k, v, b, t in values),
            tuple((ns, k, name, bytes(v)) for ns, k, name, v in metadata),
        )

    def import_rows(self, export: StateExport) -> None:
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            if self._db.execute("SELECT 1 FROM savepoint").fetchone() is not None:
                raise PreconditionFailed("the world state is not empty; import into a new ledger")
            self._db.executemany("INSERT INTO state VALUES (?, ?, ?, ?, ?)", export.values)
            self._db.executemany("INSERT INTO metadata VALUES (?, ?, ?, ?)", export.metadata)
            self._db.execute("INSERT INTO savepoint VALUES (0, ?)", (export.savepoint,))

    def clear(self) -> None:
        with self._lock, self._db:
            self._db.execute("BEGIN")
            for table in ("state", "history", "metadata", "savepoint"):
                self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()
