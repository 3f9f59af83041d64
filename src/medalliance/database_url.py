"""Where a store keeps its data: a database URL, SQLite by default, PostgreSQL for deployments.

A leaf module: every layer may import it, it imports nothing of ours but `errors`. One parser for
every store (world state, hospital store), so `sqlite:///path`, a bare file path and
`postgresql://user:password@host:port/dbname` mean the same everywhere (architecture §2, storage
behind narrow interfaces). Several stores may share one PostgreSQL database: each keeps its
tables in its own schema (`schema_name`), created on first use.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from medalliance.errors import InvalidArgument

_SCHEMA_SAFE = re.compile(r"[^a-z0-9_]")


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    """A parsed database URL: `path` for SQLite, `conninfo` (a libpq URL) for PostgreSQL."""

    backend: str  # "sqlite" | "postgresql"
    path: Path | None = None
    conninfo: str = field(default="", repr=False)  # may hold a password: never log it

    @property
    def is_postgres(self) -> bool:
        return self.backend == "postgresql"

    def redacted(self) -> str:
        """The URL without its password, for messages and logs."""
        if not self.is_postgres:
            return f"sqlite:///{self.path}"
        parts = urlsplit(self.conninfo)
        host = parts.hostname or ""
        netloc = f"{parts.username}:***@{host}" if parts.password else parts.netloc
        if parts.port and parts.password:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def parse_database_url(text: str, *, base: Path | None = None) -> DatabaseUrl:
    """`sqlite:////abs/path`, `sqlite:///relative/path` (SQLAlchemy's forms), a plain path
    (SQLite; a relative one is under `base`),
    or `postgresql://...` / `postgres://...`. Raises `InvalidArgument` for anything else."""
    text = text.strip()
    if not text:
        raise InvalidArgument("database URL is empty: give a file path or postgresql://...")
    scheme = text.split(":", 1)[0].lower() if "://" in text or text.startswith("sqlite:") else ""
    if scheme in ("postgresql", "postgres"):
        parts = urlsplit(text)
        if not parts.path.strip("/"):
            raise InvalidArgument(
                f"database URL {DatabaseUrl('postgresql', conninfo=text).redacted()} names no "
                "database: add /DBNAME"
            )
        return DatabaseUrl("postgresql", conninfo=text)
    if scheme == "sqlite":
        rest = text[len("sqlite:") :]
        if rest.startswith("//"):  # SQLAlchemy's form: sqlite:///relative, sqlite:////absolute
            rest = rest[3:] if rest.startswith("///") else rest[2:]
        path = Path(rest)
    elif scheme:
        raise InvalidArgument(
            f"database URL scheme {scheme!r} is not supported: use a file path (SQLite) or "
            "postgresql://user:password@host/dbname"
        )
    else:
        path = Path(text)
    if not path.is_absolute() and base is not None:
        path = base / path
    return DatabaseUrl("sqlite", path=path)


def schema_name(*parts: str) -> str:
    """A PostgreSQL schema name for one store, e.g. `schema_name("state", peer, channel)`:
    lower case, `[a-z0-9_]` only, at most 63 bytes (PostgreSQL's identifier limit)."""
    name = "_".join(_SCHEMA_SAFE.sub("_", p.lower()) for p in parts if p)
    if not name:
        raise InvalidArgument("a store needs a non-empty schema name")
    if len(name) <= 63:
        return name
    # Cut, and keep distinct names distinct: two long names sharing a prefix must not collide.
    return f"{name[:54]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"
