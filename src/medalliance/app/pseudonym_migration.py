"""Moving a hospital from the shared-key pseudonyms of earlier versions to the OPRF service's.

For every Patient of the hospital's clinical store that carries a pseudonym identifier: the new
pseudonym through the service (app/pseudonyms.py) from the Patient's identity
(`identifiers.patient_identity`), each visit (an Encounter's visit-number identifier) the
hospital holds on the chain re-keyed by the `visit` contract's `MovePatientRef` (only the holding
hospital may; the old pseudonym stays in the visit's `formerPatientRefs`, so the history links),
then the Patient's PSEUDONYM_SYSTEM identifier rewritten and old → new noted, one transaction. When every patient is done, the hospital's copy of the shared HMAC key is
deleted. Re-running is safe: a patient already on the new pseudonym is left alone, a visit
already moved is not moved twice. docs/privacy.md §4 says what stays under the old pseudonyms.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

from medalliance.app.alliance_network import AllianceNetwork
from medalliance.app.hospital_book import HospitalBook
from medalliance.app.pseudonyms import PseudonymClient
from medalliance.errors import ContractError
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.identifiers import (
    PSEUDONYM_SYSTEM,
    VISIT_NUMBER_SYSTEM,
    identifier_value,
    patient_identity,
    with_identifier,
)
from medalliance.node.bootstrap import LEGACY_PSEUDONYM_KEY

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Migration:
    """What a run did: patients re-keyed, visits moved on the chain, visits left to the
    hospital that holds them now, and whether the old key file was deleted."""

    patients: int
    unchanged: int
    visits_moved: tuple[str, ...]
    visits_elsewhere: tuple[str, ...]
    key_deleted: bool


def migrate_pseudonyms(
    network: AllianceNetwork,
    org: str,
    user: str,
    store: ClinicalStore,
    pseudonyms: PseudonymClient,
    now: dt.datetime,
) -> Migration:
    """Migrate every patient of `store` (the clinical store of `org`), as `user` (a doctor or
    clerk). Raises what the service or a contract raises; what was done before stays done."""
    msp_id = network.layout.config.organization(org).msp_id
    patients = _pseudonymous_patients(store)
    new_refs = pseudonyms.pseudonyms([identity for _, _, identity in patients])
    renamed, moved, elsewhere = 0, [], []
    for (patient, old_ref, _), new_ref in zip(patients, new_refs, strict=True):
        if old_ref == new_ref:
            continue
        for visit_no in _visits_of(store, patient["id"]):
            if _move(network, org, user, msp_id, visit_no, old_ref, new_ref):
                moved.append(visit_no)
            else:
                elsewhere.append(visit_no)
        with store.transaction():
            kept = store.source_of("Patient", patient["id"]) or "local"
            store.put(with_identifier(patient, PSEUDONYM_SYSTEM, new_ref), source=kept)
            HospitalBook(store).note_migration(old_ref, new_ref, now.isoformat())
        renamed += 1
    key = network.layout.org_dir(msp_id) / LEGACY_PSEUDONYM_KEY
    existed = key.exists()
    key.unlink(missing_ok=True)
    log.info(
        "pseudonyms migrated",
        extra={"org": msp_id, "patients": renamed, "visits": len(moved), "key_deleted": existed},
    )
    return Migration(
        renamed, len(patients) - renamed, tuple(moved), tuple(elsewhere), key_deleted=existed
    )


def _pseudonymous_patients(
    store: ClinicalStore,
) -> list[tuple[dict[str, Any], str, tuple[str, str]]]:
    """(Patient, its pseudonym, its identity) of every Patient carrying both."""
    found = []
    for patient in store.search("Patient"):
        ref, identity = identifier_value(patient, PSEUDONYM_SYSTEM), patient_identity(patient)
        if ref is not None and identity is not None:
            found.append((patient, ref, identity))
    return found


def _visits_of(store: ClinicalStore, patient_id: str) -> list[str]:
    """The visit numbers of the patient's Encounters."""
    visits = (
        identifier_value(encounter, VISIT_NUMBER_SYSTEM)
        for encounter in store.search("Encounter", {"patient": f"Patient/{patient_id}"})
    )
    return sorted(v for v in visits if v is not None)


def _move(
    network: AllianceNetwork,
    org: str,
    user: str,
    msp_id: str,
    visit_no: str,
    old_ref: str,
    new_ref: str,
) -> bool:
    """Re-key one visit on the chain; False when another hospital holds it now (it re-keys
    its visits itself) or the chain does not know it."""
    try:
        visit = json.loads(network.evaluate(org, user, "visit", "GetVisit", visit_no))
    except ContractError as exc:
        if exc.status_code == 404:  # a local visit never registered on the chain
            return False
        raise
    if visit["hospital"] != msp_id:
        return False
    if visit["patientRef"] == old_ref:
        network.submit(org, user, "visit", "MovePatientRef", visit_no, old_ref, new_ref)
    return visit["patientRef"] in (old_ref, new_ref)
