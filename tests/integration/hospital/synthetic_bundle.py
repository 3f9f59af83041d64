"""A Synthea-style R4 transaction bundle, written for these tests: urn:uuid fullUrls, POST
requests, conditional references to practitioners and organisations by identifier, and entries
of types the hospital store does not keep (Claim), as Synthea's R4 exporter writes them."""

from __future__ import annotations

import uuid
from typing import Any

from medalliance.hospital.identifiers import MEDICAL_CARD_SYSTEM, RESIDENT_ID_SYSTEM

SYNTHEA = "https://github.com/synthetichealth/synthea"
NPI = "http://hl7.org/fhir/sid/us-npi"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

# Resident ID numbers valid by GB 11643 (check digit right), made up for these tests.
RESIDENT_IDS = ("11010519491231002X", "110101199003074514", "440308198807150014")


def uid(seed: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"medalliance-test:{seed}"))


def entry(resource: dict[str, Any], *, if_none_exist: str | None = None) -> dict[str, Any]:
    full_url = f"urn:uuid:{resource['id']}"
    request: dict[str, Any] = {"method": "POST", "url": resource["resourceType"]}
    if if_none_exist:
        request["ifNoneExist"] = if_none_exist
    return {"fullUrl": full_url, "resource": resource, "request": request}


def coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def patient_entries(n: int, resident_id: str | None) -> list[dict[str, Any]]:
    """One patient's record: Patient, Encounter, Condition, Observation, MedicationRequest,
    Procedure, DiagnosticReport, Immunization, AllergyIntolerance, and a Claim."""
    pid, eid = uid(f"patient-{n}"), uid(f"encounter-{n}")
    identifiers = [
        {"system": SYNTHEA, "value": pid},
        {"system": MEDICAL_CARD_SYSTEM, "value": f"MC-{n:06d}"},
    ]
    if resident_id:
        identifiers.insert(0, {"system": RESIDENT_ID_SYSTEM, "value": resident_id})
    patient = {
        "resourceType": "Patient",
        "id": pid,
        "identifier": identifiers,
        "name": [{"use": "official", "family": "王", "given": [f"芳{n}"], "text": f"王芳{n}"}],
        "gender": "female" if n % 2 else "male",
        "birthDate": f"19{60 + n}-0{1 + n % 9}-1{n % 10}",
    }
    subject = {"reference": f"urn:uuid:{pid}"}
    encounter_ref = {"reference": f"urn:uuid:{eid}"}
    resources: list[dict[str, Any]] = [
        patient,
        {
            "resourceType": "Encounter",
            "id": eid,
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [coding(SNOMED, "185345009", "Encounter for symptom")],
            "subject": subject,
            "participant": [
                {"individual": {"reference": f"Practitioner?identifier={NPI}|9999912345"}}
            ],
            "period": {"start": "2024-03-05T09:00:00+08:00", "end": "2024-03-05T09:30:00+08:00"},
            "serviceProvider": {"reference": f"Organization?identifier={SYNTHEA}|hosp-a"},
        },
        {
            "resourceType": "Condition",
            "id": uid(f"condition-{n}"),
            "clinicalStatus": coding(
                "http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"
            ),
            "code": coding(ICD10, "I10", "Essential hypertension"),
            "subject": subject,
            "encounter": encounter_ref,
            "onsetDateTime": "2024-03-05T09:10:00+08:00",
            "recordedDate": "2024-03-05T09:10:00+08:00",
        },
        {
            "resourceType": "Observation",
            "id": uid(f"observation-{n}"),
            "status": "final",
            "category": [
                coding(
                    "http://terminology.hl7.org/CodeSystem/observation-category",
                    "vital-signs",
                    "vital signs",
                )
            ],
            "code": coding(LOINC, "8867-4", "Heart rate"),
            "subject": subject,
            "encounter": encounter_ref,
            "effectiveDateTime": "2024-03-05T09:05:00+08:00",
            "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org"},
        },
        {
            "resourceType": "MedicationRequest",
            "id": uid(f"medication-{n}"),
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": coding(RXNORM, "314076", "lisinopril 10 MG Oral Tablet"),
            "subject": subject,
            "encounter": encounter_ref,
            "authoredOn": "2024-03-05T09:20:00+08:00",
        },
        {
            "resourceType": "Procedure",
            "id": uid(f"procedure-{n}"),
            "status": "completed",
            "code": coding(SNOMED, "430193006", "Medication reconciliation"),
            "subject": subject,
            "encounter": encounter_ref,
            "performedPeriod": {"start": "2024-03-05T09:15:00+08:00"},
        },
        {
            "resourceType": "DiagnosticReport",
            "id": uid(f"report-{n}"),
            "status": "final",
            "code": coding(LOINC, "85354-9", "Blood pressure panel"),
            "subject": subject,
            "encounter": encounter_ref,
            "effectiveDateTime": "2024-03-05T09:05:00+08:00",
            "result": [{"reference": f"urn:uuid:{uid(f'observation-{n}')}"}],
        },
        {
            "resourceType": "Immunization",
            "id": uid(f"immunization-{n}"),
            "status": "completed",
            "vaccineCode": coding("http://hl7.org/fhir/sid/cvx", "140", "Influenza"),
            "patient": subject,
            "encounter": encounter_ref,
            "occurrenceDateTime": "2024-03-05T09:25:00+08:00",
        },
        {
            "resourceType": "AllergyIntolerance",
            "id": uid(f"allergy-{n}"),
            "patient": subject,
            "code": coding(SNOMED, "91936005", "Allergy to penicillin"),
            "recordedDate": "2024-03-05T09:12:00+08:00",
        },
        {
            "resourceType": "Claim",  # not kept by the hospital store: ignored, reported
            "id": uid(f"claim-{n}"),
            "status": "active",
            "patient": subject,
        },
    ]
    return [entry(r) for r in resources]


def synthea_bundle(patients: int = 2, *, unidentified: int = 0) -> dict[str, Any]:
    """A transaction bundle: `patients` patients with resident IDs, `unidentified` more with only
    Synthea's identifier (none the pseudonym service knows), and the Organization and
    Practitioner that Synthea shares between patients with ifNoneExist."""
    shared = [
        entry(
            {
                "resourceType": "Organization",
                "id": uid("org-hosp-a"),
                "identifier": [{"system": SYNTHEA, "value": "hosp-a"}],
                "name": "Hospital A",
            },
            if_none_exist=f"identifier={SYNTHEA}|hosp-a",
        ),
        entry(
            {
                "resourceType": "Practitioner",
                "id": uid("practitioner-1"),
                "identifier": [{"system": NPI, "value": "9999912345"}],
                "name": [{"family": "李", "given": ["医生"]}],
            },
            if_none_exist=f"identifier={NPI}|9999912345",
        ),
    ]
    entries = list(shared)
    for n in range(patients):
        entries += patient_entries(n, RESIDENT_IDS[n % len(RESIDENT_IDS)])
    for n in range(patients, patients + unidentified):
        record = patient_entries(n, None)
        record[0]["resource"]["identifier"] = record[0]["resource"]["identifier"][:1]
        entries += record
    return {"resourceType": "Bundle", "id": uid("bundle"), "type": "transaction", "entry": entries}
