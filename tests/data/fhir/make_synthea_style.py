"""Writes tests/data/fhir/synthea-style.json: a small FHIR R4 `transaction` Bundle shaped like
Synthea's patient output (urn:uuid fullUrls, POST requests, US-style identifiers: Synthea id, MRN,
SSN, driver's licence, passport; US Core race/ethnicity extensions; SNOMED CT, LOINC, RxNorm and
CVX codes), so the import of other FHIR tools' output is tested. Written for this project; the
person is fictitious. Deterministic: tests check the file is what this script writes.

    .venv/bin/python tests/data/fhir/make_synthea_style.py
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "synthea-style.json"
NAMESPACE = uuid.UUID("7c2d4e1a-9b3f-5a60-8d71-3e2f1a0b9c44")
SNOMED, LOINC, UCUM = "http://snomed.info/sct", "http://loinc.org", "http://unitsofmeasure.org"
RXNORM, CVX = "http://www.nlm.nih.gov/research/umls/rxnorm", "http://hl7.org/fhir/sid/cvx"
HL7 = "http://terminology.hl7.org/CodeSystem"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition"
SYNTHEA = "https://github.com/synthetichealth/synthea"

# encounter: (SNOMED type, display, start, end, [facts]); a fact: ("obs", LOINC, display, value,
# unit, category) | ("bp", systolic, diastolic) | ("smoking",) | ("condition", SNOMED, display,
# abated) | ("procedure", SNOMED, display) | ("medication", RxNorm, display) | ("flu",) |
# ("report", LOINC, display, [LOINC of the encounter's results]) | ("note", text)
ENCOUNTERS: list[tuple[str, str, str, str, list[Any]]] = [
    ("162673000", "General examination of patient (procedure)", "2019-03-07T09:28:23-05:00", "2019-03-07T09:58:23-05:00", [
        ("obs", "8302-2", "Body Height", 178.2, "cm", "vital-signs"),
        ("obs", "29463-7", "Body Weight", 97.4, "kg", "vital-signs"),
        ("obs", "39156-5", "Body Mass Index", 30.7, "kg/m2", "vital-signs"),
        ("bp", 138, 88),
        ("obs", "8867-4", "Heart rate", 76, "/min", "vital-signs"),
        ("smoking",),
        ("obs", "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", 7.4, "%", "laboratory"),
        ("obs", "2339-0", "Glucose", 142, "mg/dL", "laboratory"),
        ("obs", "38483-4", "Creatinine", 1.1, "mg/dL", "laboratory"),
        ("report", "51990-0", "Basic metabolic panel - Blood", ["2339-0", "38483-4"]),
        ("condition", "44054006", "Diabetes mellitus type 2 (disorder)", None),
        ("condition", "162864005", "Body mass index 30+ - obesity (finding)", None),
        ("procedure", "430193006", "Medication Reconciliation (procedure)"),
        ("medication", "860975", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet"),
        ("flu",),
        ("note", "Patient is a 52 year-old male. History of type 2 diabetes. Plan: metformin."),
    ]),
    ("185349003", "Encounter for check up (procedure)", "2019-09-12T10:02:11-04:00", "2019-09-12T10:32:11-04:00", [
        ("bp", 146, 94),
        ("obs", "29463-7", "Body Weight", 96.1, "kg", "vital-signs"),
        ("obs", "2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", 212, "mg/dL", "laboratory"),
        ("obs", "2571-8", "Triglycerides", 168, "mg/dL", "laboratory"),
        ("obs", "2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", 41, "mg/dL", "laboratory"),
        ("obs", "18262-6", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay", 137, "mg/dL", "laboratory"),
        ("report", "57698-3", "Lipid panel with direct LDL - Serum or Plasma", ["2093-3", "2571-8", "2085-9", "18262-6"]),
        ("condition", "59621000", "Essential hypertension (disorder)", None),
        ("procedure", "710824005", "Assessment of health and social care needs (procedure)"),
        ("medication", "314076", "lisinopril 10 MG Oral Tablet"),
    ]),
    ("185345009", "Encounter for symptom (procedure)", "2020-01-20T14:45:00-05:00", "2020-01-20T15:00:00-05:00", [
        ("obs", "8310-5", "Body temperature", 37.9, "Cel", "vital-signs"),
        ("obs", "8867-4", "Heart rate", 88, "/min", "vital-signs"),
        ("obs", "9279-1", "Respiratory rate", 16, "/min", "vital-signs"),
        ("condition", "444814009", "Viral sinusitis (disorder)", "2020-02-03T14:45:00-05:00"),
    ]),
]  # fmt: skip


class Writer:
    """Collects the entries of the bundle, with Synthea's urn:uuid fullUrls and POST requests."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def add(self, resource: dict[str, Any], if_none_exist: str | None = None) -> str:
        local = str(uuid.uuid5(NAMESPACE, f"{resource['resourceType']}/{len(self.entries)}"))
        request: dict[str, str] = {"method": "POST", "url": resource["resourceType"]}
        if if_none_exist:
            request["ifNoneExist"] = if_none_exist
        url = f"urn:uuid:{local}"
        self.entries.append(
            {"fullUrl": url, "resource": {**resource, "id": local}, "request": request}
        )
        return url


