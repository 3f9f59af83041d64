"""A hospital's own database (the paper's HIS/LIS/EMR data layer), SQLite by default.

It holds what never goes on the chain: patients with their identities, visits, diagnoses,
examinations and images. The chain sees only the visit number and the patient's pseudonym;
clinical data travels between hospitals as a sealed package built here (`export_visit`) and
imported at the receiving hospital (`import_referral`) in one SQLite transaction together with the
referral's id, so a referral is imported exactly once however often the connector replays.

`secure_delete` is on, so deleted identities do not linger in free pages.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medalliance.app.quarantine import Quarantined
from medalliance.errors import Conflict, InvalidArgument, NotFound

SCHEMA = "medalliance.clinical/1"
_TABLES = """
CREATE TABLE IF NOT EXISTS patients (
    patient_ref TEXT PRIMARY KEY, name TEXT NOT NULL, sex TEXT NOT NULL, birth_date TEXT NOT NULL,
    id_type TEXT NOT NULL, id_number TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS visits (
    visit_no TEXT PRIMARY KEY, patient_ref TEXT NOT NULL REFERENCES patients,
    admitted_at TEXT NOT NULL, source TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS diagnoses (
    visit_no TEXT NOT NULL REFERENCES visits, code TEXT NOT NULL, name TEXT NOT NULL,
    source TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS examinations (
    visit_no TEXT NOT NULL REFERENCES visits, exam_type TEXT NOT NULL, result TEXT NOT NULL,
    performed_at TEXT NOT NULL, source TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    visit_no TEXT NOT NULL REFERENCES visits, name TEXT NOT NULL, content BLOB NOT NULL,
    source TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS referrals (
    referral_id TEXT PRIMARY KEY, visit_no TEXT NOT NULL, side TEXT NOT NULL,
    counterpart TEXT NOT NULL, direction TEXT NOT NULL, record_id TEXT NOT NULL,
    status TEXT NOT NULL, tx_id TEXT NOT NULL, block INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sync (id INTEGER PRIMARY KEY CHECK (id = 1), last_block INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS quarantine (
    referral_id TEXT PRIMARY KEY, record_id TEXT NOT NULL, tx_id TEXT NOT NULL,
    block INTEGER NOT NULL, reason TEXT NOT NULL, first_attempt TEXT NOT NULL,
    last_attempt TEXT NOT NULL, event TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pseudonym_migrations (
    old_ref TEXT PRIMARY KEY, new_ref TEXT NOT NULL, migrated_at TEXT NOT NULL);
"""

_DELETE_IMPORTED = (
    "DELETE FROM diagnoses WHERE source = ?",
    "DELETE FROM examinations WHERE source = ?",
    "DELETE FROM images WHERE source = ?",
)
_VISIT_USED = (
    "SELECT 1 FROM diagnoses WHERE visit_no = ? LIMIT 1",
    "SELECT 1 FROM examinations WHERE visit_no = ? LIMIT 1",
    "SELECT 1 FROM images WHERE visit_no = ? LIMIT 1",
)


@dataclass(frozen=True, slots=True)
class Referral:
    """A referral as the connector learns it from the chain."""

    referral_id: str
    visit_no: str
    side: str  # incoming | outgoing
    counterpart: str
    direction: str
    record_id: str
    tx_id: str
    block: int


class HospitalDatabase:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    @classmethod
    def open(cls, path: Path) -> HospitalDatabase:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA secure_delete = ON")
        db.execute("PRAGMA foreign_keys = ON")
        db.executescript(_TABLES)
        return cls(db)

    def close(self) -> None:
        self._db.close()

    # --- the hospital's own records --------------------------------------------------------------

    def add_patient(
        self,
        patient_ref: str,
        *,
        name: str,
        sex: str,
        birth_date: str,
        id_type: str,
        id_number: str,
    ) -> None:
        with self._transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO patients VALUES (?, ?, ?, ?, ?, ?)",
                (patient_ref, name, sex, birth_date, id_type, id_number),
            )

    def add_visit(
        self,
        visit_no: str,
        patient_ref: str,
        admitted_at: str,
        *,
        diagnoses: Sequence[tuple[str, str]] = (),
        examinations: Sequence[tuple[str, str, str]] = (),
        images: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        """A visit with its diagnoses (code, name), examinations (type, result, performed at)
        and images (name, content)."""
        with self._transaction():
            self._insert_visit(visit_no, patient_ref, admitted_at, "local")
            self._insert_details(visit_no, "local", diagnoses, examinations, images)

    def add_details(
        self,
        visit_no: str,
        *,
        diagnoses: Sequence[tuple[str, str]] = (),
        examinations: Sequence[tuple[str, str, str]] = (),
        images: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        """More diagnoses, examinations or images of a visit this hospital holds."""
        with self._transaction():
            if (
                self._db.execute("SELECT 1 FROM visits WHERE visit_no = ?", (visit_no,)).fetchone()
                is None
            ):
                raise NotFound(f"visit {visit_no} is not in this hospital's database")
            self._insert_details(visit_no, "local", diagnoses, examinations, images)

    def export_visit(self, visit_no: str) -> tuple[bytes, list[tuple[str, bytes]]]:
        """The clinical package of a visit (JSON) and its images, to be sealed for a referral."""
        visit = self._db.execute(
            "SELECT patient_ref, admitted_at FROM visits WHERE visit_no = ?", (visit_no,)
        ).fetchone()
        if visit is None:
            raise NotFound(f"visit {visit_no} is not in this hospital's database")
        patient = self._db.execute(
            "SELECT name, sex, birth_date, id_type, id_number FROM patients WHERE patient_ref = ?",
            (visit[0],),
        ).fetchone()
        package = {
            "schema": SCHEMA,
            "patient": dict(
                zip(("name", "sex", "birthDate", "idType", "idNumber"), patient, strict=True),
                patientRef=visit[0],
            ),
            "visit": {"visitNo": visit_no, "admittedAt": visit[1]},
            "diagnoses": [
                {"code": c, "name": n}
                for c, n in self._db.execute(
                    "SELECT code, name FROM diagnoses WHERE visit_no = ? ORDER BY rowid",
                    (visit_no,),
                )
            ],
            "examinations": [
                {"type": t, "result": r, "performedAt": p}
                for t, r, p in self._db.execute(
                    "SELECT exam_type, result, performed_at FROM examinations WHERE visit_no = ? "
                    "ORDER BY rowid",
                    (visit_no,),
                )
            ],
        }
        images = [
            (str(n), bytes(c))
            for n, c in self._db.execute(
                "SELECT name, content FROM images WHERE visit_no = ? ORDER BY rowid", (visit_no,)
            )
        ]
        return json.dumps(package, ensure_ascii=False, sort_keys=True).encode(), images

    # --- what the connector writes ---------------------------------------------------------------

    def has_referral(self, referral_id: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM referrals WHERE referral_id = ?", (referral_id,)
        ).fetchone()
        return row is not None

    def import_referral(
        self, referral: Referral, clinical: bytes, images: Sequence[tuple[str, bytes]]
    ) -> None:
        """Write an incoming referral's patient, visit, diagnoses, examinations and images, and
        the referral itself, in one transaction; `Conflict` if it was imported before."""
        package = parse_clinical(clinical)
        patient, source = package["patient"], f"referral:{referral.referral_id}"
        with self._transaction():
            if self.has_referral(referral.referral_id):
                raise Conflict(f"referral {referral.referral_id} was already imported")
            self._db.execute(
                "INSERT OR IGNORE INTO patients VALUES (?, ?, ?, ?, ?, ?)",
                (
                    patient["patientRef"],
                    patient["name"],
                    patient["sex"],
                    patient["birthDate"],
                    patient["idType"],
                    patient["idNumber"],
                ),
            )
            self._db.execute(
                "INSERT INTO visits VALUES (?, ?, ?, ?) ON CONFLICT (visit_no) DO UPDATE "
                "SET source = excluded.source",
                (referral.visit_no, patient["patientRef"], package["visit"]["admittedAt"], source),
            )
            self._insert_details(
                referral.visit_no,
                source,
                [(d["code"], d["name"]) for d in package["diagnoses"]],
                [(e["type"], e["result"], e["performedAt"]) for e in package["examinations"]],
                images,
            )
            self._insert_referral(referral, "REFERRED")
            # A retried referral leaves the quarantine in the transaction that imports it.
            self._db.execute(
                "DELETE FROM quarantine WHERE referral_id = ?", (referral.referral_id,)
            )

    def record_outgoing(self, referral: Referral) -> bool:
        """Note a referral this hospital made; False if it was noted before."""
        with self._transaction():
            if self.has_referral(referral.referral_id):
                return False
            self._insert_referral(referral, "REFERRED")
            return True

    def set_status(self, referral_id: str, status: str) -> bool:
        """Follow a referral's status; False if this hospital does not hold the referral."""
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE referrals SET status = ? WHERE referral_id = ?", (status, referral_id)
            )
            return cursor.rowcount == 1

    def erase_imported(self, record_id: str) -> int:
        """Crypto-shredding reaches the hospital's copy: delete the clinical data imported from
        the erased record `record_id` (diagnoses, examinations, images, and the visit and the
        patient's identity when nothing of the hospital's own still refers to them), in one
        transaction, then truncate the write-ahead log. The referral row stays (ids, status,
        no clinical content) as the hospital's trace of what it received. Returns how many
        imported referrals were cleared."""
        with self._transaction():
            rows = self._db.execute(
                "SELECT referral_id, visit_no FROM referrals WHERE record_id = ? AND side = ?",
                (record_id, "incoming"),
            ).fetchall()
            for referral_id, visit_no in rows:
                source = f"referral:{referral_id}"
                for statement in _DELETE_IMPORTED:
                    self._db.execute(statement, (source,))
                self._delete_visit_if_unused(visit_no)
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return len(rows)

    def _delete_visit_if_unused(self, visit_no: str) -> None:
        row = self._db.execute(
            "SELECT patient_ref FROM visits WHERE visit_no = ?", (visit_no,)
        ).fetchone()
        if row is None:
            return
        for statement in _VISIT_USED:
            if self._db.execute(statement, (visit_no,)).fetchone() is not None:
                return  # the hospital's own findings for this visit stay
        self._db.execute("DELETE FROM visits WHERE visit_no = ?", (visit_no,))
        self._db.execute(
            "DELETE FROM patients WHERE patient_ref = ? AND NOT EXISTS "
            "(SELECT 1 FROM visits WHERE patient_ref = ?)",
            (row[0], row[0]),
        )

    def last_block(self) -> int:
        """The last block the connector finished (-1 before the first)."""
        row = self._db.execute("SELECT last_block FROM sync WHERE id = 1").fetchone()
        return -1 if row is None else int(row[0])

    def set_last_block(self, number: int, quarantined: Sequence[Quarantined] = ()) -> None:
        """Finish block `number`: its quarantined referrals and the checkpoint, one transaction,
        so a killed connector neither loses nor doubles a quarantine entry."""
        with self._transaction():
            for entry in quarantined:
                self.quarantine(entry)
            self._db.execute(
                "INSERT INTO sync VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET last_block = ?",
                (number, number),
            )

    # --- the quarantine: referrals whose package could not be imported ---------------------------

    def quarantine(self, entry: Quarantined) -> None:
        """Note (or update, keeping the first attempt) a quarantined referral."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (referral_id) "
                "DO UPDATE SET reason = excluded.reason, last_attempt = excluded.last_attempt",
                (
                    entry.referral_id,
                    entry.record_id,
                    entry.tx_id,
                    entry.block,
                    entry.reason,
                    entry.first_attempt,
                    entry.last_attempt,
                    json.dumps(entry.event, sort_keys=True),
                ),
            )

    def quarantined(self, referral_id: str | None = None) -> list[Quarantined]:
        """The quarantined referrals (or the one named), in chain order."""
        query = (
            "SELECT referral_id, record_id, tx_id, block, reason, first_attempt, last_attempt, "
            "event FROM quarantine"
        )
        if referral_id is None:
            rows = self._db.execute(f"{query} ORDER BY block, referral_id").fetchall()
        else:
            rows = self._db.execute(f"{query} WHERE referral_id = ?", (referral_id,)).fetchall()
        return [
            Quarantined(
                str(r[0]),
                str(r[1]),
                str(r[2]),
                int(r[3]),
                str(r[4]),
                str(r[5]),
                str(r[6]),
                json.loads(r[7]),
            )
            for r in rows
        ]

    # --- reading ---------------------------------------------------------------------------------

    def visit_summary(self, visit_no: str) -> dict[str, Any]:
        """What the database holds of a visit (counts, sources), for display and tests."""
        row = self._db.execute(
            "SELECT v.patient_ref, v.source, p.name, p.sex FROM visits v JOIN patients p "
            "USING (patient_ref) WHERE v.visit_no = ?",
            (visit_no,),
        ).fetchone()
        if row is None:
            raise NotFound(f"visit {visit_no} is not in this hospital's database")

        diagnoses, examinations, images = self._db.execute(
            "SELECT (SELECT COUNT(*) FROM diagnoses WHERE visit_no = ?1), "
            "(SELECT COUNT(*) FROM examinations WHERE visit_no = ?1), "
            "(SELECT COUNT(*) FROM images WHERE visit_no = ?1)",
            (visit_no,),
        ).fetchone()
        return {
            "visitNo": visit_no,
            "patientRef": row[0],
            "source": row[1],
            "name": row[2],
            "sex": row[3],
            "diagnoses": int(diagnoses),
            "examinations": int(examinations),
            "images": int(images),
        }

    def referrals(self) -> list[dict[str, Any]]:
        columns = (
            "referralId",
            "visitNo",
            "side",
            "counterpart",
            "direction",
            "recordId",
            "status",
        )
        rows = self._db.execute(
            "SELECT referral_id, visit_no, side, counterpart, direction, record_id, status "
            "FROM referrals ORDER BY block, referral_id"
        )
        return [dict(zip(columns, row, strict=True)) for row in rows]

    # --- the pseudonym migration (docs/privacy.md §4) ---------------------------------------------

    def patient_identities(self) -> list[tuple[str, str, str]]:
        """Every patient as (patient_ref, id_type, id_number); never logged or printed."""
        rows = self._db.execute(
            "SELECT patient_ref, id_type, id_number FROM patients ORDER BY patient_ref"
        )
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]

    def visits_of(self, patient_ref: str) -> list[str]:
        rows = self._db.execute(
            "SELECT visit_no FROM visits WHERE patient_ref = ? ORDER BY visit_no", (patient_ref,)
        )
        return [str(r[0]) for r in rows]

    def rename_patient(self, old_ref: str, new_ref: str, at: str) -> None:
        """Re-key a patient and their visits from `old_ref` to `new_ref` in one transaction,
        and note the pair (a patient already known under `new_ref` keeps that row)."""
        with self._transaction():
            self._db.execute("PRAGMA defer_foreign_keys = ON")
            known = self._db.execute(
                "SELECT 1 FROM patients WHERE patient_ref = ?", (new_ref,)
            ).fetchone()
            if known:
                self._db.execute(
                    "UPDATE visits SET patient_ref = ? WHERE patient_ref = ?", (new_ref, old_ref)
                )
                self._db.execute("DELETE FROM patients WHERE patient_ref = ?", (old_ref,))
            else:
                self._db.execute(
                    "UPDATE patients SET patient_ref = ? WHERE patient_ref = ?", (new_ref, old_ref)
                )
                self._db.execute(
                    "UPDATE visits SET patient_ref = ? WHERE patient_ref = ?", (new_ref, old_ref)
                )
            self._db.execute(
                "INSERT OR REPLACE INTO pseudonym_migrations VALUES (?, ?, ?)",
                (old_ref, new_ref, at),
            )

    def former_refs(self, patient_ref: str) -> list[str]:
        """The pseudonyms a patient had before the migration (records keep them)."""
        rows = self._db.execute(
            "SELECT old_ref FROM pseudonym_migrations WHERE new_ref = ? ORDER BY old_ref",
            (patient_ref,),
        )
        return [str(r[0]) for r in rows]

    # --- helpers ---------------------------------------------------------------------------------

    def _insert_visit(self, visit_no: str, patient_ref: str, admitted_at: str, source: str) -> None:
        try:
            self._db.execute(
                "INSERT INTO visits VALUES (?, ?, ?, ?)",
                (visit_no, patient_ref, admitted_at, source),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"visit {visit_no} exists, or its patient is unknown") from None

    def _insert_details(
        self,
        visit_no: str,
        source: str,
        diagnoses: Sequence[tuple[str, str]],
        examinations: Sequence[tuple[str, str, str]],
        images: Sequence[tuple[str, bytes]],
    ) -> None:
        # A fact already held (a referral back brings the origin's own findings) is not repeated.
        self._db.executemany(
            "INSERT INTO diagnoses SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM diagnoses "
            "WHERE visit_no = ? AND code = ? AND name = ?)",
            [(visit_no, c, n, source, visit_no, c, n) for c, n in diagnoses],
        )
        self._db.executemany(
            "INSERT INTO examinations SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM "
            "examinations WHERE visit_no = ? AND exam_type = ? AND result = ? AND performed_at = ?)",
            [(visit_no, t, r, p, source, visit_no, t, r, p) for t, r, p in examinations],
        )
        self._db.executemany(
            "INSERT INTO images SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM images "
            "WHERE visit_no = ? AND name = ? AND content = ?)",
            [(visit_no, n, c, source, visit_no, n, c) for n, c in images],
        )

    def _insert_referral(self, referral: Referral, status: str) -> None:
        self._db.execute(
            "INSERT INTO referrals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                referral.referral_id,
                referral.visit_no,
                referral.side,
                referral.counterpart,
                referral.direction,
                referral.record_id,
                status,
                referral.tx_id,
                referral.block,
            ),
        )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        if self._db.in_transaction:  # nested: the outer transaction commits
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


def parse_clinical(data: bytes) -> dict[str, Any]:
    """A clinical package's JSON, checked for the fields an import needs."""
    try:
        package = json.loads(data)
        if package["schema"] != SCHEMA:
            raise InvalidArgument(f"clinical package schema {package['schema']!r} is not {SCHEMA}")
        patient = package["patient"]
        for key in ("patientRef", "name", "sex", "birthDate", "idType", "idNumber"):
            if not isinstance(patient[key], str):
                raise KeyError(key)
        for item in package["diagnoses"]:
            str(item["code"]), str(item["name"])
        for item in package["examinations"]:
            str(item["type"]), str(item["result"]), str(item["performedAt"])
        str(package["visit"]["admittedAt"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument(f"malformed clinical package (missing or bad {exc})") from None
    result: dict[str, Any] = package
    return result
