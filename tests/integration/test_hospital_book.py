"""The connector's side of the hospital store, on SQLite and on PostgreSQL: a referral Bundle is
imported whole with its Provenance, once, or not at all; the bookkeeping (referrals, checkpoint,
quarantine) survives reopening; an erasure deletes what the referral brought and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.hospital_fixtures import OTHER_ID, open_store

from medalliance.app.demo_records import admission_bundle
from medalliance.app.hospital_book import HospitalBook, Referral
from medalliance.app.quarantine import Quarantined
from medalliance.app.referral_import import (
    erase_imported,
    follow_status,
    import_referral,
    referral_task,
)
from medalliance.app.referral_packages import ReferralDraft, build_from_store, bundle_bytes
from medalliance.errors import Conflict, InvalidArgument
from medalliance.hospital.bundle_import import import_bundle
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.identifiers import PSEUDONYM_SYSTEM, with_identifier
from medalliance.hospital.referral_bundle import read_referral_bundle

REF = "0f" * 16
AT = "2026-12-03T12:00:00+00:00"
REFERRAL = Referral("REF-1", "V-1", "incoming", "SecondaryAMSP", "UP", "R-1", "ab" * 32, 7)


def referral_bundle(database_url: str) -> bytes:
    """The origin's referral Bundle of visit V-1 (built from its own store)."""
    origin = open_store(database_url, "origin")
    import_bundle(origin, admission_bundle("V-1", "2026-11-29", patient_id="p-1"))
    origin.put(with_identifier(origin.get("Patient", "p-1"), PSEUDONYM_SYSTEM, REF))
    draft = ReferralDraft("REF-1", "TertiaryAMSP", encounter_id="v-1-enc")
    built = build_from_store(origin, draft, from_org="SecondaryAMSP")
    origin.close()
    return bundle_bytes(built.bundle)


def everything(store: ClinicalStore) -> dict[str, Any]:
    kinds = ("Patient", "Encounter", "Condition", "Observation", "DiagnosticReport", "Task",
             "ServiceRequest", "Provenance", "Organization")  # fmt: skip
    resources = {k: sorted(r["id"] for r in store.search(k)) for k in kinds}
    book = HospitalBook(store)
    return {"resources": resources, "referrals": book.referrals(), "quarantine": book.quarantined()}


def test_a_referral_bundle_imports_whole_with_its_provenance_once(database_url: str) -> None:
    package = read_referral_bundle(referral_bundle(database_url), referral_id="REF-1")
    target = open_store(database_url, "target")
    imported = import_referral(
        target, REFERRAL, package, channel="alliance", recorded="2026-12-03T12:00:00+00:00"
    )
    kinds = sorted({kind for kind, _ in imported})
    assert kinds == ["Condition", "DiagnosticReport", "Encounter", "Observation",
                     "Organization", "Patient", "ServiceRequest", "Task"]  # fmt: skip
    provenance = target.get("Provenance", "referral-REF-1")
    assert sorted(t["reference"] for t in provenance["target"]) == sorted(
        f"{k}/{i}" for k, i in imported
    )
    assert provenance["recorded"].startswith("2026-12-03T12:00:00")
    # imported resources take the ids the sender's builder derived from the referral, never
    # the sender's own ids: a Bundle cannot overwrite what the hospital holds
    assert "p-1" not in [p["id"] for p in target.search("Patient")]
    before = everything(target)
    with pytest.raises(Conflict, match="referral REF-1 was already imported"):
        import_referral(target, REFERRAL, package, channel="alliance", recorded=AT)
    assert everything(target) == before


BROKEN: dict[str, Callable[[dict[str, Any]], None]] = {
    "an Observation whose status is outside its value set": lambda b: _first(b, "Observation")
    .update(status="bogus"),
    "a Condition without a subject": lambda b: _first(b, "Condition").pop("subject"),
    "a reference to an entry the Bundle does not hold": lambda b: _first(b, "Observation")
    .update(encounter={"reference": "urn:uuid:00000000-0000-0000-0000-000000000000"}),
}  # fmt: skip


