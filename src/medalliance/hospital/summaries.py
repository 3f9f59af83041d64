"""What a hospital user reads about patients and encounters: short rows out of the clinical
store's FHIR resources (for the `medalliance hospital` commands and, later, the web client).
Reads only. The rows hold the pseudonym, never an identity number."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.identifiers import PSEUDONYM_SYSTEM, identifier_value

__all__ = [
    "ClinicalLine",
    "EncounterRow",
    "PatientRow",
    "PatientSummary",
    "clinical_line",
    "encounter_rows",
    "patient_rows",
    "patient_summary",
]


@dataclass(frozen=True, slots=True)
class PatientRow:
    id: str
    name: str
    sex: str
    birth_date: str
    pseudonym: str | None
    encounters: int


@dataclass(frozen=True, slots=True)
class EncounterRow:
    id: str
    patient: str
    status: str
    kind: str  # Encounter.class code (AMB, IMP, EMER, ...)
    start: str
    end: str
    type: str


@dataclass(frozen=True, slots=True)
class ClinicalLine:
    """One condition, observation or other entry: its code's text, value, date, status."""

    id: str
    code: str
    text: str
    value: str
    date: str
    status: str


@dataclass(frozen=True, slots=True)
class PatientSummary:
    patient: PatientRow
    encounters: tuple[EncounterRow, ...]
    conditions: tuple[ClinicalLine, ...]
    observations: tuple[ClinicalLine, ...]
    medications: tuple[ClinicalLine, ...]
    procedures: tuple[ClinicalLine, ...]


def patient_rows(store: ClinicalStore) -> list[PatientRow]:
    """Every patient, by id, with its encounter count."""
    return [_patient_row(store, patient) for patient in store.search("Patient")]


def patient_summary(store: ClinicalStore, patient_id: str) -> PatientSummary:
    """One patient's row and record in short. Raises `ResourceNotFound`."""
    patient = store.get("Patient", patient_id)
    mine = {"patient": patient_id}
    return PatientSummary(
        patient=_patient_row(store, patient),
        encounters=tuple(encounter_rows(store, patient_id)),
        conditions=tuple(_line(r) for r in store.search("Condition", mine)),
        observations=tuple(_line(r) for r in store.search("Observation", mine)),
        medications=tuple(_line(r) for r in store.search("MedicationRequest", mine)),
        procedures=tuple(_line(r) for r in store.search("Procedure", mine)),
    )


def encounter_rows(store: ClinicalStore, patient_id: str | None = None) -> list[EncounterRow]:
    """Every encounter (of one patient), by id. Raises `ResourceNotFound` for an unknown
    patient, so that a typo is not mistaken for a patient without encounters."""
    if patient_id is not None:
        store.get("Patient", patient_id)
    params = {"patient": patient_id} if patient_id is not None else {}
    return [_encounter_row(e) for e in store.search("Encounter", params)]


def clinical_line(resource: Mapping[str, Any]) -> ClinicalLine:
    """The short line of a condition, observation, report, medication or procedure."""
    return _line(resource)


# --- private helpers ------------------------------------------------------------------------------


def _patient_row(store: ClinicalStore, patient: Mapping[str, Any]) -> PatientRow:
    encounters = len(store.search("Encounter", {"patient": str(patient["id"])}))
    return PatientRow(
        id=str(patient["id"]),
        name=_name(patient),
        sex=str(patient.get("gender", "")),
        birth_date=str(patient.get("birthDate", "")),
        pseudonym=identifier_value(patient, PSEUDONYM_SYSTEM),
        encounters=encounters,
    )


def _encounter_row(encounter: Mapping[str, Any]) -> EncounterRow:
    period = encounter.get("period") or {}
    types = encounter.get("type") or [{}]
    subject = str((encounter.get("subject") or {}).get("reference", ""))
    return EncounterRow(
        id=str(encounter["id"]),
        patient=subject.removeprefix("Patient/"),
        status=str(encounter.get("status", "")),
        kind=str((encounter.get("class") or {}).get("code", "")),
        start=str(period.get("start", "")),
        end=str(period.get("end", "")),
        type=_concept_text(types[0]),
    )


def _line(resource: Mapping[str, Any]) -> ClinicalLine:
    concept = resource.get("code") or resource.get("medicationCodeableConcept") or {}
    codings = concept.get("coding") or [{}]
    status = resource.get("status") or _concept_code(resource.get("clinicalStatus") or {})
    return ClinicalLine(
        id=str(resource["id"]),
        code=str(codings[0].get("code", "")),
        text=_concept_text(concept),
        value=_value(resource),
        date=_date(resource),
        status=str(status or ""),
    )


def _name(patient: Mapping[str, Any]) -> str:
    for name in patient.get("name") or ():
        if name.get("text"):
            return str(name["text"])
        family, given = name.get("family", ""), "".join(name.get("given") or ())
        # Chinese names read family name first, with no space: 王芳.
        joined = (
            f"{family}{given}"
            if _is_cjk(family + given)
            else f"{' '.join(name.get('given') or ())} {family}"
        )
        if joined.strip():
            return joined.strip()
    return ""


def _is_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def _concept_text(concept: Mapping[str, Any]) -> str:
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or ():
        if coding.get("display") or coding.get("code"):
            return str(coding.get("display") or coding.get("code"))
    return ""


def _concept_code(concept: Mapping[str, Any]) -> str:
    codings = concept.get("coding") or [{}]
    return str(codings[0].get("code", ""))


def _value(resource: Mapping[str, Any]) -> str:
    quantity = resource.get("valueQuantity")
    if isinstance(quantity, Mapping):
        return f"{quantity.get('value', '')} {quantity.get('unit', '')}".strip()
    for key in ("valueString", "valueInteger", "valueBoolean", "valueDateTime"):
        if key in resource:
            return str(resource[key])
    concept = resource.get("valueCodeableConcept")
    return _concept_text(concept) if isinstance(concept, Mapping) else ""


def _date(resource: Mapping[str, Any]) -> str:
    for key in ("effectiveDateTime", "onsetDateTime", "authoredOn", "performedDateTime",
                "recordedDate", "issued"):  # fmt: skip
        if isinstance(resource.get(key), str):
            return str(resource[key])
    for key in ("effectivePeriod", "onsetPeriod", "performedPeriod"):
        period = resource.get(key)
        if isinstance(period, Mapping) and period.get("start"):
            return str(period["start"])
    return ""
