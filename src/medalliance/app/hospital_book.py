"""The connector's bookkeeping, kept as application records of the hospital's clinical store.

The referrals the hospital made or received (side, counterpart, status, record, transaction,
block), the last block the connector finished, the quarantine (app/quarantine.py) and the
pseudonym migrations (old → new) live in the same database as the FHIR resources, on SQLite or
PostgreSQL alike, so an import, its referral record and the checkpoint share one transaction
(`store.transaction()`). None of it is clinical: ids, statuses and reasons only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from medalliance.app.quarantine import Quarantined
from medalliance.hospital.clinical_store import ClinicalStore

REFERRAL, CHECKPOINT, QUARANTINE, FEEDBACK, MIGRATION, TX = (
    "connector.referral",
    "connector.checkpoint",
    "connector.quarantine",
    "connector.feedback",
    "pseudonym.migration",
    "connector.tx",
)
# The referrals in list order: key "<side>:<block, 12 digits>:<referral id>" (no document
# content), so a page of a side's newest referrals reads a page of keys, not every referral.
ORDER = "connector.referral.order"


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


class HospitalBook:
    """The bookkeeping records of one hospital's store."""

    def __init__(self, store: ClinicalStore) -> None:
        self.store = store

    # --- referrals -------------------------------------------------------------------------------

    def has_referral(self, referral_id: str) -> bool:
        return self.store.get_record(REFERRAL, referral_id) is not None

    def referral(self, referral_id: str) -> dict[str, Any] | None:
        """The referral's record (its `Referral` fields and `status`), or None."""
        return self.store.get_record(REFERRAL, referral_id)

    def note_referral(self, referral: Referral, status: str = "REFERRED") -> bool:
        """Note a referral made or received; False if it was noted before."""
        with self.store.transaction():
            if self.has_referral(referral.referral_id):
                return False
            self.store.set_record(
                REFERRAL, referral.referral_id, {**asdict(referral), "status": status}
            )
            self.store.set_record(ORDER, _order_key(asdict(referral)), {})
            return True

    def set_status(self, referral_id: str, status: str) -> bool:
        """Follow a referral's status; False if this hospital does not hold the referral."""
        with self.store.transaction():
            found = self.referral(referral_id)
            if found is None:
                return False
            self.store.set_record(REFERRAL, referral_id, {**found, "status": status})
            return True

    def referrals(self) -> list[dict[str, Any]]:
        """Every referral as {referralId, visitNo, side, counterpart, direction, recordId,
        status}, in chain order."""
        rows = sorted((doc for _, doc in self.store.records(REFERRAL)), key=_chain_order)
        return [
            {
                "referralId": r["referral_id"],
                "visitNo": r["visit_no"],
                "side": r["side"],
                "counterpart": r["counterpart"],
                "direction": r["direction"],
                "recordId": r["record_id"],
                "status": r["status"],
            }
            for r in rows
        ]

    def referral_page(self, side: str, offset: int, count: int) -> tuple[list[dict[str, Any]], int]:
        """A page of one side's referral records, newest (highest block) first, and how many
        the side holds. Builds the order index once for a store written before it existed."""
        with self.store.transaction():
            if self.store.count_records(ORDER) != self.store.count_records(REFERRAL):
                for _, doc in self.store.records(REFERRAL):
                    self.store.set_record(ORDER, _order_key(doc), {})
        keys = self.store.record_keys(ORDER, f"{side}:", offset=offset, limit=count,
                                      descending=True)  # fmt: skip
        found = [self.referral(key.rsplit(":", 1)[1]) for key in keys]
        return [doc for doc in found if doc is not None], self.store.count_records(
            ORDER, f"{side}:"
        )

    def incoming_of_record(self, record_id: str) -> list[str]:
        """The incoming referrals that brought record `record_id`."""
        return sorted(
            doc["referral_id"]
            for _, doc in self.store.records(REFERRAL)
            if doc["record_id"] == record_id and doc["side"] == "incoming"
        )

    def note_feedback(self, referral_id: str, record_id: str) -> None:
        """The feedback of an outgoing referral is imported (or there was none: "")."""
        self.store.set_record(FEEDBACK, referral_id, {"record_id": record_id})

    def feedback_imported(self, referral_id: str) -> bool:
        return self.store.get_record(FEEDBACK, referral_id) is not None

    def note_tx(self, tx_id: str, block: int) -> None:
        """The block of a transaction of the hospital's referrals (a timeline names it)."""
        self.store.set_record(TX, tx_id, {"block": block})

    def tx_block(self, tx_id: str) -> int | None:
        found = self.store.get_record(TX, tx_id)
        return None if found is None else int(found["block"])

    # --- the checkpoint and the quarantine ---------------------------------------------------------

    def last_block(self) -> int:
        """The last block the connector finished (-1 before the first)."""
        found = self.store.get_record(CHECKPOINT, "last_block")
        return -1 if found is None else int(found["block"])

    def set_last_block(self, number: int, quarantined: Sequence[Quarantined] = ()) -> None:
        """Finish block `number`: its quarantined referrals and the checkpoint, one transaction,
        so a killed connector neither loses nor doubles a quarantine entry."""
        with self.store.transaction():
            for entry in quarantined:
                self.quarantine(entry)
            self.store.set_record(CHECKPOINT, "last_block", {"block": number})

    def quarantine(self, entry: Quarantined) -> None:
        """Note (or update, keeping the first attempt) a quarantined referral."""
        with self.store.transaction():
            known = self.store.get_record(QUARANTINE, entry.referral_id)
            first = entry.first_attempt if known is None else known["first_attempt"]
            self.store.set_record(
                QUARANTINE, entry.referral_id, {**asdict(entry), "first_attempt": first}
            )

    def quarantined(self, referral_id: str | None = None) -> list[Quarantined]:
        """The quarantined referrals (or the one named), in chain order."""
        if referral_id is not None:
            found = self.store.get_record(QUARANTINE, referral_id)
            return [] if found is None else [Quarantined(**found)]
        docs = sorted((doc for _, doc in self.store.records(QUARANTINE)), key=_chain_order)
        return [Quarantined(**doc) for doc in docs]

    def release(self, referral_id: str) -> bool:
        """Take a referral out of the quarantine (inside its import's transaction)."""
        return self.store.delete_record(QUARANTINE, referral_id)

    # --- the pseudonym migration (docs/privacy.md §4) ----------------------------------------------

    def note_migration(self, old_ref: str, new_ref: str, at: str) -> None:
        self.store.set_record(MIGRATION, old_ref, {"new_ref": new_ref, "migrated_at": at})

    def former_refs(self, patient_ref: str) -> list[str]:
        """The pseudonyms a patient had before the migration (records keep them)."""
        return sorted(
            old for old, doc in self.store.records(MIGRATION) if doc["new_ref"] == patient_ref
        )


def _order_key(doc: dict[str, Any]) -> str:
    return f"{doc['side']}:{int(doc['block']):012d}:{doc['referral_id']}"


def _chain_order(doc: dict[str, Any]) -> tuple[int, str]:
    return int(doc["block"]), str(doc["referral_id"])