@pytest.mark.parametrize("breaks", BROKEN.values(), ids=list(BROKEN))
def test_a_bundle_the_store_refuses_writes_nothing(
    database_url: str, breaks: Callable[[dict[str, Any]], None]
) -> None:
    package = read_referral_bundle(referral_bundle(database_url), referral_id="REF-1")
    breaks(package.bundle)
    target = open_store(database_url, "target")
    book = HospitalBook(target)
    at = "2026-12-03T12:00:00+00:00"
    book.quarantine(
        Quarantined("REF-1", "R-1", "tx", 7, "earlier", at, at, {"referralId": "REF-1"})
    )
    before = everything(target)
    with pytest.raises(InvalidArgument):
        import_referral(target, REFERRAL, package, channel="alliance", recorded=at)
    assert everything(target) == before  # nor the record, nor the quarantine release


def test_the_task_follows_the_chain_and_the_book_survives_reopening(database_url: str) -> None:
    package = read_referral_bundle(referral_bundle(database_url), referral_id="REF-1")
    target = open_store(database_url, "target")
    import_referral(target, REFERRAL, package, channel="alliance", recorded=AT)
    for status, task_status in (("ACCEPTED", "accepted"), ("COMPLETED", "completed")):
        assert follow_status(target, "REF-1", status)
        task = referral_task(target, "REF-1")
        assert task is not None
        assert task["status"] == task_status
    assert not follow_status(target, "REF-9", "ACCEPTED")  # not this hospital's
    book = HospitalBook(target)
    at = "2026-12-03T12:00:00+00:00"
    entry = Quarantined(
        "REF-2", "R-2", "tx2", 9, "InvalidBundle: x", at, at, {"referralId": "REF-2"}
    )
    book.set_last_block(9, [entry])
    book.quarantine(entry.attempted("InvalidBundle: y", "2026-12-03T13:00:00+00:00"))
    target.close()
    reopened = HospitalBook(open_store(database_url, "target"))
    assert reopened.last_block() == 9
    assert [r["status"] for r in reopened.referrals()] == ["COMPLETED"]
    [kept] = reopened.quarantined()
    assert (kept.first_attempt, kept.last_attempt, kept.reason) == (
        at, "2026-12-03T13:00:00+00:00", "InvalidBundle: y"
    )  # fmt: skip


def test_an_erased_record_leaves_no_imported_copy_and_keeps_own_data(
    database_url: str, tmp_path: Path
) -> None:
    package = read_referral_bundle(referral_bundle(database_url), referral_id="REF-1")
    target = open_store(database_url, "target")
    import_bundle(target, admission_bundle("V-OWN", "2026-11-30", patient_id="own",
                                           id_number=OTHER_ID, name="李四"))  # fmt: skip
    own = everything(target)["resources"]
    import_referral(target, REFERRAL, package, channel="alliance", recorded=AT)
    assert erase_imported(target, "R-other") == 0
    assert erase_imported(target, "R-1") == 1
    assert everything(target)["resources"] == {**own, "Organization": []}
    assert [r["referralId"] for r in HospitalBook(target).referrals()] == ["REF-1"]  # the trace
    target.close()
    if database_url.startswith("sqlite"):
        disk = b"".join(p.read_bytes() for p in tmp_path.glob("store.db-target*"))
        assert "张三".encode() not in disk
        assert b"11010519491231002X" not in disk
        assert "李四".encode() in disk  # positive control: the scan finds what is there


def _first(bundle: dict[str, Any], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind
    )
    return found


def test_a_page_of_referrals_is_newest_first_by_side(database_url: str) -> None:
    store = open_store(database_url, "book-pages")
    book = HospitalBook(store)
    for n, side in enumerate(["incoming", "outgoing", "incoming", "incoming"]):
        book.note_referral(
            Referral(f"REF-{n}", f"V-{n}", side, "X", "UP", f"R-{n}", "ab" * 32, 10 - n)
        )
    store.delete_record("connector.referral.order", "incoming:000000000010:REF-0")  # an older store
    docs, total = book.referral_page("incoming", 0, 2)
    assert ([d["referral_id"] for d in docs], total) == (["REF-0", "REF-2"], 3)
    docs, _ = book.referral_page("incoming", 2, 2)
    assert [d["referral_id"] for d in docs] == ["REF-3"]
    store.close()
