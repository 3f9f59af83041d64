"""The Fabric CA's database: registered identities, issued certificates, revocations.

On SQLite (a file, the default) or PostgreSQL (its own schema), through `sql_connection`. An
enrolment secret is stored only as its argon2id hash, never in clear. Enrolment counting and
certificate recording happen in one transaction with a conditional update, so two enrolments
racing for the last allowed one cannot both succeed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from medalliance.ca.registrar import Attribute, CaIdentity, IdentityType
from medalliance.database_url import DatabaseUrl
from medalliance.errors import Conflict, NotFound
from medalliance.sql_connection import open_sql

_TABLES = """
CREATE TABLE IF NOT EXISTS ca_identity (
    id {text} PRIMARY KEY, type {text} NOT NULL, affiliation {text} NOT NULL,
    attrs {json} NOT NULL, max_enrollments INTEGER NOT NULL, enrollments INTEGER NOT NULL,
    secret_hash {text} NOT NULL, revoked INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ca_certificate (
    serial {text} PRIMARY KEY, id {text} NOT NULL, cert_pem {text} NOT NULL,
    not_after {text} NOT NULL, revoked_at {text}, reason INTEGER)
"""


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    serial_hex: str
    enrollment_id: str
    cert_pem: str
    revoked: bool


class CaStore:
    """One CA's tables. Not thread-safe: the CA serialises its calls (`FabricCa`)."""

    def __init__(self, url: DatabaseUrl, ca_name: str) -> None:
        self.url = url
        self._db = open_sql(
            url, store="the Fabric CA store", tables=_TABLES, schema=("ca", ca_name)
        )

    def close(self) -> None:
        self._db.close()

    def is_empty(self) -> bool:
        return not self._db.execute("SELECT 1 FROM ca_identity LIMIT 1")

    def identity(self, enrollment_id: str) -> tuple[CaIdentity, str] | None:
        """The identity and its secret hash, or None."""
        rows = self._db.execute(
            "SELECT id, type, affiliation, attrs, max_enrollments, enrollments, revoked, "
            "secret_hash FROM ca_identity WHERE id = ?",
            (enrollment_id,),
        )
        return (self._identity(rows[0]), str(rows[0][7])) if rows else None

    def identities(self) -> list[CaIdentity]:
        rows = self._db.execute(
            "SELECT id, type, affiliation, attrs, max_enrollments, enrollments, revoked "
            "FROM ca_identity ORDER BY id"
        )
        return [self._identity(row) for row in rows]

    def add_identity(self, identity: CaIdentity, secret_hash: str) -> None:
        """Raises `Conflict` when the enrollment ID is registered already."""
        attrs = [{"name": a.name, "value": a.value, "ecert": a.ecert} for a in identity.attributes]
        try:
            self._db.execute(
                "INSERT INTO ca_identity (id, type, affiliation, attrs, max_enrollments, "
                "enrollments, secret_hash, revoked) VALUES (?, ?, ?, ?, ?, 0, ?, 0)",
                (
                    identity.enrollment_id,
                    identity.type,
                    identity.affiliation,
                    self._db.to_json({"attrs": attrs}),
                    identity.max_enrollments,
                    secret_hash,
                ),
            )
        except Conflict:
            raise Conflict(
                f"identity {identity.enrollment_id} is registered already; choose another ID"
            ) from None

    def record_certificate(
        self,
        enrollment_id: str,
        cert_pem: str,
        serial: int,
        not_after: dt.datetime,
        *,
        count_enrollment: bool,
    ) -> None:
        """Store an issued certificate; with `count_enrollment`, count one more enrolment in the
        same transaction, refusing (`Conflict`, nothing written) when none is left."""
        self._db.begin()
        try:
            if count_enrollment:
                counted = self._db.execute(
                    "UPDATE ca_identity SET enrollments = enrollments + 1 WHERE id = ? AND "
                    "revoked = 0 AND (max_enrollments < 0 OR enrollments < max_enrollments) "
                    "RETURNING enrollments",
                    (enrollment_id,),
                )
                if not counted:
                    raise Conflict(f"identity {enrollment_id} has no enrolment left")
            self._db.execute(
                "INSERT INTO ca_certificate (serial, id, cert_pem, not_after) VALUES (?, ?, ?, ?)",
                (format(serial, "x"), enrollment_id, cert_pem, not_after.isoformat()),
            )
            self._db.commit()
        except BaseException:
            self._db.rollback()
            raise

    def certificate(self, serial: int) -> CertificateRecord | None:
        rows = self._db.execute(
            "SELECT serial, id, cert_pem, revoked_at FROM ca_certificate WHERE serial = ?",
            (format(serial, "x"),),
        )
        return _record(rows[0]) if rows else None

    def certificates(self, enrollment_id: str) -> list[CertificateRecord]:
        rows = self._db.execute(
            "SELECT serial, id, cert_pem, revoked_at FROM ca_certificate WHERE id = ? "
            "ORDER BY serial",
            (enrollment_id,),
        )
        return [_record(row) for row in rows]

    def revoke(
        self,
        enrollment_id: str,
        serials: Sequence[str],
        *,
        whole_identity: bool,
        reason: int,
        now: dt.datetime,
    ) -> list[str]:
        """Mark `serials` (hex) revoked, and the identity too when `whole_identity`; one
        transaction. Returns the serials newly revoked."""
        self._db.begin()
        try:
            done = []
            for serial in serials:
                rows = self._db.execute(
                    "UPDATE ca_certificate SET revoked_at = ?, reason = ? WHERE serial = ? AND "
                    "id = ? AND revoked_at IS NULL RETURNING serial",
                    (now.isoformat(), reason, serial, enrollment_id),
                )
                done += [str(row[0]) for row in rows]
            if whole_identity:
                self._db.execute(
                    "UPDATE ca_identity SET revoked = 1 WHERE id = ?", (enrollment_id,)
                )
            self._db.commit()
        except BaseException:
            self._db.rollback()
            raise
        return done

    def revoked_serials(self) -> list[tuple[int, dt.datetime]]:
        """Every revoked certificate's serial and revocation time, oldest first."""
        rows = self._db.execute(
            "SELECT serial, revoked_at FROM ca_certificate WHERE revoked_at IS NOT NULL "
            "ORDER BY revoked_at, serial"
        )
        return [(int(str(s), 16), dt.datetime.fromisoformat(str(at))) for s, at in rows]

    def require(self, enrollment_id: str) -> CaIdentity:
        found = self.identity(enrollment_id)
        if found is None:
            raise NotFound(f"no identity {enrollment_id!r} is registered with this CA")
        return found[0]

    def _identity(self, row: tuple[Any, ...]) -> CaIdentity:
        attrs = self._db.from_json(row[3]).get("attrs", [])
        kind: IdentityType = row[1]
        return CaIdentity(
            enrollment_id=str(row[0]),
            type=kind,
            affiliation=str(row[2]),
            attributes=tuple(Attribute(a["name"], a["value"], bool(a["ecert"])) for a in attrs),
            max_enrollments=int(row[4]),
            enrollments=int(row[5]),
            revoked=bool(row[6]),
        )


def _record(row: tuple[Any, ...]) -> CertificateRecord:
    return CertificateRecord(str(row[0]), str(row[1]), str(row[2]), row[3] is not None)
