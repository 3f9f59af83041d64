"""The pseudonym migration on an embedded demo alliance: from shared-key pseudonyms to the
service's, visits re-keyed on the chain by their holder, the Patients' pseudonym identifiers in
the clinical store (SQLite and PostgreSQL) rewritten, the key deleted."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.hospital_fixtures import open_store
from tests.networks import DEMO_ALLIANCE

from medalliance.app.alliance_network import EmbeddedAlliance
from medalliance.app.demo_records import admission_bundle
from medalliance.app.hospital_book import HospitalBook
from medalliance.app.pseudonym_migration import migrate_pseudonyms
from medalliance.app.pseudonyms import pseudonym_client
from medalliance.errors import ContractError
from medalliance.hospital.bundle_import import import_bundle
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.identifiers import (
    PSEUDONYM_SYSTEM,
    VISIT_NUMBER_SYSTEM,
    identifier_value,
    with_identifier,
)
from medalliance.node.bootstrap import LEGACY_PSEUDONYM_KEY
from medalliance.node.config import load_network_config
from medalliance.node.embedded import EmbeddedNetwork
from medalliance.privacy.pseudonym import normalise

A, B = "SecondaryAMSP", "TertiaryAMSP"
ID_NUMBER = "11010519491231002X"
NOW = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)


@pytest.fixture
def alliance(tmp_path: Path) -> Iterator[EmbeddedAlliance]:
    with EmbeddedNetwork.open(load_network_config(DEMO_ALLIANCE), tmp_path / "net") as network:
        alliance = EmbeddedAlliance(network, "alliance")
        yield alliance
        alliance.close()


def legacy_ref(key: bytes, number: str) -> str:
    """A pseudonym as earlier versions made it: HMAC-SHA256 under the shared alliance key."""
    message = b"\x00".join(
        (
            b"medalliance/patient-pseudonym/v1",
            b"resident-id",
            normalise("resident-id", number).encode(),
        )
    )
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def visits_of(store: ClinicalStore, patient_ref: str) -> list[str]:
    """The visit numbers of the Patient carrying pseudonym `patient_ref`."""
    found = store.search("Patient", {"identifier": f"{PSEUDONYM_SYSTEM}|{patient_ref}"})
    return sorted(
        identifier_value(e, VISIT_NUMBER_SYSTEM) or "?"
        for p in found
        for e in store.search("Encounter", {"patient": f"Patient/{p['id']}"})
    )


def test_a_hospital_migrates_its_patients_and_deletes_the_old_key(
    alliance: EmbeddedAlliance, database_url: str
) -> None:
    old_key = secrets.token_bytes(32)
    key_file = alliance.layout.org_dir(A) / LEGACY_PSEUDONYM_KEY
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_bytes(old_key)
    old = legacy_ref(old_key, ID_NUMBER)
    store = open_store(database_url, "hospital_a")
    for visit in ("V-1", "V-LOCAL"):  # V-LOCAL is never registered on the chain
        import_bundle(store, admission_bundle(visit, "2026-11-29", patient_id="p-1"))
    store.put(with_identifier(store.get("Patient", "p-1"), PSEUDONYM_SYSTEM, old))
    alliance.submit(A, "Clerk1", "visit", "RegisterVisit", "V-1", old, A)
    client = pseudonym_client(alliance, A, "Clerk1", store)

    done = migrate_pseudonyms(alliance, A, "Clerk1", store, client, NOW)

    new = pseudonym_client(alliance, B, "User1").pseudonym("resident-id", ID_NUMBER)
    assert (done.patients, done.unchanged, done.key_deleted) == (1, 0, True)
    assert (done.visits_moved, done.visits_elsewhere) == (("V-1",), ("V-LOCAL",))
    visit = json.loads(alliance.evaluate(A, "Clerk1", "visit", "GetVisit", "V-1"))
    assert (visit["patientRef"], visit["formerPatientRefs"]) == (new, [old])
    assert visits_of(store, new) == ["V-1", "V-LOCAL"]
    assert visits_of(store, old) == []
    assert HospitalBook(store).former_refs(new) == [old]
    assert not key_file.exists()
    # a second run changes nothing and asks the service for nothing (the cache knows him)
    asked = client.evaluations
    again = migrate_pseudonyms(alliance, A, "Clerk1", store, client, NOW)
    assert (again.patients, again.unchanged, again.visits_moved) == (0, 1, ())
    assert client.evaluations == asked
    store.close()


def test_only_the_holding_hospital_re_keys_a_visit(alliance: EmbeddedAlliance) -> None:
    old = "ab" * 16
    alliance.submit(A, "Clerk1", "visit", "RegisterVisit", "V-2", old, A)
    with pytest.raises(ContractError, match="patient of visit V-2 is at SecondaryAMSP"):
        alliance.submit(B, "User1", "visit", "MovePatientRef", "V-2", old, "cd" * 16)
    visit = json.loads(alliance.evaluate(A, "Clerk1", "visit", "GetVisit", "V-2"))
    assert visit["patientRef"] == old
    assert "formerPatientRefs" not in visit
