"""Where the hospital store's SQL meets a database: every SQLite / PostgreSQL difference, here only.

`Backend` runs `?`-placeholder SQL, holds one connection, and opens, commits and rolls back one
transaction at a time (the store nests them by counting). SQLite: WAL, `secure_delete` (deleted
identities do not linger in free pages), foreign keys, `BEGIN IMMEDIATE` so that a writer waits
for the file instead of failing half-way. PostgreSQL: psycopg 3, resources as JSONB, the store's
tables in its own schema, text compared bytewise (`COLLATE "C"`) so results sort as on SQLite.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from medalliance.database_url import DatabaseUrl, schema_name
from medalliance.errors import Conflict, Unavailable

_TABLES = """
CREATE TABLE IF NOT EXISTS fhir_resource (
    resource_type {text} NOT NULL, id {text} NOT NULL, version_id INTEGER NOT NULL,
    last_updated {text} NOT NULL, source {text} NOT NULL, content {json} NOT NULL,
    PRIMARY KEY (resource_type, id));
CREATE INDEX IF NOT EXISTS fhir_resource_source ON fhir_resource (source);
CREATE TABLE IF NOT EXISTS fhir_search (
    resource_type {text} NOT NULL, resource_id {text} NOT NULL, param {text} NOT NULL,
    value {text} NOT NULL, value_high {text},
    FOREIGN KEY (resource_type, resource_id) REFERENCES fhir_resource (resource_type, id)
        ON DELETE CASCADE);
CREATE INDEX IF NOT EXISTS fhir_search_lookup ON fhir_search (resource_type, param, value);
CREATE INDEX IF NOT EXISTS fhir_search_owner ON fhir_search (resource_type, resource_id);
CREATE TABLE IF NOT EXISTS app_record (
    kind {text} NOT NULL, key {text} NOT NULL, document {json} NOT NULL,
    PRIMARY KEY (kind, key));
"""


class Backend(Protocol):
    """One connection to one store's tables."""

    url: DatabaseUrl

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def begin(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...
    def to_json(self, document: Mapping[str, Any]) -> Any: ...
    def from_json(self, value: Any) -> dict[str, Any]: ...


def connect(url: DatabaseUrl, schema: str) -> Backend:
    """A connected backend with the store's tables created. Raises `Unavailable` when the
    database cannot be reached or opened."""
    if url.is_postgres:
        return _Postgres(url, schema_name(schema))
    return _Sqlite(url)


class _Sqlite:
    def __init__(self, url: DatabaseUrl) -> None:
        assert url.path is not None
        self.url = url
        try:
            url.path.parent.mkdir(parents=True, exist_ok=True)
            # check_same_thread off: the store serialises use with its own lock.
            self._conn = sqlite3.connect(
                url.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA secure_delete=ON")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(_TABLES.format(text="TEXT", json="TEXT"))
        except (OSError, sqlite3.Error) as exc:
            raise Unavailable(
                f"cannot open the hospital store {url.redacted()}: {exc}; "
                "check the path and its permissions"
            ) from exc

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, tuple(args)).fetchall()
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"hospital store write conflicts with stored data: {exc}") from exc

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)

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
    def __init__(self, url: DatabaseUrl, schema: str) -> None:
        import psycopg  # imported here: SQLite users need not load it

        self.url = url
        self._psycopg = psycopg
        try:
            # autocommit: transactions are explicit BEGIN/COMMIT, as on SQLite.
            self._conn = psycopg.connect(url.conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise Unavailable(
                f"cannot connect to the hospital store {url.redacted()}; "
                "is PostgreSQL running, and are the URL's user, password and database right?"
            ) from exc
        self._conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        self._conn.execute(f'SET search_path TO "{schema}"')
        tables = _TABLES.format(text='TEXT COLLATE "C"', json="JSONB")
        for statement in tables.split(";"):
            if statement.strip():
                self._conn.execute(statement)

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            cursor = self._conn.execute(_pg(sql), tuple(args))
        except self._psycopg.errors.IntegrityError as exc:
            raise Conflict(
                "hospital store write conflicts with a concurrent write; retry it"
            ) from exc
        return cursor.fetchall() if cursor.description else []

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self._conn.cursor() as cursor:
                cursor.executemany(_pg(sql), rows)

    def begin(self) -> None:
        self._conn.execute("BEGIN")

    def commit(self) -> None:
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
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
