"""The patients of a hospital, as its staff see them in the web client: the list and search, one
patient's record, what can travel with a referral, and registering a visit (就诊).

Reads only the staff member's own hospital's store (there is no parameter naming another), so
another hospital's patients cannot be listed or probed: an unknown id is `NotAtThisHospital`.
Every view of a patient's clinical data is written to the hospital's own access log before it is
returned (hospital_access.py `log_access`). Registering a visit puts the patient's pseudonym, never
the identity, on the chain (visit contract), as `medalliance visit register` does.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from medalliance.app.pseudonyms import pseudonym_client
from medalliance.app.referral_packages import encounter_of_visit, visit_of_patient
from medalliance.errors import Conflict, ContractError
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.identifiers import VISIT_NUMBER_SYSTEM, identifier_value
from medalliance.hospital.summaries import (
    ClinicalLine,
    EncounterRow,
    PatientRow,
    clinical_line,
    patient_rows,
    patient_summary,
)
from medalliance.web.i18n import N_
from medalliance.web.services.hospital_access import (
    CLERK_ROLES,
    HospitalBackend,
    NotAtThisHospital,
    Staff,
    evaluate_json,
    hospital_store,
    log_access,
    require_hospital_role,
    submit,
)
from medalliance.web.services.hospital_forms import FormInvalid, PatientSearch, VisitForm

__all__ = [
    "PatientRecord",
    "RecordChoice",
    "VisitRegistered",
    "patient_record",
    "record_choices",
    "register_visit",
    "search_patients",
]

READ_ROLES = ("doctor", "clerk")
# What a doctor may select for a referral package (checkboxes), in the order the form shows.
SELECTABLE = (
    "Condition", "Encounter", "Observation", "DiagnosticReport", "ImagingStudy",
    "DocumentReference", "Procedure", "MedicationRequest",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RecordChoice:
    """One record or image of a patient a referral may carry: `reference` is "Type/id"."""

    reference: str
    kind: str
    text: str
    date: str


@dataclass(frozen=True, slots=True)
class PatientRecord:
    patient: PatientRow
    encounters: tuple[EncounterRow, ...]
    conditions: tuple[ClinicalLine, ...]
    observations: tuple[ClinicalLine, ...]
    reports: tuple[ClinicalLine, ...]  # DiagnosticReports
    images: tuple[ClinicalLine, ...]  # ImagingStudies
    documents: tuple[ClinicalLine, ...]  # DocumentReferences
    visits: tuple[str, ...]  # the visit numbers of the patient's encounters


@dataclass(frozen=True, slots=True)
class VisitRegistered:
    visit_no: str
    encounter_id: str
    tx_id: str
    block: int


def search_patients(
    backend: HospitalBackend, staff: Staff, search: PatientSearch
) -> tuple[PatientRow, ...]:
    """The hospital's patients matching a name part and/or an identifier (all when both are
    empty), by id. A list shows names: it is an access event of its own."""
    require_hospital_role(backend, staff, "list patients", READ_ROLES)
    store = hospital_store(backend, staff)
    params = {k: v for k, v in (("name", search.name), ("identifier", search.identifier)) if v}
    if params:
        found = store.search("Patient", params)
        rows = tuple(r for r in patient_rows(store) if r.id in {p["id"] for p in found})
    else:
        rows = tuple(patient_rows(store))
    log_access(store, staff, "Patient?list", "patient list")
    return rows


def patient_record(backend: HospitalBackend, staff: Staff, patient_id: str) -> PatientRecord:
    """One patient's record in short; logged as an access before it is returned."""
    require_hospital_role(backend, staff, "open a patient's record", READ_ROLES)
    store = hospital_store(backend, staff)
    if store.find("Patient", patient_id) is None:
        raise NotAtThisHospital("such patient")
    log_access(store, staff, f"Patient/{patient_id}", "patient record")
    summary = patient_summary(store, patient_id)
    mine = {"patient": patient_id}
    return PatientRecord(
        patient=summary.patient,
        encounters=summary.encounters,
        conditions=summary.conditions,
        observations=summary.observations,
        reports=tuple(clinical_line(r) for r in store.search("DiagnosticReport", mine)),
        images=tuple(_image(r) for r in store.search("ImagingStudy", mine)),
        documents=tuple(_document(r) for r in store.search("DocumentReference", mine)),
        visits=tuple(_visit_numbers(store, patient_id)),
    )


