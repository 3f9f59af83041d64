"""The hospital's clinical store: FHIR R4 resources by (type, id), versioned, searchable, on
SQLite (default, one file) or PostgreSQL (JSONB), plus the application's bookkeeping records
(the connector's referrals, checkpoints, quarantine) in the same database and transactions.

Nothing half-written: every write runs in one database transaction (its own, or the caller's
`transaction()`), validation happens before the first write, and any exception rolls back.
The store holds identities and clinical data: it never logs them, and its errors name resources
by type and id only.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Literal

from medalliance.database_url import DatabaseUrl, parse_database_url
from medalliance.errors import InvalidArgument, NotFound
from medalliance.hospital.fhir_validation import (
    ID_PATTERN,
    SUPPORTED_TYPES,
    InvalidResource,
    ResourceIssue,
    validate_resource,
)
from medalliance.hospital.search_index import index_rows, search_sql
from medalliance.hospital.store_backend import Backend, connect

__all__ = ["ClinicalStore", "Outcome", "ResourceNotFound"]

Outcome = Literal["created", "updated", "unchanged"]


class ResourceNotFound(NotFound):
    def __init__(self, resource_type: str, resource_id: str) -> None:
        super().__init__(
            f"no {resource_type}/{resource_id} in the hospital store; "
            f"see `medalliance hospital patients` or search {resource_type}"
        )
        self.resource_type = resource_type
        self.resource_id = resource_id


class ClinicalStore:
    """One hospital's FHIR store. Open with `ClinicalStore.open(url)`; close when done. Safe to
    share between threads: one transaction runs at a time."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._lock = threading.RLock()
        self._depth = 0

    @classmethod
    def open(cls, url: str | Path | DatabaseUrl, *, schema: str = "hospital") -> ClinicalStore:
        """A path or `sqlite:///...` opens (creates, with its parent folders) an SQLite file;
        `postgresql://...` uses schema `schema` of that database (created if absent), so several
        hospitals may share one database. Raises `Unavailable` if it cannot be opened."""
        if isinstance(url, Path):
            url = DatabaseUrl("sqlite", path=url)
        elif isinstance(url, str):
            url = parse_database_url(url)
        return cls(connect(url, schema))

    @property
    def url(self) -> DatabaseUrl:
        return self._backend.url

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> ClinicalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> AbstractContextManager[None]:
        """One database transaction: everything inside commits together or, on an exception,
        not at all. A transaction inside another joins the outer one."""
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._backend.begin()
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                self._backend.rollback()
                raise
            self._depth = 0
            try:
                self._backend.commit()
            except BaseException:
                self._backend.rollback()
                raise

    # --- resources -------------------------------------------------------------------------------

    def put(
        self, resource: Mapping[str, Any], *, source: str = "local", keep_source: bool = True
    ) -> dict[str, Any]:
        """Create or update the resource by (resourceType, id) and return it as stored, with
        `meta.versionId` (1, 2, ...) and `meta.lastUpdated`. Identical content (ignoring those
        two) writes nothing and returns the stored version.

        `source` says where a new resource came from ("local", "import:<file>",
        "referral:<referral id>"). An update keeps the first source (`keep_source=False` replaces
        it): the source says who brought the patient's data into this hospital, so erasing a
        referral's data (`delete_source`) also removes what was edited here after it arrived.

        Raises `InvalidResource` (nothing written) for an invalid resource or one without id."""
        return self.put_outcome(resource, source=source, keep_source=keep_source)[0]

    def put_outcome(
        self,
        resource: Mapping[str, Any],
        *,
        source: str = "local",
        keep_source: bool = True,
        validated: bool = False,
    ) -> tuple[dict[str, Any], Outcome]:
        """As `put`, and whether the resource was "created", "updated" or "unchanged".
        `validated=True` skips validation: only for a caller that has just run
        `validate_resource` on this very mapping and found no issue (bundle import does, and
        validation is most of an import's time)."""
        resource, issues = _as_json(resource)
        if not issues and not validated:
            issues = validate_resource(resource)
        resource_id = resource.get("id")
        if not issues and not (isinstance(resource_id, str) and ID_PATTERN.match(resource_id)):
            issues = [
                ResourceIssue(
                    str(resource["resourceType"]),
                    "?",
                    f"{resource['resourceType']}.id",
                    "required: the store keeps resources by type and id",
                )
            ]
        if issues:
            raise InvalidResource(issues)
        assert isinstance(resource_id, str)
        resource_type = str(resource["resourceType"])
        with self.transaction():
            row = self._backend.execute(
                "SELECT version_id, source, content FROM fhir_resource"
                " WHERE resource_type = ? AND id = ?",
                (resource_type, resource_id),
            )
            if row:
                stored = self._backend.from_json(row[0][2])
                if _unstamped(stored) == _unstamped(resource):
                    return stored, "unchanged"
                version = int(row[0][0]) + 1
                source = str(row[0][1]) if keep_source else source
            else:
                version = 1
            now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
            document = _stamped(resource, version, now)
            self._write(resource_type, resource_id, version, now, source, document, bool(row))
            return document, "updated" if row else "created"

    def get(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        """The stored resource. Raises `ResourceNotFound`."""
        found = self.find(resource_type, resource_id)
        if found is None:
            raise ResourceNotFound(resource_type, resource_id)
        return found

    def find(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        rows = self._read(
            "SELECT content FROM fhir_resource WHERE resource_type = ? AND id = ?",
            (resource_type, resource_id),
        )
        return self._backend.from_json(rows[0][0]) if rows else None

    def search(
        self, resource_type: str, params: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Resources of `resource_type` matching every parameter (search_index.py lists them),
        ordered by id. Raises `InvalidArgument` for an unknown parameter or malformed value."""
        sql, args = search_sql(resource_type, params or {})
        return [self._backend.from_json(row[0]) for row in self._read(sql, args)]

    def search_count(self, resource_type: str, params: Mapping[str, str] | None = None) -> int:
        """How many resources `search` would find without `_count`/`_offset`."""
        sql, args = search_sql(resource_type, params or {}, count=True)
        return int(self._read(sql, args)[0][0])

    def referring(self, reference: str) -> list[dict[str, Any]]:
        """Every resource with a reference to `reference` (`Type/id`), in (type, id) order."""
        rows = self._read(
            "SELECT r.content FROM fhir_resource r WHERE EXISTS (SELECT 1 FROM fhir_search s"
            " WHERE s.resource_type = r.resource_type AND s.resource_id = r.id"
            " AND s.param = '_reference' AND s.value = ?) ORDER BY r.resource_type, r.id",
            (reference,),
        )
        return [self._backend.from_json(row[0]) for row in rows]

    def delete(self, resource_type: str, resource_id: str) -> bool:
        """Remove the resource (and its index rows); False if it was not there."""
        with self.transaction():
            found = self._backend.execute(
                "SELECT 1 FROM fhir_resource WHERE resource_type = ? AND id = ?",
                (resource_type, resource_id),
            )
            if found:
                self._delete(resource_type, resource_id)
            return bool(found)

    def delete_source(self, source: str) -> list[tuple[str, str]]:
        """Remove every resource whose source is `source`; returns their (type, id), sorted."""
        with self.transaction():
            rows = self._backend.execute(
                "SELECT resource_type, id FROM fhir_resource WHERE source = ?"
                " ORDER BY resource_type, id",
                (source,),
            )
            deleted = [(str(t), str(i)) for t, i in rows]
            for resource_type, resource_id in deleted:
                self._delete(resource_type, resource_id)
            return deleted

    def source_of(self, resource_type: str, resource_id: str) -> str | None:
        rows = self._read(
            "SELECT source FROM fhir_resource WHERE resource_type = ? AND id = ?",
            (resource_type, resource_id),
        )
        return str(rows[0][0]) if rows else None

    def count(self, resource_type: str | None = None) -> int:
        """How many resources (of one type) the store holds."""
        if resource_type is None:
            return int(self._read("SELECT COUNT(*) FROM fhir_resource")[0][0])
        sql = "SELECT COUNT(*) FROM fhir_resource WHERE resource_type = ?"
        return int(self._read(sql, (resource_type,))[0][0])

    # --- application records ---------------------------------------------------------------------

    def set_record(self, kind: str, key: str, document: Mapping[str, Any]) -> None:
        """Store (replace) the JSON document under (kind, key)."""
        _check_record_key(kind, key)
        with self.transaction():
            self._backend.execute("DELETE FROM app_record WHERE kind = ? AND key = ?", (kind, key))
            self._backend.execute(
                "INSERT INTO app_record (kind, key, document) VALUES (?, ?, ?)",
                (kind, key, self._backend.to_json(document)),
            )

    def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        rows = self._read("SELECT document FROM app_record WHERE kind = ? AND key = ?", (kind, key))
        return self._backend.from_json(rows[0][0]) if rows else None

    def records(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        """Every (key, document) of `kind`, ordered by key."""
        rows = self._read(
            "SELECT key, document FROM app_record WHERE kind = ? ORDER BY key", (kind,)
        )
        return [(str(key), self._backend.from_json(doc)) for key, doc in rows]

    def record_keys(
        self, kind: str, prefix: str = "", *, offset: int = 0, limit: int = 100,
        descending: bool = False,
    ) -> list[str]:  # fmt: skip
        """The keys of `kind` starting with `prefix`, in key order (or reversed), one page: what
        an index record (a key that sorts as wanted, e.g. `side:block:id`) is read by."""
        low, high = _prefix_range(prefix)
        rows = self._read(
            _KEYS_DESCENDING if descending else _KEYS_ASCENDING,
            (kind, low, high, max(0, limit), max(0, offset)),
        )
        return [str(row[0]) for row in rows]

    def count_records(self, kind: str, prefix: str = "") -> int:
        """How many records of `kind` have a key starting with `prefix`."""
        low, high = _prefix_range(prefix)
        sql = "SELECT COUNT(*) FROM app_record WHERE kind = ? AND key >= ? AND key < ?"
        return int(self._read(sql, (kind, low, high))[0][0])

    def delete_record(self, kind: str, key: str) -> bool:
        with self.transaction():
            found = self._backend.execute(
                "SELECT 1 FROM app_record WHERE kind = ? AND key = ?", (kind, key)
            )
            self._backend.execute("DELETE FROM app_record WHERE kind = ? AND key = ?", (kind, key))
            return bool(found)

    # --- private helpers -------------------------------------------------------------------------

    def _read(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:  # a read never interleaves with another thread's open transaction
            return self._backend.execute(sql, args)

    def _write(
        self,
        resource_type: str,
        resource_id: str,
        version: int,
        now: str,
        source: str,
        document: dict[str, Any],
        replace: bool,
    ) -> None:
        if replace:
            self._delete(resource_type, resource_id)
        self._backend.execute(
            "INSERT INTO fhir_resource (resource_type, id, version_id, last_updated, source,"
            " content) VALUES (?, ?, ?, ?, ?, ?)",
            (resource_type, resource_id, version, now, source, self._backend.to_json(document)),
        )
        self._backend.execute_many(
            "INSERT INTO fhir_search (resource_type, resource_id, param, value, value_high)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (resource_type, resource_id, r.param, r.value, r.value_high)
                for r in index_rows(document)
            ],
        )

    def _delete(self, resource_type: str, resource_id: str) -> None:
        # Index rows first: no reliance on ON DELETE CASCADE being enabled on the connection.
        args = (resource_type, resource_id)
        self._backend.execute(
            "DELETE FROM fhir_search WHERE resource_type = ? AND resource_id = ?", args
        )
        self._backend.execute("DELETE FROM fhir_resource WHERE resource_type = ? AND id = ?", args)


def _as_json(resource: Mapping[str, Any]) -> tuple[dict[str, Any], list[ResourceIssue]]:
    """The resource as plain JSON values (tuples become lists, so that comparing it with the
    stored version means comparing content), or an issue when it is not JSON at all."""
    if not isinstance(resource, Mapping):
        return {}, [ResourceIssue("?", "?", "Resource", "not a JSON object")]
    try:
        copy: dict[str, Any] = json.loads(json.dumps(resource, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        kind = resource.get("resourceType")
        what = kind if isinstance(kind, str) and kind in SUPPORTED_TYPES else "?"
        reason = "holds a value that is not JSON (a date object, NaN, ...); give FHIR JSON"
        return {}, [ResourceIssue(what, "?", what if what != "?" else "Resource", reason)]
    return copy, []


def _unstamped(resource: Mapping[str, Any]) -> dict[str, Any]:
    """The resource without what the store sets (meta.versionId, meta.lastUpdated)."""
    document = dict(resource)
    meta = {k: v for k, v in (document.get("meta") or {}).items() if k not in _STAMPS}
    document.pop("meta", None)
    if meta:
        document["meta"] = meta
    return document


def _stamped(resource: Mapping[str, Any], version: int, now: str) -> dict[str, Any]:
    document = _unstamped(resource)
    document["meta"] = {**document.get("meta", {}), "versionId": str(version), "lastUpdated": now}
    return document


_STAMPS = ("versionId", "lastUpdated")


_KEYS = "SELECT key FROM app_record WHERE kind = ? AND key >= ? AND key < ? ORDER BY key"
_KEYS_ASCENDING, _KEYS_DESCENDING = (
    f"{_KEYS} ASC LIMIT ? OFFSET ?",
    f"{_KEYS} DESC LIMIT ? OFFSET ?",
)


def _prefix_range(prefix: str) -> tuple[str, str]:
    """[low, high) of the keys starting with `prefix` (both backends compare text bytewise)."""
    if not prefix:
        return "", "\U0010ffff"
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _check_record_key(kind: str, key: str) -> None:
    if not kind or not key:
        raise InvalidArgument("an application record needs a non-empty kind and key")
