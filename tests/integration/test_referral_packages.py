"""The referring side on SQLite and PostgreSQL: the referral Bundle built from the hospital's
store carries the minimum its type needs or exactly what the doctor selects, and a bad request
(another patient's resource, an unknown one, a visit number of another patient) is refused
before anything is built or written."""

from __future__ import annotations

from typing import Any

import pytest
from tests.hospital_fixtures import OTHER_ID, open_store

from medalliance.app.demo_records import admission_bundle, treatment_bundle
from medalliance.app.referral_packages import (
    ReferralDraft,
    build_from_store,
    visit_of_patient,
)
from medalliance.errors import InvalidArgument, NotFound
from medalliance.hospital.bundle_import import import_bundle
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.identifiers import (
    PSEUDONYM_SYSTEM,
    VISIT_NUMBER_SYSTEM,
    identifier_value,
    with_identifier,
)
from medalliance.hospital.referral_bundle import read_referral_bundle

A, B = "SecondaryAMSP", "TertiaryAMSP"
REF, OTHER_REF = "0f" * 16, "1e" * 16


@pytest.fixture
def store(database_url: str) -> ClinicalStore:
    """A's store: patient p-1 (visits V-1, V-2) and patient p-2 (visit V-X), with pseudonyms."""
    found = open_store(database_url, "hospital_a")
    for visit in ("V-1", "V-2"):
        import_bundle(found, admission_bundle(visit, "2026-11-29", patient_id="p-1"))
    import_bundle(found, admission_bundle("V-X", "2026-11-28", patient_id="p-2",
                                          id_number=OTHER_ID, name="李四"))  # fmt: skip
    found.put(with_identifier(found.get("Patient", "p-1"), PSEUDONYM_SYSTEM, REF))
    found.put(with_identifier(found.get("Patient", "p-2"), PSEUDONYM_SYSTEM, OTHER_REF))
    return found


def kinds(bundle: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in bundle["entry"]:
        kind = entry["resource"]["resourceType"]
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def test_the_defaults_of_an_upward_referral_are_the_encounters_findings(
    store: ClinicalStore,
) -> None:
    draft = ReferralDraft("REF-1", B, visit="V-1", priority="urgent", purpose="PCI")
    built = build_from_store(store, draft, from_org=A)
    assert (built.patient_ref, built.visit_number) == (REF, "V-1")
    # the active Conditions of both visits, V-1's encounter and its findings only
    assert kinds(built.bundle) == {"Task": 1, "ServiceRequest": 1, "Patient": 1,
                                   "Organization": 2, "Condition": 4, "Encounter": 1,
                                   "Observation": 2, "DiagnosticReport": 1}  # fmt: skip
    package = read_referral_bundle(
        json_bytes(built.bundle), referral_id="REF-1"
    )  # what the receiver reads
    assert (package.requester, package.owner, package.patient_ref) == (A, B, REF)
    assert package.service_request is not None
    assert package.service_request["note"] == [{"text": "PCI"}]


def test_a_selection_travels_alone(store: ClinicalStore) -> None:
    draft = ReferralDraft("REF-1", B, patient_id="p-1", select=("Condition/v-1-dx-1",))
    built = build_from_store(store, draft, from_org=A)
    assert kinds(built.bundle)["Condition"] == 1
    assert "Observation" not in kinds(built.bundle)
    assert built.visit_number in ("V-1", "V-2")  # the patient's latest visit


def test_a_downward_referral_carries_the_discharge_summary(store: ClinicalStore) -> None:
    import_bundle(store, treatment_bundle("V-1", "p-1", "v-1-enc", "2026-12-01", "home"))
    built = build_from_store(store, ReferralDraft("REF-2", B, visit="V-1", direction="DOWN",
                                                  department="17"), from_org=A)  # fmt: skip
    assert kinds(built.bundle)["DocumentReference"] == 1


REFUSED = {
    "a resource of another patient": (
        ReferralDraft("REF-1", B, patient_id="p-1", select=("Condition/v-x-dx-1",)),
        InvalidArgument, "Patient other than the referred patient"),
    "a resource the store does not hold": (
        ReferralDraft("REF-1", B, patient_id="p-1", select=("Condition/nope",)),
        NotFound, "no Condition/nope"),
    "an encounter of another patient than the one named": (
        ReferralDraft("REF-1", B, patient_id="p-1", encounter_id="v-x-enc"),
        InvalidArgument, "is not of Patient/p-1"),
    "a visit the store does not know": (
        ReferralDraft("REF-1", B, visit="V-404"), NotFound, "no Encounter of visit V-404"),
    "neither patient, encounter nor visit": (
        ReferralDraft("REF-1", B), InvalidArgument, "name the patient"),
    "a selection that is not Type/id": (
        ReferralDraft("REF-1", B, patient_id="p-1", select=("Condition",)),
        InvalidArgument, "give Type/id"),
}  # fmt: skip


@pytest.mark.parametrize(("draft", "error", "message"), REFUSED.values(), ids=list(REFUSED))
def test_a_bad_request_is_refused_before_anything_is_built(
    store: ClinicalStore, draft: ReferralDraft, error: type[Exception], message: str
) -> None:
    before = [store.get("Patient", p) for p in ("p-1", "p-2")]
    with pytest.raises(error, match=message):
        build_from_store(store, draft, from_org=A)
    assert [store.get("Patient", p) for p in ("p-1", "p-2")] == before


def test_registering_a_visit_takes_the_pseudonym_from_the_store(store: ClinicalStore) -> None:
    assert visit_of_patient(store, "V-9", "p-1", None) == REF
    [encounter] = store.search("Encounter", {"identifier": f"{VISIT_NUMBER_SYSTEM}|V-9"})
    assert encounter["subject"] == {"reference": "Patient/p-1"}
    assert visit_of_patient(store, "V-9", "p-1", None) == REF  # again: nothing new
    assert len(store.search("Encounter", {"identifier": f"{VISIT_NUMBER_SYSTEM}|V-9"})) == 1
    before = store.search("Encounter")
    with pytest.raises(InvalidArgument, match="visit V-9 is another patient's"):
        visit_of_patient(store, "V-9", "p-2", None)
    with pytest.raises(InvalidArgument, match="is not of Patient/p-2"):
        visit_of_patient(store, "V-10", "p-2", None, encounter_id="v-1-enc")
    assert store.search("Encounter") == before
    assert identifier_value(store.get("Patient", "p-2"), PSEUDONYM_SYSTEM) == OTHER_REF


def json_bytes(bundle: dict[str, Any]) -> bytes:
    from medalliance.app.referral_packages import bundle_bytes

    return bundle_bytes(bundle)