def make_bundle() -> dict[str, Any]:
    """The Synthea-style bundle as JSON values."""
    writer = Writer()
    patient = writer.add(_patient())
    org_id, npi = "a6f1c3e2-5b7d-3c48-9e0a-1f2b3c4d5e6f", "9999941538"
    organization = writer.add(
        {
            "resourceType": "Organization",
            "identifier": [{"system": SYNTHEA, "value": org_id}],
            "active": True,
            "type": [_concept(f"{HL7}/organization-type", "prov", "Healthcare Provider")],
            "name": "PINE RIDGE FAMILY MEDICINE LLC",
            "telecom": [{"system": "phone", "value": "555-019-4411"}],
            "address": [{"line": ["12 ELM ST"], "city": "SPRINGFIELD", "state": "MA"}],
        },
        f"identifier={SYNTHEA}|{org_id}",
    )
    practitioner = writer.add(
        {
            "resourceType": "Practitioner",
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": npi}],
            "active": True,
            "name": [{"family": "Okafor512", "given": ["Adaeze731"], "prefix": ["Dr."]}],
            "gender": "female",
        },
        f"identifier=http://hl7.org/fhir/sid/us-npi|{npi}",
    )
    for kind, display, start, end, facts in ENCOUNTERS:
        encounter = writer.add(
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": f"{HL7}/v3-ActCode", "code": "AMB"},
                "type": [_concept(SNOMED, kind, display)],
                "subject": {"reference": patient, "display": "Mr. Marcus765 Halvorsen686"},
                "participant": [
                    {
                        "type": [
                            _concept(f"{HL7}/v3-ParticipationType", "PPRF", "primary performer")
                        ],
                        "period": {"start": start, "end": end},
                        "individual": {
                            "reference": practitioner,
                            "display": "Dr. Adaeze731 Okafor512",
                        },
                    }
                ],
                "period": {"start": start, "end": end},
                "serviceProvider": {
                    "reference": organization,
                    "display": "PINE RIDGE FAMILY MEDICINE LLC",
                },
            }
        )
        _add_facts(writer, facts, patient, encounter, practitioner, start)
    return {"resourceType": "Bundle", "type": "transaction", "entry": writer.entries}


