"""The demo's clinical records as FHIR R4 Bundles. The hospitals are seeded from the shipped
example data (`examples/fhir/<hospital>.json`, one transaction Bundle per hospital); each run
adds a fresh visit (an Encounter) of the first patient. Where the examples are not installed,
an admission built in code stands in (the patient, the visit, two diagnoses, two findings and
an ECG). What the tertiary hospital adds before it refers the patient back (a new diagnosis, an
echocardiogram, the discharge summary) is built here. All synthetic, never a real person.

The hospitals import them through the store's bundle import, as a HIS would send them.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from pathlib import Path
from typing import Any

from medalliance.hospital.code_systems import (
    CONDITION_CLINICAL_SYSTEM,
    DISCHARGE_SUMMARY,
    ENCOUNTER_CLASS_SYSTEM,
    ICD10_SYSTEM,
    LOINC_SYSTEM,
    OBSERVATION_CATEGORY_SYSTEM,
    UCUM_SYSTEM,
)
from medalliance.hospital.identifiers import RESIDENT_ID_SYSTEM, VISIT_NUMBER_SYSTEM

DEMO_PATIENT = {
    "name": "张三",
    "sex": "M",
    "birthDate": "1949-12-31",
    "idNumber": "11010519491231002X",
}
PATIENT_ID = "demo-zhang-san"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "fhir"


def example_bundle(organisation: str, folder: Path = EXAMPLES) -> dict[str, Any] | None:
    """The shipped example Bundle of a hospital (`SecondaryHospitalA` →
    `secondary-hospital-a.json`), or None when it is not there."""
    path = folder / f"{re.sub(r'(?<!^)(?=[A-Z])', '-', organisation).lower()}.json"
    if not path.is_file():
        return None
    bundle: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return bundle


def first_patient(bundle: dict[str, Any]) -> str:
    """The id of the Bundle's first Patient: the demo's referral patient."""
    return next(
        str(e["resource"]["id"])
        for e in bundle.get("entry") or ()
        if e.get("resource", {}).get("resourceType") == "Patient"
    )


def visit_bundle(visit: str, patient_id: str, day: str) -> dict[str, Any]:
    """A new visit (an inpatient Encounter with its visit number) of a patient the store holds."""
    encounter = {
        "resourceType": "Encounter",
        "id": _id(visit, "enc"),
        "identifier": [{"system": VISIT_NUMBER_SYSTEM, "value": visit}],
        "status": "in-progress",
        "class": {"system": ENCOUNTER_CLASS_SYSTEM, "code": "IMP", "display": "inpatient"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": f"{day}T08:30:00+08:00"},
    }
    return _collection([encounter])


def admission_bundle(
    visit: str,
    day: str,
    image: bytes | None = None,
    *,
    patient_id: str = PATIENT_ID,
    id_number: str = DEMO_PATIENT["idNumber"],
    name: str = DEMO_PATIENT["name"],
) -> dict[str, Any]:
    """A collection Bundle of the admission for visit `visit` on `day` (YYYY-MM-DD) of the demo
    patient (or of the patient given)."""
    patient = {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [{"system": RESIDENT_ID_SYSTEM, "value": id_number}],
        "name": [{"text": name, "family": name[:1], "given": [name[1:] or name]}],
        "gender": "male",
        "birthDate": DEMO_PATIENT["birthDate"],
    }
    encounter = {
        "resourceType": "Encounter",
        "id": _id(visit, "enc"),
        "identifier": [{"system": VISIT_NUMBER_SYSTEM, "value": visit}],
        "status": "in-progress",
        "class": {"system": ENCOUNTER_CLASS_SYSTEM, "code": "IMP", "display": "inpatient"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": f"{day}T08:30:00+08:00"},
    }
    ecg = image if image is not None else synthetic_image()
    subject = {"subject": {"reference": f"Patient/{patient_id}"}}
    resources: list[dict[str, Any]] = [
        patient,
        encounter,
        {**condition(visit, "dx-1", "I21.0", "Acute anterior wall myocardial infarction", day),
         **subject},
        {**condition(visit, "dx-2", "I10", "Hypertension", day), **subject},
        {**observation(visit, "obs-1", ("8601-7", "EKG impression"), day,
                       text="ST elevation V1-V4"), **subject},
        {**observation(visit, "obs-2", ("10839-9", "Troponin I"), day,
                       quantity=(2.3, "ng/mL")), **subject},
        {
            "resourceType": "DiagnosticReport",
            "id": _id(visit, "ecg"),
            "status": "final",
            "code": {
                "coding": [{"system": LOINC_SYSTEM, "code": "11524-6", "display": "EKG study"}]
            },
            **subject,
            "encounter": {"reference": f"Encounter/{_id(visit, 'enc')}"},
            "effectiveDateTime": f"{day}T09:00:00+08:00",
            "result": [{"reference": f"Observation/{_id(visit, 'obs-1')}"}],
            "presentedForm": [
                {
                    "contentType": "image/png",
                    "title": "ecg.png",
                    "data": base64.b64encode(ecg).decode("ascii"),
                }
            ],
        },
    ]  # fmt: skip
    return _collection(resources)


def treatment_bundle(
    visit: str, patient_id: str, encounter_id: str, day: str, discharge_text: str
) -> dict[str, Any]:
    """What the treating hospital records for a referred patient it holds as `patient_id` /
    `encounter_id`: a stent in place, an echocardiogram, and the discharge summary."""
    subject = {"reference": f"Patient/{patient_id}"}
    context = {"reference": f"Encounter/{encounter_id}"}
    summary = discharge_text.encode()
    resources: list[dict[str, Any]] = [
        {**condition(visit, "dx-3", "Z95.5", "Coronary stent in place", day),
         "subject": subject, "encounter": context},
        {**observation(visit, "obs-3", ("18010-0", "Echocardiogram study"), day, text="EF 52%"),
         "subject": subject, "encounter": context},
        {
            "resourceType": "DocumentReference",
            "id": _id(visit, "discharge"),
            "status": "current",
            "type": {"coding": [dict(zip(("system", "code", "display"), DISCHARGE_SUMMARY, strict=True))]},
            "subject": subject,
            "date": f"{day}T16:00:00+08:00",
            "description": "Discharge summary",
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain; charset=utf-8",
                        "data": base64.b64encode(summary).decode("ascii"),
                        "title": "discharge-summary.txt",
                    }
                }
            ],
            "context": {"encounter": [context]},
        },
    ]  # fmt: skip
    return _collection(resources)


def condition(visit: str, key: str, code: str, display: str, day: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": _id(visit, key),
        "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL_SYSTEM, "code": "active"}]},
        "code": {"coding": [{"system": ICD10_SYSTEM, "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "encounter": {"reference": f"Encounter/{_id(visit, 'enc')}"},
        "recordedDate": day,
    }


def observation(
    visit: str,
    key: str,
    loinc: tuple[str, str],
    day: str,
    *,
    text: str | None = None,
    quantity: tuple[float, str] | None = None,
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "resourceType": "Observation",
        "id": _id(visit, key),
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY_SYSTEM, "code": "exam"}]}],
        "code": {"coding": [{"system": LOINC_SYSTEM, "code": loinc[0], "display": loinc[1]}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "encounter": {"reference": f"Encounter/{_id(visit, 'enc')}"},
        "effectiveDateTime": f"{day}T09:00:00+08:00",
    }
    if text is not None:
        found["valueString"] = text
    if quantity is not None:
        value, unit = quantity
        found["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM_SYSTEM, "code": unit}
    return found


def synthetic_image() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(4096)  # stands in for an ECG scan


def _id(visit: str, key: str) -> str:
    return f"{visit.lower()}-{key}"


def _collection(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }
