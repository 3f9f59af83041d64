"""The web client's own tables (accounts, API tokens, sessions) on SQLite or PostgreSQL.

Owns the SQL only: `accounts.py` holds the rules. One database URL (database_url.py) selects the
backend; on PostgreSQL the tables live in their own schema (`web_accounts`), so the accounts may
share a database with the hospital store. Statements use `?` placeholders on both backends.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

from medalliance.database_url import DatabaseUrl
from medalliance.errors import Conflict, Unavailable

SCHEMA = "web_accounts"

_TABLES = """
CREATE TABLE IF NOT EXISTS accounts (
    username TEXT PRIMARY KEY,
    organization TEXT NOT NULL,
    msp_id TEXT NOT NULL,
    identity TEXT NOT NULL,
    role TEXT NOT NULL,
    language TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    token_id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    username TEXT NOT NULL REFERENCES accounts(username),
    label TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions (
    session_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES accounts(username),
    csrf TEXT NOT NULL,
    created REAL NOT NULL,
    last_seen REAL NOT NULL
)
"""


class AccountDatabase:
    """A connection used under one lock (sync routes run in a thread pool)."""

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._pg: Any = None
        self._sqlite: sqlite3.Connection | None = None
        if url.is_postgres:
            self._open_postgres(url)
        else:
            assert url.path is not None
            url.path.parent.mkdir(parents=True, exist_ok=True)
            # check_same_thread off: every use holds self._lock.
            self._sqlite = sqlite3.connect(
                url.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            url.path.chmod(0o600)  # password hashes and session ids: the owner's only
            self._sqlite.executescript(_TABLES)

    def _open_postgres(self, url: DatabaseUrl) -> None:
        import psycopg  # imported here: SQLite users need not load it

        try:
            self._pg = psycopg.connect(url.conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise Unavailable(
                f"cannot connect to the accounts database {url.redacted()}; is PostgreSQL "
                "running, and are the URL's user, password and database right?"
            ) from exc
        self._pg.execute(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"')
        self._pg.execute(f'SET search_path TO "{SCHEMA}"')
        for statement in _TABLES.split(";"):
            if statement.strip():
                self._pg.execute(statement.replace("REAL", "DOUBLE PRECISION"))

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; `Conflict` on a duplicate key."""
        with self._lock:
            if self._sqlite is not None:
                try:
                    return self._sqlite.execute(sql, tuple(args)).fetchall()
                except sqlite3.IntegrityError as exc:
                    raise Conflict(_duplicate(sql)) from exc
            import psycopg

            try:
                cursor = self._pg.execute(sql.replace("?", "%s"), tuple(args))
            except psycopg.errors.IntegrityError as exc:
                raise Conflict(_duplicate(sql)) from exc
            return list(cursor.fetchall()) if cursor.description else []

    def close(self) -> None:
        with self._lock:
            if self._sqlite is not None:
                self._sqlite.close()
            if self._pg is not None:
                self._pg.close()


def _duplicate(sql: str) -> str:
    table = sql.split("INTO", 1)[-1].split("(", 1)[0].strip() if "INTO" in sql else "row"
    return f"that {table[:-1] if table.endswith('s') else table} already exists; pick another name"
