"""World state on PostgreSQL (psycopg 3): the deployment backend behind `StateStore`.

One schema per store (`database_url.schema_name("state", peer, channel)`), so the peers of a host
can share one database. Keys are BYTEA holding their UTF-8 bytes: BYTEA compares bytewise, which
is Fabric's key order, and unlike TEXT it holds the NUL bytes of composite keys. Namespaces and
metadata names are TEXT `COLLATE "C"` (byte order too). A block is one transaction: the state,
history, metadata and savepoint rows commit together or not at all. Rich queries are evaluated by
`state_rules.query_page` over `range`, the same code as SQLite's, so both answer alike.

One connection per store, guarded by a lock: the gateway reads from its worker threads while the
committer applies blocks, and a reader must never see half a block.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from medalliance.errors import InvalidArgument, PreconditionFailed, StateDatabaseUnavailable
from medalliance.ledger.state import KeyModification, QueryPage, TxWrites, Version, VersionedValue
from medalliance.ledger.state_rules import final_writes, query_page, state_digest

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state (ns TEXT COLLATE "C" NOT NULL, key BYTEA NOT NULL,
    value BYTEA NOT NULL, block_num BIGINT NOT NULL, tx_num INTEGER NOT NULL,
    PRIMARY KEY (ns, key));
CREATE TABLE IF NOT EXISTS history (ns TEXT COLLATE "C" NOT NULL, key BYTEA NOT NULL,
    block_num BIGINT NOT NULL, tx_num INTEGER NOT NULL, tx_id TEXT NOT NULL, ts_ms BIGINT NOT NULL,
    is_delete BOOLEAN NOT NULL, value BYTEA NOT NULL);
CREATE INDEX IF NOT EXISTS history_key ON history (ns, key, block_num, tx_num);
CREATE TABLE IF NOT EXISTS metadata (ns TEXT COLLATE "C" NOT NULL, key BYTEA NOT NULL,
    name TEXT COLLATE "C" NOT NULL, value BYTEA NOT NULL, PRIMARY KEY (ns, key, name));
CREATE TABLE IF NOT EXISTS savepoint (id INTEGER PRIMARY KEY CHECK (id = 0),
    block_num BIGINT NOT NULL);
"""
_SCHEMA_NAME = re.compile(r"^[a-z0-9_]{1,63}$")


