"""World state on SQLite (WAL): the embedded default behind `StateStore`.

`synchronous=NORMAL`: the state is derivable from the block store, which is fsynced, so a state
commit lost in a power cut is replayed from the blocks on the next open (node.channel). Keys are
TEXT compared with SQLite's BINARY collation, i.e. by their UTF-8 bytes, as Fabric orders keys.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from medalliance.errors import PreconditionFailed, QuerySyntaxError
from medalliance.ledger.selector import parse_query
from medalliance.ledger.state import KeyModification, QueryPage, TxWrites, Version, VersionedValue

# (value or None for deleted, tx_num) of a key after a block, and its metadata when it changed
_Final = dict[tuple[str, str], tuple[bytes | None, int]]
_Meta = dict[tuple[str, str], tuple[tuple[str, bytes], ...]]

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
        row = self._db.execute("SELECT block_num FROM savepoint WHERE id = 0").fetchone()
        return -1 if row is None else int(row[0])

    def get(self, namespace: str, key: str) -> VersionedValue | None:
        row = self._db.execute(
            "SELECT value, block_num, tx_num FROM state WHERE ns = ? AND key = ?", (namespace, key)
        ).fetchone()
        return None if row is None else VersionedValue(bytes(row[0]), Version(row[1], row[2]))

    def get_metadata(self, namespace: str, key: str) -> Mapping[str, bytes]:
        rows = self._db.execute(
            "SELECT name, value FROM metadata WHERE ns = ? AND key = ? ORDER BY name",
            (namespace, key),
        ).fetchall()
        return {str(name): bytes(value) for name, value in rows}

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
                rows = self._db.execute(
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
        rows = self._db.execute(sql + " ORDER BY key", params).fetchall()
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

        Evaluated in Python over the namespace (selector.py); values that are not JSON are
        skipped. `limit` caps the whole result, `page_size` each page; the bookmark is an opaque
        offset into the sorted result. Raises `QuerySyntaxError` for an unsupported query.
        """
        parsed = parse_query(query)
        matches = []
        for key, versioned in self.range(namespace, "", ""):
            try:
                document = json.loads(versioned.value)
            except ValueError:
                continue  # only JSON values take part in rich queries
            if parsed.matches(document):
                matches.append((parsed.sort_key(document), key, versioned))
        # Stable sorts, last field first, give a multi-field sort with per-field direction;
        # ties keep key order.
        matches.sort(key=lambda m: m[1])
        for index in reversed(range(len(parsed.sort))):
            matches.sort(key=_sort_field(index), reverse=parsed.sort[index][1])
        limit = parsed.limit or len(matches)
        start = _decode_bookmark(bookmark)
        size = page_size or limit
        page = matches[start : min(start + size, limit)]
        end = start + len(page)
        next_bookmark = _encode_bookmark(end) if end < min(limit, len(matches)) else ""
        return QueryPage(tuple((key, v) for _, key, v in page), next_bookmark)

    def history(self, namespace: str, key: str) -> Sequence[KeyModification]:
        rows = self._db.execute(
            "SELECT tx_id, block_num, tx_num, ts_ms, is_delete, value FROM history "
            "WHERE ns = ? AND key = ? ORDER BY block_num DESC, tx_num DESC",
            (namespace, key),
        ).fetchall()
        return [
            KeyModification(r[0], Version(r[1], r[2]), r[3], bool(r[4]), bytes(r[5])) for r in rows
        ]

    def apply_block(self, block_num: int, txs: Sequence[TxWrites]) -> None:
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
        final, metadata = self._final_writes(txs)
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

    def _final_writes(self, txs: Sequence[TxWrites]) -> tuple[_Final, _Meta]:
        """Each key's value after the block and the new metadata of keys whose metadata changed.

        In block order (a later transaction wins), value writes before metadata writes of one
        transaction. Deleting a key drops its metadata; a metadata write gives the key the
        writing transaction's version, as Fabric's does (so a read of it before conflicts), and
        is ignored for a key that does not exist.
        """
        final: _Final = {}
        metadata: _Meta = {}
        for tx in txs:
            for w in tx.writes:
                final[(w.namespace, w.key)] = (w.value, tx.tx_num)
                if w.value is None:
                    metadata[(w.namespace, w.key)] = ()
            for m in tx.metadata:
                key = (m.namespace, m.key)
                if key in final:
                    value = final[key][0]
                else:
                    committed = self.get(m.namespace, m.key)
                    value = committed.value if committed else None
                if value is None:
                    continue
                final[key] = (value, tx.tx_num)
                metadata[key] = m.entries
        return final, metadata

    def state_hash(self) -> bytes:
        """SHA-256 over every (namespace, key, value, version) in order: compares replicas."""
        digest = hashlib.sha256()
        for ns, key, value, block_num, tx_num in self._db.execute(
            "SELECT ns, key, value, block_num, tx_num FROM state ORDER BY ns, key"
        ):
            for part in (ns.encode(), key.encode(), bytes(value), f"{block_num}:{tx_num}".encode()):
                digest.update(len(part).to_bytes(8, "big") + part)
        # Metadata (key-level endorsement policies) is state too; tagged so that it cannot be
        # confused with a value row, and absent metadata leaves the hash as it was.
        for ns, key, name, value in self._db.execute(
            "SELECT ns, key, name, value FROM metadata ORDER BY ns, key, name"
        ):
            for part in (b"metadata", ns.encode(), key.encode(), name.encode(), bytes(value)):
                digest.update(len(part).to_bytes(8, "big") + part)
        return digest.digest()

    def clear(self) -> None:
        with self._db:
            self._db.execute("BEGIN")
            for table in ("state", "history", "metadata", "savepoint"):
                self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names

    def close(self) -> None:
        self._db.close()


def _sort_field(index: int) -> Callable[[tuple[tuple[Any, ...], str, VersionedValue]], Any]:
    return lambda match: match[0][index]


def _encode_bookmark(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def _decode_bookmark(bookmark: str) -> int:
    if not bookmark:
        return 0
    try:
        offset = int(base64.urlsafe_b64decode(bookmark.encode()).decode())
    except ValueError as exc:
        raise QuerySyntaxError("bookmark is not one this peer returned") from exc
    if offset < 0:
        raise QuerySyntaxError("bookmark is not one this peer returned")
    return offset