def _add_facts(
    writer: Writer, facts: list[Any], patient: str, encounter: str, practitioner: str, start: str
) -> None:
    context = {"subject": {"reference": patient}, "encounter": {"reference": encounter}}
    results: dict[str, str] = {}
    for fact in facts:
        match fact:
            case ("obs", code, display, value, unit, category):
                results[code] = writer.add(
                    _observation(
                        context,
                        category,
                        _concept(LOINC, code, display),
                        start,
                        {"valueQuantity": _quantity(value, unit)},
                    )
                )
            case ("bp", systolic, diastolic):
                components = [
                    {
                        "code": _concept(LOINC, "8462-4", "Diastolic Blood Pressure"),
                        "valueQuantity": _quantity(diastolic, "mm[Hg]"),
                    },
                    {
                        "code": _concept(LOINC, "8480-6", "Systolic Blood Pressure"),
                        "valueQuantity": _quantity(systolic, "mm[Hg]"),
                    },
                ]
                writer.add(
                    _observation(
                        context,
                        "vital-signs",
                        _concept(LOINC, "85354-9", "Blood Pressure"),
                        start,
                        {"component": components},
                    )
                )
            case ("smoking",):
                value = {"valueCodeableConcept": _concept(SNOMED, "266919005", "Never smoker")}
                writer.add(
                    _observation(
                        context,
                        "social-history",
                        _concept(LOINC, "72166-2", "Tobacco smoking status"),
                        start,
                        value,
                    )
                )
            case ("condition", code, display, abated):
                status = "resolved" if abated else "active"
                condition = {
                    "resourceType": "Condition",
                    "clinicalStatus": _concept(f"{HL7}/condition-clinical", status),
                    "verificationStatus": _concept(f"{HL7}/condition-ver-status", "confirmed"),
                    "category": [
                        _concept(
                            f"{HL7}/condition-category",
                            "encounter-diagnosis",
                            "Encounter Diagnosis",
                        )
                    ],
                    "code": _concept(SNOMED, code, display),
                    **context,
                    "onsetDateTime": start,
                    "recordedDate": start,
                }
                if abated:
                    condition["abatementDateTime"] = abated
                writer.add(condition)
            case ("procedure", code, display):
                writer.add(
                    {
                        "resourceType": "Procedure",
                        "status": "completed",
                        "code": _concept(SNOMED, code, display),
                        **context,
                        "performedDateTime": start,
                    }
                )
            case ("medication", code, display):
                writer.add(
                    {
                        "resourceType": "MedicationRequest",
                        "status": "active",
                        "intent": "order",
                        "medicationCodeableConcept": _concept(RXNORM, code, display),
                        **context,
                        "authoredOn": start,
                        "requester": {
                            "reference": practitioner,
                            "display": "Dr. Adaeze731 Okafor512",
                        },
                        "dosageInstruction": [
                            {
                                "sequence": 1,
                                "timing": {
                                    "repeat": {"frequency": 1, "period": 1.0, "periodUnit": "d"}
                                },
                                "asNeededBoolean": False,
                            }
                        ],
                    }
                )
            case ("flu",):
                writer.add(
                    {
                        "resourceType": "Immunization",
                        "status": "completed",
                        "vaccineCode": _concept(
                            CVX, "140", "Influenza, seasonal, injectable, preservative free"
                        ),
                        "patient": {"reference": patient},
                        "encounter": {"reference": encounter},
                        "occurrenceDateTime": start,
                        "primarySource": True,
                    }
                )
            case ("report", code, display, codes):
                writer.add(
                    {
                        "resourceType": "DiagnosticReport",
                        "status": "final",
                        "category": [_concept(f"{HL7}/v2-0074", "LAB", "Laboratory")],
                        "code": _concept(LOINC, code, display),
                        **context,
                        "effectiveDateTime": start,
                        "issued": start,
                        "result": [{"reference": results[c], "display": c} for c in codes],
                    }
                )
            case ("note", text):
                writer.add(
                    {
                        "resourceType": "DiagnosticReport",
                        "status": "final",
                        "category": [_concept(LOINC, "34117-2", "History and physical note")],
                        "code": _concept(LOINC, "34117-2", "History and physical note"),
                        **context,
                        "effectiveDateTime": start,
                        "issued": start,
                        "performer": [
                            {"reference": practitioner, "display": "Dr. Adaeze731 Okafor512"}
                        ],
                        "presentedForm": [
                            {
                                "contentType": "text/plain; charset=utf-8",
                                "data": base64.b64encode(text.encode()).decode(),
                            }
                        ],
                    }
                )
            case _:
                raise ValueError(f"unknown fact {fact[0]}")


