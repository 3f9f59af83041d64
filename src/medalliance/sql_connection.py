"""One connection to one small store's tables, on SQLite or PostgreSQL: every difference, here.

The hospital store, the audit index and the alarm runner's checkpoint keep their own tables and
queries; this module gives each a connection that runs `?`-placeholder SQL the same way on both
databases, with transactions opened and closed explicitly (`begin`/`commit`/`rollback`).

- SQLite: WAL (readers never wait for the writer), `BEGIN IMMEDIATE` (a second writer waits for
  the file instead of reading stale data and failing half-way), plus the pragmas a store asks for.
  Opened with `check_same_thread=False`: a store that is used from several threads serialises
  its calls itself.
- PostgreSQL (psycopg 3): a schema per store, text compared bytewise (`COLLATE "C"`) so results
  sort as on SQLite, JSON as JSONB. Creating the tables takes a transaction-scoped advisory lock:
  `CREATE ... IF NOT EXISTS` is not atomic in PostgreSQL, and two processes opening a new store at
  once would otherwise fail with "already exists".

Error messages name the store and its redacted URL, never a password: the server's own message
may quote the connection string, so it is left out on PostgreSQL.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from medalliance.database_url import DatabaseUrl, schema_name
from medalliance.errors import Conflict, Unavailable

__all__ = ["SqlConnection", "open_sql"]

_OPEN_TIMEOUT = 30.0  # seconds another process may hold a new store while creating it


class SqlConnection(Protocol):
    """One connection to one store's tables. Not thread-safe."""

    url: DatabaseUrl

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; its rows (none for a write). A constraint violation is a
        `Conflict`."""
        ...

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def begin(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None:
        """Roll back the open transaction, if there is one."""
        ...

    def close(self) -> None: ...
    def to_json(self, document: Mapping[str, Any]) -> Any:
        """A JSON document as the column type wants it (text on SQLite, JSONB on PostgreSQL)."""
        ...

    def from_json(self, value: Any) -> dict[str, Any]: ...


def open_sql(
    url: DatabaseUrl,
    *,
    store: str,
    tables: str,
    schema: tuple[str, ...],
    pragmas: Sequence[str] = (),
) -> SqlConnection:
    """A connection with the store's tables created.

    `store` names the store in messages ("the audit index"); `tables` is `;`-separated DDL with
    `{text}`, `{json}` and `{float}` (double precision) for the column types; `schema` names the PostgreSQL schema
    (`schema_name(*schema)`); `pragmas` are extra SQLite pragmas (e.g. "secure_delete=ON").
    Raises `Unavailable` when the database cannot be reached or opened.
    """
    if url.is_postgres:
        return _Postgres(url, store, tables, schema_name(*schema))
    return _Sqlite(url, store, tables, pragmas)


class _Sqlite:
    def __init__(self, url: DatabaseUrl, store: str, tables: str, pragmas: Sequence[str]) -> None:
        assert url.path is not None
        self.url = url
        self._store = store
        try:
            url.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                url.path, isolation_level=None, check_same_thread=False, timeout=_OPEN_TIMEOUT
            )
            self._prepare(tables.format(text="TEXT", json="TEXT", float="REAL"), pragmas)
        except (OSError, sqlite3.Error) as exc:
            raise Unavailable(
                f"cannot open {store} {url.redacted()}: {exc}; check the path and its permissions"
            ) from exc

    def _prepare(self, tables: str, pragmas: Sequence[str]) -> None:
        """Set the pragmas and create the tables in one transaction, retrying while another
        process does the same: switching a new file to WAL answers "database is locked" at once
        rather than through the busy timeout."""
        deadline = time.monotonic() + _OPEN_TIMEOUT
        while True:
            try:
                for pragma in ("journal_mode=WAL", *pragmas):
                    self._conn.execute(f"PRAGMA {pragma}")
                self._conn.executescript(f"BEGIN IMMEDIATE;{tables};COMMIT;")
                return
            except sqlite3.OperationalError as exc:
                self.rollback()
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, tuple(args)).fetchall()
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"a write to {self._store} conflicts with stored data: {exc}") from exc

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self._conn.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"a write to {self._store} conflicts with stored data: {exc}") from exc

    def begin(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def close(self) -> None:
        self._conn.close()

    def to_json(self, document: Mapping[str, Any]) -> Any:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"))

    def from_json(self, value: Any) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(value)
        return document


class _Postgres:
    def __init__(self, url: DatabaseUrl, store: str, tables: str, schema: str) -> None:
        import psycopg  # imported here: SQLite users need not load it

        self.url = url
        self._store = store
        self._psycopg = psycopg
        try:
            # autocommit: transactions are explicit BEGIN/COMMIT, as on SQLite.
            self._conn = psycopg.connect(url.conninfo, autocommit=True)
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (schema,))
                self._conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                self._conn.execute(f'SET search_path TO "{schema}"')
                types = {"text": 'TEXT COLLATE "C"', "json": "JSONB", "float": "DOUBLE PRECISION"}
                for statement in tables.format(**types).split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
        except psycopg.Error as exc:
            raise Unavailable(
                f"cannot open {store} {url.redacted()} ({type(exc).__name__}); is PostgreSQL "
                "running, and are the URL's user, password and database right?"
            ) from None

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            cursor = self._conn.execute(_pg(sql), tuple(args))
        except self._psycopg.errors.IntegrityError as exc:
            raise Conflict(
                f"a write to {self._store} conflicts with a concurrent write; retry it"
            ) from exc
        return cursor.fetchall() if cursor.description else []

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        try:
            with self._conn.cursor() as cursor:
                cursor.executemany(_pg(sql), rows)
        except self._psycopg.errors.IntegrityError as exc:
            raise Conflict(
                f"a write to {self._store} conflicts with a concurrent write; retry it"
            ) from exc

    def begin(self) -> None:
        self._conn.execute("BEGIN")

    def commit(self) -> None:
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
        if self._conn.info.transaction_status != self._psycopg.pq.TransactionStatus.IDLE:
            self._conn.execute("ROLLBACK")

    def close(self) -> None:
        self._conn.close()

    def to_json(self, document: Mapping[str, Any]) -> Any:
        from psycopg.types.json import Jsonb

        return Jsonb(dict(document))

    def from_json(self, value: Any) -> dict[str, Any]:
        assert isinstance(value, dict)  # psycopg decodes JSONB
        return value


def _pg(sql: str) -> str:
    """`?` placeholders as psycopg's `%s`; a literal `%` (none in our SQL) would need `%%`."""
    assert "%" not in sql
    return sql.replace("?", "%s")
