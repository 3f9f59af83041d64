"""The web client's own tables (accounts, API tokens, sessions) on SQLite or PostgreSQL.

Owns the SQL only: `accounts.py` holds the rules. One database URL (database_url.py) selects the
backend (sql_connection.py); on PostgreSQL the tables live in their own schema (`web_accounts`),
so the accounts may share a database with the hospital store. The SQLite file is the owner's
only (password hashes and session ids): it is created 0600 before SQLite opens it, so its
write-ahead log, which SQLite gives the file's mode, is too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from medalliance.database_url import DatabaseUrl
from medalliance.errors import Conflict
from medalliance.sql_connection import open_sql

SCHEMA = "web_accounts"

_TABLES = """
CREATE TABLE IF NOT EXISTS accounts (
    username {text} PRIMARY KEY,
    organization {text} NOT NULL,
    msp_id {text} NOT NULL,
    identity {text} NOT NULL,
    role {text} NOT NULL,
    language {text} NOT NULL,
    password_hash {text} NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at {text} NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    token_id {text} PRIMARY KEY,
    secret_hash {text} NOT NULL,
    username {text} NOT NULL REFERENCES accounts(username),
    label {text} NOT NULL,
    created_at {text} NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions (
    session_hash {text} PRIMARY KEY,
    username {text} NOT NULL REFERENCES accounts(username),
    csrf {text} NOT NULL,
    created {float} NOT NULL,
    last_seen {float} NOT NULL
)
"""


class AccountDatabase:
    """A connection used under one lock (sync routes run in a thread pool)."""

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self._lock = threading.Lock()
        if url.path is not None:
            url.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(url.path, os.O_CREAT | os.O_WRONLY, 0o600))
            url.path.chmod(0o600)  # an older file made with another mode
        self._db = open_sql(url, store="the accounts database", tables=_TABLES, schema=(SCHEMA,))

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; `Conflict` on a duplicate key."""
        with self._lock:
            try:
                return self._db.execute(sql, args)
            except Conflict as exc:
                raise Conflict(_duplicate(sql)) from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _duplicate(sql: str) -> str:
    table = sql.split("INTO", 1)[-1].split("(", 1)[0].strip() if "INTO" in sql else "row"
    return f"that {table[:-1] if table.endswith('s') else table} already exists; pick another name"