def _patient() -> dict[str, Any]:
    record = "b3c8e0d1-7a42-4f19-8e6b-2d5c9a1f0e37"
    return {
        "resourceType": "Patient",
        "extension": [
            {
                "url": f"{US_CORE}/us-core-race",
                "extension": [
                    {
                        "url": "ombCategory",
                        "valueCoding": {
                            "system": "urn:oid:2.16.840.1.113883.6.238",
                            "code": "2106-3",
                            "display": "White",
                        },
                    },
                    {"url": "text", "valueString": "White"},
                ],
            },
            {
                "url": f"{US_CORE}/us-core-ethnicity",
                "extension": [
                    {
                        "url": "ombCategory",
                        "valueCoding": {
                            "system": "urn:oid:2.16.840.1.113883.6.238",
                            "code": "2186-5",
                            "display": "Not Hispanic or Latino",
                        },
                    },
                    {"url": "text", "valueString": "Not Hispanic or Latino"},
                ],
            },
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
                "valueString": "Ingrid404 Lindqvist",
            },
            {"url": f"{US_CORE}/us-core-birthsex", "valueCode": "M"},
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
                "valueAddress": {"city": "Worcester", "state": "Massachusetts", "country": "US"},
            },
            {
                "url": "http://synthetichealth.github.io/synthea/disability-adjusted-life-years",
                "valueDecimal": 1.42,
            },
            {
                "url": "http://synthetichealth.github.io/synthea/quality-adjusted-life-years",
                "valueDecimal": 49.8,
            },
        ],
        "identifier": [
            {"system": SYNTHEA, "value": record},
            {
                "type": _concept(f"{HL7}/v2-0203", "MR", "Medical Record Number"),
                "system": "http://hospital.smarthealthit.org",
                "value": record,
            },
            {
                "type": _concept(f"{HL7}/v2-0203", "SS", "Social Security Number"),
                "system": "http://hl7.org/fhir/sid/us-ssn",
                "value": "999-41-7302",
            },
            {
                "type": _concept(f"{HL7}/v2-0203", "DL", "Driver's License"),
                "system": "urn:oid:2.16.840.1.113883.4.3.25",
                "value": "S99952781",
            },
            {
                "type": _concept(f"{HL7}/v2-0203", "PPN", "Passport Number"),
                "system": "http://standardhealthrecord.org/fhir/StructureDefinition/passportNumber",
                "value": "X31542870X",
            },
        ],
        "name": [
            {"use": "official", "family": "Halvorsen686", "given": ["Marcus765"], "prefix": ["Mr."]}
        ],
        "telecom": [{"system": "phone", "value": "555-871-2290", "use": "home"}],
        "gender": "male",
        "birthDate": "1966-08-14",
        "address": [
            {
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/StructureDefinition/geolocation",
                        "extension": [
                            {"url": "latitude", "valueDecimal": 42.2626},
                            {"url": "longitude", "valueDecimal": -71.8023},
                        ],
                    }
                ],
                "line": ["481 Birch Hollow Rd"],
                "city": "Worcester",
                "state": "MA",
                "postalCode": "01602",
                "country": "US",
            }
        ],
        "maritalStatus": {
            **_concept("http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "M", "M"),
            "text": "M",
        },
        "multipleBirthBoolean": False,
        "communication": [
            {"language": {**_concept("urn:ietf:bcp:47", "en-US", "English"), "text": "English"}}
        ],
    }


def _observation(
    context: dict[str, Any], category: str, code: dict[str, Any], start: str, value: dict[str, Any]
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [_concept(f"{HL7}/observation-category", category)],
        "code": {**code, "text": code["coding"][0]["display"]},
        **context,
        "effectiveDateTime": start,
        "issued": start,
        **value,
    }


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code} | ({"display": display} if display else {})
    return {"coding": [coding]} | ({"text": display} if display else {})


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def rendered() -> bytes:
    """The file's exact bytes."""
    return (json.dumps(make_bundle(), indent=2) + "\n").encode()


if __name__ == "__main__":
    OUT.write_bytes(rendered())
