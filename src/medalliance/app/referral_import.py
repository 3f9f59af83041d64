"""A received referral Bundle into the hospital's store, with its Provenance; the local Task kept
in step with the chain.

The receiving hospital imports what a referral brought under the source `referral:<id>` (so an
erasure deletes exactly that, `erase_imported`) and adds a `Provenance` whose targets are the
imported resources: recorded when the connector imported it, the origin hospital as the author
agent, and the channel, transaction id and block of the referral as its entity and extensions,
so an integration engineer finds where each resource came from without the chain. The import,
the Provenance, the referral record and the quarantine release are one store transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import closing
from typing import Any

from medalliance.app.hospital_book import HospitalBook, Referral
from medalliance.errors import Conflict
from medalliance.hospital.bundle_import import ImportReport, import_bundle
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.code_systems import REFERRAL_ID_SYSTEM, TASK_STATUS_OF_CHAIN
from medalliance.hospital.referral_bundle import ReferralPackage

ORGANISATION_SYSTEM = "urn:medalliance:id:msp"  # an alliance member by its MSP id
TRANSACTION_SYSTEM = "urn:medalliance:id:transaction"
_EXTENSION = "urn:medalliance:fhir:StructureDefinition/provenance-"
_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"


def source_of_referral(referral_id: str) -> str:
    return f"referral:{referral_id}"


def import_referral(
    store: ClinicalStore,
    referral: Referral,
    package: ReferralPackage,
    *,
    channel: str,
    recorded: str,
) -> list[tuple[str, str]]:
    """Import an incoming referral's Bundle, its Provenance and the referral record in one
    transaction (released from the quarantine if it was there); the (type, id) imported.
    `Conflict` if the referral was imported before; the store's `InvalidArgument` if the
    Bundle's content does not validate (nothing written)."""
    book = HospitalBook(store)
    source = source_of_referral(referral.referral_id)
    with store.transaction():
        if book.has_referral(referral.referral_id):
            raise Conflict(f"referral {referral.referral_id} was already imported")
        report = import_bundle(store, scoped(package.bundle), source=source)
        imported = _imported(report)
        store.put(provenance(referral, imported, channel=channel, recorded=recorded), source=source)
        book.note_referral(referral)
        book.release(referral.referral_id)
    return imported


def import_feedback(
    store: ClinicalStore, referral_id: str, record_id: str, package: ReferralPackage
) -> list[tuple[str, str]]:
    """Import the feedback Bundle of an outgoing referral under `feedback:<id>` (its Task, now
    completed, replaces the one the referral Bundle had), noted once, one transaction."""
    book = HospitalBook(store)
    with store.transaction():
        report = import_bundle(store, scoped(package.bundle), source=f"feedback:{referral_id}")
        book.note_feedback(referral_id, record_id)
        book.release(referral_id)
    return _imported(report)


def scoped(bundle: dict[str, Any]) -> dict[str, Any]:
    """The Bundle with each resource's id set to its entry's `urn:uuid:` (derived from the
    referral id by the sender's builder), so an imported resource can never take the id of one
    the hospital holds itself: what a referral brings stays its own, and erasing it deletes
    nothing else."""
    entries = []
    for entry in bundle.get("entry") or ():
        url, resource = entry.get("fullUrl"), entry.get("resource")
        if isinstance(url, str) and url.startswith("urn:uuid:") and isinstance(resource, dict):
            entry = {**entry, "resource": {**resource, "id": url.removeprefix("urn:uuid:")}}
        entries.append(entry)
    return {**bundle, "entry": entries}


def provenance(
    referral: Referral, targets: Iterable[tuple[str, str]], *, channel: str, recorded: str
) -> dict[str, Any]:
    """The Provenance of what referral `referral` brought (pure)."""
    where = f"channel {channel}, block {referral.block}, transaction {referral.tx_id}"
    return {
        "resourceType": "Provenance",
        "id": f"referral-{referral.referral_id}"[:64],
        "target": [{"reference": f"{kind}/{rid}"} for kind, rid in targets],
        "recorded": recorded,
        "activity": {"coding": [{"system": _OPERATION, "code": "CREATE"}]},
        "reason": [{"text": f"{referral.direction} referral {referral.referral_id}"}],
        "agent": [
            {
                "type": {"coding": [{"system": _PARTICIPANT, "code": "author"}]},
                "who": {
                    "identifier": {"system": ORGANISATION_SYSTEM, "value": referral.counterpart},
                    "display": referral.counterpart,
                },
            }
        ],
        "entity": [
            {
                "role": "source",
                "what": {
                    "identifier": {"system": REFERRAL_ID_SYSTEM, "value": referral.referral_id},
                    "display": f"the sealed referral package, record {referral.record_id}; {where}",
                },
            }
        ],
        "extension": [
            {"url": f"{_EXTENSION}channel", "valueString": channel},
            {"url": f"{_EXTENSION}transaction", "valueString": referral.tx_id},
            {"url": f"{_EXTENSION}block", "valueUnsignedInt": referral.block},
        ],
    }


def referral_task(store: ClinicalStore, referral_id: str) -> dict[str, Any] | None:
    """The hospital's Task of a referral (its REFERRAL_ID_SYSTEM identifier), if it holds one."""
    found = store.search("Task", {"identifier": f"{REFERRAL_ID_SYSTEM}|{referral_id}"})
    return found[0] if found else None


def follow_status(store: ClinicalStore, referral_id: str, status: str) -> bool:
    """Keep the referral's record and its local Task in step with the chain's `status`, in one
    transaction; False if this hospital does not hold the referral."""
    with store.transaction():
        if not HospitalBook(store).set_status(referral_id, status):
            return False
        task = referral_task(store, referral_id)
        wanted = TASK_STATUS_OF_CHAIN.get(status)
        if task is not None and wanted is not None and task.get("status") != wanted:
            kept = store.source_of("Task", task["id"]) or "local"
            store.put({**task, "status": wanted}, source=kept)
        return True


def _imported(report: ImportReport) -> list[tuple[str, str]]:
    """(type, id) of each resource an import wrote or already held, in a stable order."""
    keys = sorted({*report.created, *report.updated, *report.unchanged})
    return [(key.split("/", 1)[0], key.split("/", 1)[1]) for key in keys]


def erase_imported(store: ClinicalStore, record_id: str) -> int:
    """Crypto-shredding reaches the hospital's copy: delete what the referrals that brought the
    erased record `record_id` imported (their source), keeping what the hospital holds itself;
    the referral records stay (ids and status, no clinical content). How many were cleared."""
    cleared = 0
    with store.transaction():
        for referral_id in HospitalBook(store).incoming_of_record(record_id):
            if store.delete_source(source_of_referral(referral_id)):
                cleared += 1
    if cleared and not store.url.is_postgres and store.url.path is not None:
        # secure_delete zeroes the freed pages; the write-ahead log still holds the imported
        # ones until a checkpoint, so fold it into the file and truncate it now.
        with closing(sqlite3.connect(store.url.path)) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return cleared