def record_choices(
    backend: HospitalBackend, staff: Staff, patient_id: str
) -> tuple[RecordChoice, ...]:
    """What the referral form offers as checkboxes for this patient."""
    require_hospital_role(backend, staff, "prepare a referral", READ_ROLES)
    store = hospital_store(backend, staff)
    if store.find("Patient", patient_id) is None:
        raise NotAtThisHospital("such patient")
    log_access(store, staff, f"Patient/{patient_id}", "referral form")
    choices = []
    for kind in SELECTABLE:
        for resource in store.search(kind, {"patient": patient_id}):
            line = _LINES.get(kind, clinical_line)(resource)
            text = line.text or kind
            choices.append(RecordChoice(f"{kind}/{resource['id']}", kind, text, line.date))
    return tuple(choices)


def register_visit(backend: HospitalBackend, staff: Staff, form: VisitForm) -> VisitRegistered:
    """Register a visit of a patient of the store: an Encounter with the visit number locally and
    the visit (number + pseudonym) on the chain. `Conflict` if the number is taken on the chain
    (checked first, so nothing is written locally)."""
    require_hospital_role(backend, staff, "register a visit", CLERK_ROLES)
    store = hospital_store(backend, staff)
    if store.find("Patient", form.patient_id) is None:
        raise FormInvalid({"patient_id": N_("no such patient at your hospital")})
    visit_no = form.visit_no or f"V-{secrets.token_hex(5).upper()}"
    try:
        evaluate_json(backend, staff, "visit", "GetVisit", visit_no)
    except ContractError:
        pass  # not on the chain: free to register
    else:
        raise Conflict(f"visit {visit_no} is already registered; choose another visit number")
    pseudonyms = pseudonym_client(backend.network, staff.msp_id, staff.identity, store)
    ref = visit_of_patient(store, visit_no, form.patient_id, pseudonyms)
    done = submit(backend, staff, "visit", "RegisterVisit", visit_no, ref, staff.msp_id)
    encounter = str(encounter_of_visit(store, visit_no)["id"])
    return VisitRegistered(visit_no, encounter, done.tx_id, done.block)


def _image(study: dict[str, Any]) -> ClinicalLine:
    """An ImagingStudy's line: modality and description (the images stay in the store)."""
    modalities = ", ".join(str(m.get("code", "")) for m in study.get("modality") or ())
    text = str(study.get("description") or "") or modalities or "ImagingStudy"
    count = study.get("numberOfInstances")
    value = f"{modalities} · {count} image(s)" if count else modalities
    return ClinicalLine(str(study["id"]), modalities, text, value, str(study.get("started", "")),
                        str(study.get("status", "")))  # fmt: skip


def _document(document: dict[str, Any]) -> ClinicalLine:
    """A DocumentReference's line: its type and title, never its content."""
    kind = document.get("type") or {}
    codings = kind.get("coding") or [{}]
    titles = [str((c.get("attachment") or {}).get("title", "")) for c in document.get("content") or ()]  # fmt: skip
    text = str(kind.get("text") or codings[0].get("display") or "") or "DocumentReference"
    return ClinicalLine(str(document["id"]), str(codings[0].get("code", "")), text,
                        "; ".join(t for t in titles if t), str(document.get("date", "")),
                        str(document.get("status", "")))  # fmt: skip


def _encounter(encounter: dict[str, Any]) -> ClinicalLine:
    """An Encounter's line: its visit number, class and start."""
    period = encounter.get("period") or {}
    visit = identifier_value(encounter, VISIT_NUMBER_SYSTEM) or ""
    kind = str((encounter.get("class") or {}).get("display") or "")
    text = " ".join(t for t in (visit, kind) if t) or str(encounter["id"])
    return ClinicalLine(str(encounter["id"]), visit, text, "", str(period.get("start", "")),
                        str(encounter.get("status", "")))  # fmt: skip


_LINES = {"ImagingStudy": _image, "DocumentReference": _document, "Encounter": _encounter}


def _visit_numbers(store: ClinicalStore, patient_id: str) -> list[str]:
    found = store.search("Encounter", {"patient": patient_id})
    numbers = (identifier_value(e, VISIT_NUMBER_SYSTEM) for e in found)
    return sorted({n for n in numbers if n})
