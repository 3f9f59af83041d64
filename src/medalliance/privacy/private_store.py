"""An organisation's private store of sealed packages, beside (never inside) the shared ledger.

Fabric private-data style: a node keeps the sealed packages of the records its organisation is
authorised for, keyed by record id and version, with the SHA-256 the ledger recorded for each.
The caller verifies a package against the ledger (digest and wrapped-key commitments) before
`put`; `put` never replaces a held version with different bytes (idempotent on identical ones).
Only `replace`, which the caller uses for a verified extension of the held copy (a grant adds a
wrapped key, keeping every other), overwrites one. Erasure deletes with SQLite's `secure_delete`, which
overwrites the freed pages, and truncates the write-ahead log, so no readable copy of an erased
ciphertext is left in the database files.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from medalliance.errors import Conflict, NotFound

_SCHEMA = """
CREATE TABLE IF NOT EXISTS packages (
    record_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    digest TEXT NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (record_id, version)
)
"""


@dataclass(frozen=True, slots=True)
class StoredPackage:
    record_id: str
    version: int
    digest: str
    sealed: bytes = field(repr=False)


class PrivateStore:
    """Sealed packages in one SQLite file (WAL, secure delete)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    @classmethod
    def open(cls, path: Path) -> PrivateStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Not bound to the opening thread (as the ledger's stores): the web server opens the
        # embedded alliance on one thread and calls it from its own single alliance thread.
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA secure_delete=ON")
        db.execute(_SCHEMA)
        return cls(db)

    def put(self, record_id: str, version: int, digest: str, sealed: bytes) -> bool:
        """Keep a verified package; False if exactly this is already held. `Conflict` if other
        bytes are held for this version: a held copy is never replaced by `put`."""
        held = self._row(record_id, version)
        if held is not None:
            if held.digest != digest or held.sealed != sealed:
                raise Conflict(
                    f"version {version} of record {record_id} is already held with other content"
                )
            return False
        self._db.execute(
            "INSERT INTO packages VALUES (?, ?, ?, ?)", (record_id, version, digest, sealed)
        )
        return True

    def replace(self, record_id: str, version: int, sealed: bytes) -> None:
        """Overwrite a held version with a verified extension of it (same ciphertext, every
        held wrapped key kept); the caller checks that. `NotFound` if nothing is held."""
        self.get(record_id, version)
        self._db.execute(
            "UPDATE packages SET sealed = ? WHERE record_id = ? AND version = ?",
            (sealed, record_id, version),
        )

    def get(self, record_id: str, version: int) -> StoredPackage:
        held = self._row(record_id, version)
        if held is None:
            raise NotFound(f"version {version} of record {record_id} is not held here")
        return held

    def versions(self, record_id: str) -> list[int]:
        rows = self._db.execute(
            "SELECT version FROM packages WHERE record_id = ? ORDER BY version", (record_id,)
        )
        return [int(v) for (v,) in rows]

    def record_ids(self) -> list[str]:
        """Every record of which some version is held."""
        rows = self._db.execute("SELECT DISTINCT record_id FROM packages ORDER BY record_id")
        return [str(r) for (r,) in rows]

    def erase(self, record_ids: list[str]) -> int:
        """Delete every version of these records and leave no readable copy; returns how many."""
        with self._transaction():
            deleted = 0
            for record_id in record_ids:
                cursor = self._db.execute("DELETE FROM packages WHERE record_id = ?", (record_id,))
                deleted += cursor.rowcount
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return deleted

    def close(self) -> None:
        self._db.close()

    def _row(self, record_id: str, version: int) -> StoredPackage | None:
        row = self._db.execute(
            "SELECT digest, sealed FROM packages WHERE record_id = ? AND version = ?",
            (record_id, version),
        ).fetchone()
        return None if row is None else StoredPackage(record_id, version, row[0], bytes(row[1]))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
