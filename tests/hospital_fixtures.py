"""Hospitals of an embedded alliance with FHIR clinical stores, for connector and app tests:
admit a patient (an admission Bundle imported with its pseudonym), share a BSeR referral Bundle
built from the store, get the approval, refer."""

from __future__ import annotations

import json

from medalliance.app.alliance_network import EmbeddedAlliance
from medalliance.app.demo_records import DEMO_PATIENT, admission_bundle
from medalliance.app.pseudonyms import PseudonymClient, pseudonym_client
from medalliance.app.referral_packages import (
    ReferralDraft,
    build_from_store,
    bundle_bytes,
    seal_and_share,
)
from medalliance.hospital.bundle_import import import_bundle
from medalliance.hospital.clinical_store import ClinicalStore

A, B, B2, C = "SecondaryAMSP", "TertiaryAMSP", "TertiaryBMSP", "DistrictHCMSP"
ID_NUMBER = DEMO_PATIENT["idNumber"]  # GB 11643's example number
OTHER_ID = "110101199003074514"


def open_store(database_url: str, name: str) -> ClinicalStore:
    """Hospital `name`'s store on the test's database: its own file, or its own schema."""
    if database_url.startswith("sqlite"):
        return ClinicalStore.open(f"{database_url}-{name}")
    return ClinicalStore.open(database_url, schema=name)


def key(alliance: EmbeddedAlliance, org: str) -> PseudonymClient:
    """A hospital's client of the regulator's pseudonym service (no cache: every call asks)."""
    return pseudonym_client(alliance, org, "User1")


def encounter_of(visit: str) -> str:
    return f"{visit.lower()}-enc"


def admit(
    alliance: EmbeddedAlliance,
    store: ClinicalStore,
    visit: str,
    *,
    patient_id: str = "p-1",
    id_number: str = ID_NUMBER,
    register: bool = True,
) -> str:
    """A's patient admitted for `visit` (imported into A's store, visit registered on the
    chain); the patient's pseudonym."""
    bundle = admission_bundle(visit, "2026-11-29", patient_id=patient_id, id_number=id_number)
    report = import_bundle(store, bundle, pseudonym=key(alliance, A).pseudonym)
    ref = dict(report.patients)[patient_id]
    if register:
        alliance.submit(A, "User1", "visit", "RegisterVisit", visit, ref, A)
    return ref


def referral_bytes(store: ClinicalStore, referral: str, visit: str, to: str) -> bytes:
    """The referral Bundle of `referral` for `visit` from A's store."""
    draft = ReferralDraft(referral, to, encounter_id=encounter_of(visit), purpose="PCI")
    return bundle_bytes(build_from_store(store, draft, from_org=A).bundle)


def approved(alliance: EmbeddedAlliance, app_id: str, visit: str, to: str, record: str) -> None:
    alliance.submit(A, "User1", "report", "SubmitApplication", app_id, visit, to, record)
    alliance.submit(C, "Reviewer1", "report", "ReviewApplication", app_id, "APPROVED", "", "")


def prepared(
    alliance: EmbeddedAlliance, store: ClinicalStore, visit: str, to: str, referral: str
) -> str:
    """A visit with its referral Bundle for `referral` shared with `to` as R-<visit> and an
    approved APP-<visit>; the patient's pseudonym."""
    ref = admit(alliance, store, visit)
    data = referral_bytes(store, referral, visit, to)
    seal_and_share(alliance, A, "User1", [to], f"R-{visit}", ref, data)
    approved(alliance, f"APP-{visit}", visit, to, f"R-{visit}")
    return ref


def refer(alliance: EmbeddedAlliance, referral: str, visit: str, to: str) -> None:
    alliance.submit(A, "User1", "referral", "Refer", referral, f"APP-{visit}", visit, A, to, "UP",
                    f"R-{visit}")  # fmt: skip


def access_log(alliance: EmbeddedAlliance, record: str) -> list[tuple[str, str]]:
    log = json.loads(alliance.evaluate(C, "Auditor1", "records", "AccessLog", record))
    return [(e["action"], e["org"]) for e in log]
