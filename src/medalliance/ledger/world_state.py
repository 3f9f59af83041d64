"""Opening a channel's world state: SQLite in the ledger folder by default, PostgreSQL by URL.

The one place that picks a backend: the peer (node.channel), `ledger rebuild-state` and
`ledger verify` (audit.verify) all open a state here and use it as a `WorldState`. A ledger folder
whose state lives in PostgreSQL records where (`state-database.json`: the URL without its
password, and the schema), so a tool given only the folder finds the node's state; the password
comes from libpq's PGPASSWORD or ~/.pgpass, or from a URL the operator passes explicitly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from medalliance.database_url import DatabaseUrl, parse_database_url, schema_name
from medalliance.errors import InvalidArgument
from medalliance.ledger.state import StateStore, VersionedValue
from medalliance.ledger.state_rules import StateExport

SQLITE_FILE = "state.db"  # the default: SQLite beside the block store
LOCATION_FILE = "state-database.json"


class WorldState(StateStore, Protocol):
    """What a peer needs of its world state beyond `StateStore`; both backends implement it."""

    def get_many(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], VersionedValue | None]:
        """`get` of many keys in a few round trips (MVCC checks a whole block at once)."""
        ...

    def has_metadata(self, namespace: str) -> bool:
        """Whether any key of `namespace` has metadata (validation then asks key by key)."""
        ...

    def state_hash(self) -> bytes:
        """A digest of every value, version and metadata entry: equal states, equal hashes."""
        ...

    def clear(self) -> None:
        """Drop everything, savepoint included: the state is then rebuilt from the blocks."""
        ...

    def export_rows(self) -> StateExport:
        """The savepoint with every value and metadata row, read in one transaction (a
        consistent copy while the peer commits), ordered as `state_digest` wants them."""
        ...

    def import_rows(self, export: StateExport) -> None:
        """Load a snapshot's rows into an empty state at its savepoint, in one transaction.

        Raises `PreconditionFailed` and changes nothing when the state is not empty."""
        ...


@dataclass(frozen=True, slots=True)
class StateLocation:
    """Where one ledger's world state lives: `url` None is SQLite in the ledger folder."""

    url: DatabaseUrl | None
    schema: str


def state_schema(peer: str, channel_id: str) -> str:
    """The PostgreSQL schema of one peer's state of one channel."""
    return schema_name("state", peer, channel_id)


def open_state(url: DatabaseUrl | None, *, sqlite_path: Path, schema: str) -> WorldState:
    """Open (creating on first use) a world state: PostgreSQL when `url` is one, else SQLite at
    `sqlite_path`. Raises `StateDatabaseUnavailable` when PostgreSQL cannot be reached."""
    if url is not None and url.is_postgres:
        # Imported here so that a SQLite-only peer never loads the PostgreSQL driver.
        from medalliance.ledger.postgres_state import PostgresState

        return PostgresState.open(url.conninfo, schema, where=url.redacted())
    from medalliance.ledger.sqlite_state import SqliteState

    return SqliteState.open(sqlite_path)


def open_ledger_state(ledger_dir: Path, location: StateLocation) -> WorldState:
    """Open a ledger folder's state and record its location there for later tools."""
    state = open_state(location.url, sqlite_path=ledger_dir / SQLITE_FILE, schema=location.schema)
    record = ledger_dir / LOCATION_FILE
    if location.url is None or not location.url.is_postgres:
        record.unlink(missing_ok=True)
        return state
    text = json.dumps({"url": _without_password(location.url.conninfo), "schema": location.schema})
    if not record.exists() or record.read_text(encoding="utf-8") != text:
        tmp = record.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.chmod(tmp, 0o600)
        tmp.replace(record)
    return state


def recorded_location(ledger_dir: Path, override: DatabaseUrl | None = None) -> StateLocation:
    """Where a ledger folder's state lives, as the peer recorded it (SQLite when nothing is).

    `override` replaces a recorded PostgreSQL URL (e.g. by one carrying the password); the
    schema stays.
    Raises `InvalidArgument` for a damaged record.
    """
    record = ledger_dir / LOCATION_FILE
    if not record.exists():
        return StateLocation(None, "")
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        url, schema = data["url"], data["schema"]
        if not isinstance(url, str) or not isinstance(schema, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument(
            f"{record} is damaged: it should hold the state's database URL and schema; "
            "open the ledger with its peer once to write it again"
        ) from None
    return StateLocation(override or parse_database_url(url), schema)


def _without_password(conninfo: str) -> str:
    parts = urlsplit(conninfo)
    if parts.password is None:
        return conninfo
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host  # an IPv6 literal keeps its brackets
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