class PostgresState:
    """A `StateStore` in one PostgreSQL schema."""

    def __init__(self, db: psycopg.Connection[Any], schema: str) -> None:
        self._db = db
        self._schema = schema
        self._lock = threading.RLock()
        self._savepoint = self._read_savepoint()

    @classmethod
    def open(cls, conninfo: str, schema: str, *, where: str = "") -> PostgresState:
        """Connect and create the schema and its tables on first use.

        `where` names the database in errors (a redacted URL: never the password). Raises
        `StateDatabaseUnavailable` when the server cannot be reached or refuses the login.
        """
        if not _SCHEMA_NAME.match(schema):
            raise InvalidArgument(f"world-state schema {schema!r} must match [a-z0-9_]{{1,63}}")
        try:
            db = psycopg.connect(conninfo, autocommit=True)
        except psycopg.OperationalError as exc:
            # libpq's message names host and user but never the password.
            raise StateDatabaseUnavailable(
                f"cannot open the world state at {where or 'PostgreSQL'}: {exc}".strip()
            ) from None
        try:
            with db.transaction():
                db.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
                db.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
                db.execute(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return cls(db, schema)

    @property
    def schema(self) -> str:
        return self._schema

    @property
    def savepoint(self) -> int:
        return self._savepoint

    def get(self, namespace: str, key: str) -> VersionedValue | None:
        with self._lock:
            row = self._db.execute(
                "SELECT value, block_num, tx_num FROM state WHERE ns = %s AND key = %s",
                (namespace, key.encode()),
            ).fetchone()
        return None if row is None else VersionedValue(bytes(row[0]), Version(row[1], row[2]))

    def get_metadata(self, namespace: str, key: str) -> Mapping[str, bytes]:
        with self._lock:
            rows = self._db.execute(
                "SELECT name, value FROM metadata WHERE ns = %s AND key = %s ORDER BY name",
                (namespace, key.encode()),
            ).fetchall()
        return {str(name): bytes(value) for name, value in rows}

    def get_many(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], VersionedValue | None]:
        """`get` of many (namespace, key) pairs: one statement per namespace (`key = ANY`)."""
        found: dict[tuple[str, str], VersionedValue | None] = {}
        by_ns: dict[str, list[bytes]] = {}
        for ns, key in keys:
            if (ns, key) not in found:
                found[(ns, key)] = None
                by_ns.setdefault(ns, []).append(key.encode())
        with self._lock:
            for ns, names in by_ns.items():
                rows = self._db.execute(
                    "SELECT key, value, block_num, tx_num FROM state WHERE ns = %s AND key = ANY(%s)",
                    (ns, names),
                ).fetchall()
                for key, value, block_num, tx_num in rows:
                    found[(ns, bytes(key).decode())] = VersionedValue(
                        bytes(value), Version(block_num, tx_num)
                    )
        return found

    def range(
        self, namespace: str, start_key: str, end_key: str
    ) -> Iterator[tuple[str, VersionedValue]]:
        query = "SELECT key, value, block_num, tx_num FROM state WHERE ns = %s AND key >= %s"
        params: list[Any] = [namespace, start_key.encode()]
        if end_key:
            query += " AND key < %s"
            params.append(end_key.encode())
        with self._lock:  # fetched whole, as SQLite's: a page never spans two blocks
            rows = self._db.execute(query + " ORDER BY key", params).fetchall()
        for key, value, block_num, tx_num in rows:
            yield bytes(key).decode(), VersionedValue(bytes(value), Version(block_num, tx_num))

    def query(
        self,
        namespace: str,
        query: Mapping[str, Any] | str,
        page_size: int = 0,
        bookmark: str = "",
    ) -> QueryPage:
        """As `SqliteState.query`: the same evaluation (state_rules.query_page) over `range`."""
        return query_page(self.range(namespace, "", ""), query, page_size, bookmark)

    def history(self, namespace: str, key: str) -> Sequence[KeyModification]:
        with self._lock:
            rows = self._db.execute(
                "SELECT tx_id, block_num, tx_num, ts_ms, is_delete, value FROM history "
                "WHERE ns = %s AND key = %s ORDER BY block_num DESC, tx_num DESC",
                (namespace, key.encode()),
            ).fetchall()
        return [
            KeyModification(r[0], Version(r[1], r[2]), r[3], bool(r[4]), bytes(r[5])) for r in rows
        ]

    def apply_block(self, block_num: int, txs: Sequence[TxWrites]) -> None:
        with self._lock:
            if block_num != self._savepoint + 1:
                raise PreconditionFailed(
                    f"world state is at block {self._savepoint}; cannot apply block {block_num}"
                )
            history = [
                (
                    w.namespace,
                    w.key.encode(),
                    block_num,
                    tx.tx_num,
                    tx.tx_id,
                    tx.timestamp_ms,
                    w.value is None,
                    w.value or b"",
                )
                for tx in txs
                for w in tx.writes
            ]
            final, metadata = final_writes(txs, self._committed_value)
            upserts = [
                (ns, k.encode(), v, block_num, n)
                for (ns, k), (v, n) in final.items()
                if v is not None
            ]
            deletes = [(ns, k.encode()) for (ns, k), (v, _) in final.items() if v is None]
            cleared = [(ns, k.encode()) for ns, k in metadata]
            entries = [
                (ns, k.encode(), name, value)
                for (ns, k), es in metadata.items()
                for name, value in es
            ]
            with self._db.transaction(), self._db.cursor() as cur:
                cur.executemany(
                    "INSERT INTO state VALUES (%s, %s, %s, %s, %s) ON CONFLICT (ns, key) DO UPDATE "
                    "SET value = EXCLUDED.value, block_num = EXCLUDED.block_num, "
                    "tx_num = EXCLUDED.tx_num",
                    upserts,
                )
                cur.executemany("DELETE FROM state WHERE ns = %s AND key = %s", deletes)
                cur.executemany("DELETE FROM metadata WHERE ns = %s AND key = %s", cleared)
                cur.executemany("INSERT INTO metadata VALUES (%s, %s, %s, %s)", entries)
                if history:
                    # COPY: a block's history rows in one stream rather than one INSERT each.
                    with cur.copy(
                        "COPY history (ns, key, block_num, tx_num, tx_id, ts_ms, is_delete, value) "
                        "FROM STDIN"
                    ) as copy:
                        for row in history:
                            copy.write_row(row)
                cur.execute(
                    "INSERT INTO savepoint VALUES (0, %s) "
                    "ON CONFLICT (id) DO UPDATE SET block_num = EXCLUDED.block_num",
                    (block_num,),
                )
            self._savepoint = block_num

    def state_hash(self) -> bytes:
        """The same digest as `SqliteState.state_hash` for the same state (state_rules)."""
        with self._lock, self._db.transaction():  # one snapshot for both tables
            values = self._db.execute(
                "SELECT ns, key, value, block_num, tx_num FROM state ORDER BY ns, key"
            ).fetchall()
            metadata = self._db.execute(
                "SELECT ns, key, name, value FROM metadata ORDER BY ns, key, name"
            ).fetchall()
        return state_digest(
            ((ns, bytes(k).decode(), bytes(v), b, t) for ns, k, v, b, t in values),
            ((ns, bytes(k).decode(), name, bytes(v)) for ns, k, name, v in metadata),
        )

    def clear(self) -> None:
        with self._lock:
            with self._db.transaction():
                self._db.execute("TRUNCATE state, history, metadata, savepoint")
            self._savepoint = -1

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _committed_value(self, namespace: str, key: str) -> bytes | None:
        committed = self.get(namespace, key)
        return committed.value if committed else None

    def _read_savepoint(self) -> int:
        row = self._db.execute("SELECT block_num FROM savepoint WHERE id = 0").fetchone()
        return -1 if row is None else int(row[0])
