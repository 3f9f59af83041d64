"""World state on PostgreSQL (psycopg 3): the deployment backend behind `StateStore`.

One schema per store (`database_url.schema_name("state", peer, channel)`), so the peers of a host
can share one database. Keys are BYTEA holding their UTF-8 bytes: BYTEA compares bytewise, which
is Fabric's key order, and unlike TEXT it holds the NUL bytes of composite keys. Namespaces and
metadata names are TEXT `COLLATE "C"` (byte order too). A block is one transaction: the state,
history, metadata and savepoint rows commit together or not at all. Rich queries are evaluated by
`state_rules.query_page` over `range`, the same code as SQLite's, so both answer alike.

One connection per store, guarded by a lock: readers on other threads (the web client, users of
the embedded network) may read while the committer applies a block, and must never see half of
it. A lost connection is reopened once (`_run`).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from medalliance.errors import InvalidArgument, PreconditionFailed, StateDatabaseUnavailable
from medalliance.ledger.state import KeyModification, QueryPage, TxWrites, Version, VersionedValue
from medalliance.ledger.state_rules import (
    FinalMetadata,
    FinalWrites,
    StateExport,
    final_writes,
    query_page,
    state_digest,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")

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

    def __init__(self, conninfo: str, schema: str, where: str) -> None:
        self._conninfo = conninfo  # may hold a password: never logged or shown
        self._schema = schema
        self._where = where
        self._lock = threading.RLock()
        self._db = self._connect()
        self._savepoint = self._read_savepoint(self._db)

    @classmethod
    def open(cls, conninfo: str, schema: str, *, where: str = "") -> PostgresState:
        """Connect and create the schema and its tables on first use.

        `where` names the database in errors (a redacted URL: never the password). Raises
        `StateDatabaseUnavailable` when the server cannot be reached or refuses the login.
        """
        if not _SCHEMA_NAME.match(schema):
            raise InvalidArgument(f"world-state schema {schema!r} must match [a-z0-9_]{{1,63}}")
        return cls(conninfo, schema, where or "PostgreSQL")

    @property
    def schema(self) -> str:
        return self._schema

    @property
    def savepoint(self) -> int:
        return self._savepoint

    def get(self, namespace: str, key: str) -> VersionedValue | None:
        rows = self._rows(
            "SELECT value, block_num, tx_num FROM state WHERE ns = %s AND key = %s",
            (namespace, key.encode()),
        )
        row = rows[0] if rows else None
        return None if row is None else VersionedValue(bytes(row[0]), Version(row[1], row[2]))

    def get_metadata(self, namespace: str, key: str) -> Mapping[str, bytes]:
        rows = self._rows(
            "SELECT name, value FROM metadata WHERE ns = %s AND key = %s ORDER BY name",
            (namespace, key.encode()),
        )
        return {str(name): bytes(value) for name, value in rows}

    def has_metadata(self, namespace: str) -> bool:
        """Whether any key of `namespace` has metadata: when none has, validation asks no key."""
        return bool(self._rows("SELECT 1 FROM metadata WHERE ns = %s LIMIT 1", (namespace,)))

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
        for ns, names in by_ns.items():
            rows = self._rows(
                "SELECT key, value, block_num, tx_num FROM state WHERE ns = %s AND key = ANY(%s)",
                (ns, names),
            )
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
        # Fetched whole, as SQLite's: a range never spans two blocks.
        rows = self._rows(query + " ORDER BY key", params)
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
        rows = self._rows(
            "SELECT tx_id, block_num, tx_num, ts_ms, is_delete, value FROM history "
            "WHERE ns = %s AND key = %s ORDER BY block_num DESC, tx_num DESC",
            (namespace, key.encode()),
        )
        return [
            KeyModification(r[0], Version(r[1], r[2]), r[3], bool(r[4]), bytes(r[5])) for r in rows
        ]

    def apply_block(self, block_num: int, txs: Sequence[TxWrites]) -> None:
        with self._lock:
            if block_num != self._savepoint + 1:
                raise PreconditionFailed(
                    f"world state is at block {self._savepoint}; cannot apply block {block_num}"
                )
            final, metadata = final_writes(txs, self._committed_value)
            self._run(lambda db: self._write_block(db, block_num, txs, final, metadata))
            self._savepoint = block_num

    def state_hash(self) -> bytes:
        """The same digest as `SqliteState.state_hash` for the same state (state_rules)."""

        def read(db: psycopg.Connection[Any]) -> tuple[list[Any], list[Any]]:
            with db.transaction():  # one snapshot for both tables
                values = db.execute(
                    "SELECT ns, key, value, block_num, tx_num FROM state ORDER BY ns, key"
                ).fetchall()
                metadata = db.execute(
                    "SELECT ns, key, name, value FROM metadata ORDER BY ns, key, name"
                ).fetchall()
            return values, metadata

        values, metadata = self._run(read)
        return state_digest(
            ((ns, bytes(k).decode(), bytes(v), b, t) for ns, k, v, b, t in values),
            ((ns, bytes(k).decode(), name, bytes(v)) for ns, k, name, v in metadata),
        )

    def export_rows(self) -> StateExport:
        def read(db: psycopg.Connection[Any]) -> tuple[int, list[Any], list[Any]]:
            with db.transaction():
                db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # one snapshot
                savepoint = self._read_savepoint(db)
                values = db.execute(
                    "SELECT ns, key, value, block_num, tx_num FROM state ORDER BY ns, key"
                ).fetchall()
                metadata = db.execute(
                    "SELECT ns, key, name, value FROM metadata ORDER BY ns, key, name"
                ).fetchall()
            return savepoint, values, metadata

        savepoint, values, metadata = self._run(read)
        return StateExport(
            savepoint,
            tuple((ns, bytes(k).decode(), bytes(v), b, t) for ns, k, v, b, t in values),
            tuple((ns, bytes(k).decode(), name, bytes(v)) for ns, k, name, v in metadata),
        )

    def import_rows(self, export: StateExport) -> None:
        def load(db: psycopg.Connection[Any]) -> None:
            with db.transaction(), db.cursor() as cur:
                if self._read_savepoint(db) != -1:
                    raise PreconditionFailed(
                        "the world state is not empty; import into a new ledger"
                    )
                cur.executemany(
                    "INSERT INTO state VALUES (%s, %s, %s, %s, %s)",
                    [(ns, k.encode(), v, b, t) for ns, k, v, b, t in export.values],
                )
                cur.executemany(
                    "INSERT INTO metadata VALUES (%s, %s, %s, %s)",
                    [(ns, k.encode(), name, v) for ns, k, name, v in export.metadata],
                )
                cur.execute("INSERT INTO savepoint VALUES (0, %s)", (export.savepoint,))

        with self._lock:
            self._run(load)
            self._savepoint = export.savepoint

    def clear(self) -> None:
        def truncate(db: psycopg.Connection[Any]) -> None:
            with db.transaction():
                db.execute("TRUNCATE state, history, metadata, savepoint")

        with self._lock:
            self._run(truncate)
            self._savepoint = -1

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write_block(
        self,
        db: psycopg.Connection[Any],
        block_num: int,
        txs: Sequence[TxWrites],
        final: FinalWrites,
        metadata: FinalMetadata,
    ) -> None:
        """One transaction: state, metadata, history and savepoint rows of a block."""
        if self._read_savepoint(db) == block_num:
            return  # committed before a dropped connection could report it (see `_run`)
        upserts = [
            (ns, k.encode(), v, block_num, n) for (ns, k), (v, n) in final.items() if v is not None
        ]
        deletes = [(ns, k.encode()) for (ns, k), (v, _) in final.items() if v is None]
        cleared = [(ns, k.encode()) for ns, k in metadata]
        entries = [
            (ns, k.encode(), name, value) for (ns, k), es in metadata.items() for name, value in es
        ]
        with db.transaction(), db.cursor() as cur:
            cur.executemany(
                "INSERT INTO state VALUES (%s, %s, %s, %s, %s) ON CONFLICT (ns, key) DO UPDATE "
                "SET value = EXCLUDED.value, block_num = EXCLUDED.block_num, "
                "tx_num = EXCLUDED.tx_num",
                upserts,
            )
            cur.executemany("DELETE FROM state WHERE ns = %s AND key = %s", deletes)
            cur.executemany("DELETE FROM metadata WHERE ns = %s AND key = %s", cleared)
            cur.executemany("INSERT INTO metadata VALUES (%s, %s, %s, %s)", entries)
            # COPY: a block's history rows in one stream rather than one INSERT each.
            with cur.copy(
                "COPY history (ns, key, block_num, tx_num, tx_id, ts_ms, is_delete, value) "
                "FROM STDIN"
            ) as copy:
                for tx in txs:
                    for w in tx.writes:
                        copy.write_row(
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
                        )
            cur.execute(
                "INSERT INTO savepoint VALUES (0, %s) "
                "ON CONFLICT (id) DO UPDATE SET block_num = EXCLUDED.block_num",
                (block_num,),
            )

    def _committed_value(self, namespace: str, key: str) -> bytes | None:
        committed = self.get(namespace, key)
        return committed.value if committed else None

    def _rows(self, query: str, params: Sequence[Any]) -> list[Any]:
        return self._run(lambda db: db.execute(query, params).fetchall())

    def _run(self, work: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        """Do `work` on the connection under the lock; after a lost connection (a server
        restart, an idle timeout) reconnect once and do it again. Every `work` is one statement
        or one transaction, so a retry never doubles a write. Raises `StateDatabaseUnavailable`
        when the server stays unreachable."""
        with self._lock:
            try:
                return work(self._db)
            except psycopg.OperationalError:
                if not (self._db.broken or self._db.closed):
                    raise  # the statement failed, not the connection
            log.warning(
                "world-state connection lost; reconnecting", extra={"database": self._where}
            )
            self._db.close()
            self._db = self._connect()
            return work(self._db)

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            db = psycopg.connect(self._conninfo, autocommit=True)
        except psycopg.OperationalError as exc:
            # libpq's message names host and user but never the password.
            raise StateDatabaseUnavailable(
                f"cannot open the world state at {self._where}: {exc}".strip()
            ) from None
        try:
            with db.transaction():
                schema = sql.Identifier(self._schema)
                db.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
                db.execute(sql.SQL("SET search_path TO {}").format(schema))
                db.execute(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    @staticmethod
    def _read_savepoint(db: psycopg.Connection[Any]) -> int:
        row = db.execute("SELECT block_num FROM savepoint WHERE id = 0").fetchone()
        return -1 if row is None else int(row[0])
