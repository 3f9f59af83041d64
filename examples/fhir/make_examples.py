"""Writes the shipped FHIR R4 example data: one `transaction` Bundle per demo hospital that has
patients (examples/fhir/<org-name>.json). Every person, number and record here is fictitious and
written for this project; resident ID numbers use region codes 99xxxx, which no real region has.
Deterministic: the same script writes the same bytes, and tests/unit/hospital/test_example_data.py checks the files are
what it writes.

    .venv/bin/python examples/fhir/make_examples.py          # rewrite the JSON files
"""

from __future__ import annotations

import base64
import json
import math
import struct
import sys
import uuid
import zlib
from pathlib import Path
from typing import Any

from medalliance.hospital.code_systems import (
    DICOM_MODALITY_SYSTEM,
    ICD10_SYSTEM,
    LOINC_SYSTEM,
    MSP_ID_SYSTEM,
    UCUM_SYSTEM,
)
from medalliance.hospital.identifiers import RESIDENT_ID_SYSTEM, VISIT_NUMBER_SYSTEM

HERE = Path(__file__).resolve().parent
NAMESPACE = uuid.UUID("0b6f4a52-3c1e-5d8a-9f0e-6a7b2c4d1e90")  # fullUrls of the example data
TERMINOLOGY = "http://terminology.hl7.org/CodeSystem"
ATC_SYSTEM = "http://www.whocc.no/atc"
STAFF_SYSTEM = "urn:medalliance:id:staff"  # a hospital's own staff number

# (file, Organization name, MSP id, doctor, visit-number prefix, patients)
# a patient: (key, name, gender, [encounters]); an encounter: (class, start, [facts])
# a fact: ("condition", ICD-10, display, 中文) | ("observation", LOINC, display, value, unit,
# category) | ("bp", systolic, diastolic) | ("medication", ATC, 中文) | ("report", LOINC,
# display, conclusion) — a report takes the encounter's laboratory observations | ("ecg",)
HOSPITALS: list[tuple[str, str, str, str, str, list[Any]]] = [
    ("secondary-hospital-a", "二级医院 A (SecondaryHospitalA)", "SecondaryAMSP", "周明", "SA", [
        ("p1", "张三", "male", [
            ("EMER", "2026-11-29T08:10:00+08:00", [
                ("condition", "I21.0", "Acute transmural myocardial infarction of anterior wall", "急性前壁心肌梗死"),
                ("condition", "I10", "Essential (primary) hypertension", "原发性高血压"),
                ("bp", 165, 95),
                ("observation", "10839-9", "Troponin I.cardiac [Mass/volume] in Serum or Plasma", 2.3, "ng/mL", "laboratory"),
                ("report", "11502-2", "Laboratory report", "肌钙蛋白 I 明显升高"),
                ("ecg",),
            ]),
        ]),
        ("p2", "李秀英", "female", [
            ("AMB", "2026-11-20T09:30:00+08:00", [
                ("condition", "E11.9", "Type 2 diabetes mellitus without complications", "2 型糖尿病"),
                ("condition", "I10", "Essential (primary) hypertension", "原发性高血压"),
                ("bp", 150, 90),
                ("observation", "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", 8.2, "%", "laboratory"),
                ("observation", "14771-0", "Fasting glucose [Moles/volume] in Serum or Plasma", 9.1, "mmol/L", "laboratory"),
                ("report", "11502-2", "Laboratory report", "血糖控制欠佳"),
                ("medication", "A10BA02", "二甲双胍缓释片 0.5 g 每日两次"),
            ]),
        ]),
        ("p3", "王建国", "male", [
            ("IMP", "2026-11-25T15:00:00+08:00", [
                ("condition", "J18.9", "Pneumonia, unspecified organism", "肺炎"),
                ("observation", "8310-5", "Body temperature", 38.6, "Cel", "vital-signs"),
                ("observation", "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", 93, "%", "vital-signs"),
                ("observation", "6690-2", "Leukocytes [#/volume] in Blood by Automated count", 12.4, "10*3/uL", "laboratory"),
                ("report", "11502-2", "Laboratory report", "白细胞升高，提示细菌感染"),
            ]),
        ]),
    ]),
    ("secondary-hospital-b", "二级医院 B (SecondaryHospitalB)", "SecondaryBMSP", "吴静", "SB", [
        ("p1", "刘芳", "female", [
            ("EMER", "2026-11-27T21:40:00+08:00", [
                ("condition", "I63.9", "Cerebral infarction, unspecified", "脑梗死"),
                ("condition", "I10", "Essential (primary) hypertension", "原发性高血压"),
                ("bp", 178, 102),
                ("observation", "14682-9", "Creatinine [Moles/volume] in Serum or Plasma", 88, "umol/L", "laboratory"),
                ("observation", "14749-6", "Glucose [Moles/volume] in Serum or Plasma", 7.4, "mmol/L", "laboratory"),
                ("report", "11502-2", "Laboratory report", "肾功能正常，血糖轻度升高"),
            ]),
        ]),
        ("p2", "陈明", "male", [
            ("AMB", "2026-11-18T10:15:00+08:00", [
                ("condition", "E11.9", "Type 2 diabetes mellitus without complications", "2 型糖尿病"),
                ("observation", "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", 7.1, "%", "laboratory"),
                ("report", "11502-2", "Laboratory report", "糖化血红蛋白略高"),
                ("medication", "A10BA02", "二甲双胍片 0.5 g 每日三次"),
            ]),
        ]),
    ]),
    ("tertiary-hospital-a", "三级医院 A (TertiaryHospitalA)", "TertiaryAMSP", "郑华", "TA", [
        ("p1", "赵丽", "female", [
            ("IMP", "2026-11-10T11:00:00+08:00", [
                ("condition", "I63.9", "Cerebral infarction, unspecified", "脑梗死（恢复期）"),
                ("condition", "E11.9", "Type 2 diabetes mellitus without complications", "2 型糖尿病"),
                ("bp", 138, 84),
                ("observation", "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", 6.8, "%", "laboratory"),
                ("report", "11502-2", "Laboratory report", "血糖控制良好，可转社区康复"),
            ]),
        ]),
    ]),
]  # fmt: skip
# Birth dates of the patients whose resident ID is made here (the number encodes them).
BIRTH_DATES = {
    "张三": "1949-12-31",
    "李秀英": "1958-03-14",
    "王建国": "1962-07-08",
    "刘芳": "1971-11-22",
    "陈明": "1985-05-05",
    "赵丽": "1953-09-30",
}
REGIONS = {"SA": "990101", "SB": "990102", "TA": "990201"}  # fictitious: no province 99
CLASS_DISPLAY = {"AMB": "ambulatory", "EMER": "emergency", "IMP": "inpatient encounter"}


def resident_id(region: str, birth_date: str, sequence: int, gender: str) -> str:
    """A GB 11643 number: region, birth date, a sequence whose last digit is odd for men and
    even for women, and the ISO 7064 MOD 11-2 check character."""
    sequence = sequence * 2 + (1 if gender == "male" else 0)
    body = f"{region}{birth_date.replace('-', '')}{sequence:03d}"
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def make_hospital(
    file: str, org_name: str, msp_id: str, doctor: str, prefix: str, patients: list[Any]
) -> dict[str, Any]:
    entries: list[tuple[str, dict[str, Any]]] = []

    def add(resource: dict[str, Any]) -> str:
        local = f"{resource['resourceType']}/{resource['id']}"
        url = f"urn:uuid:{uuid.uuid5(NAMESPACE, f'{file}/{local}')}"
        entries.append((url, resource))
        return url

    org = add(
        {
            "resourceType": "Organization",
            "id": f"{prefix.lower()}-org",
            "active": True,
            "identifier": [{"system": MSP_ID_SYSTEM, "value": msp_id}],
            "name": org_name,
        }
    )
    practitioner = add(
        {
            "resourceType": "Practitioner",
            "id": f"{prefix.lower()}-dr1",
            "active": True,
            "identifier": [{"system": STAFF_SYSTEM, "value": f"{prefix}-D001"}],
            "name": [{"text": doctor, "family": doctor[0], "given": [doctor[1:]]}],
        }
    )
    for number, (key, name, gender, encounters) in enumerate(patients, start=1):
        pid, birth = f"{prefix.lower()}-{key}", BIRTH_DATES[name]
        number_id = resident_id(REGIONS[prefix], birth, number, gender)
        patient = add(
            {
                "resourceType": "Patient",
                "id": pid,
                "active": True,
                "identifier": [
                    {"system": RESIDENT_ID_SYSTEM, "value": number_id},
                    {
                        "system": f"urn:medalliance:id:mrn:{msp_id}",
                        "value": f"{prefix}-{number:05d}",
                    },
                ],
                "name": [{"use": "official", "text": name, "family": name[0], "given": [name[1:]]}],
                "gender": gender,
                "birthDate": birth,
                "managingOrganization": {"reference": org},
            }
        )
        for visit, (kind, start, facts) in enumerate(encounters, start=1):
            add_encounter(
                add,
                f"{pid}-e{visit}",
                f"{prefix}-{start[:10].replace('-', '')}-{number:04d}",
                kind,
                start,
                facts,
                patient,
                practitioner,
                org,
            )
    return {
        "resourceType": "Bundle",
        "id": f"{file}-examples",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": url,
                "resource": resource,
                "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
            }
            for url, resource in entries
        ],
    }


def add_encounter(
    add: Any,
    eid: str,
    visit_number: str,
    kind: str,
    start: str,
    facts: list[Any],
    patient: str,
    practitioner: str,
    org: str,
) -> None:
    subject, performer = {"reference": patient}, [{"reference": practitioner}]
    encounter_resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "identifier": [{"system": VISIT_NUMBER_SYSTEM, "value": visit_number}],
        "class": {
            "system": f"{TERMINOLOGY}/v3-ActCode",
            "code": kind,
            "display": CLASS_DISPLAY[kind],
        },
        "subject": subject,
        "participant": [{"individual": {"reference": practitioner}}],
        "period": {"start": start},
        "serviceProvider": {"reference": org},
        "diagnosis": [],
    }
    encounter = add(encounter_resource)
    context = {"subject": subject, "encounter": {"reference": encounter}}
    labs: list[str] = []
    for n, fact in enumerate(facts, start=1):
        fid = f"{eid}-{fact[0][:3]}{n}"
        match fact:
            case ("condition", code, display, chinese):
                ref = add(
                    {
                        "resourceType": "Condition",
                        "id": fid,
                        **context,
                        "recordedDate": start,
                        "clinicalStatus": _concept(f"{TERMINOLOGY}/condition-clinical", "active"),
                        "verificationStatus": _concept(
                            f"{TERMINOLOGY}/condition-ver-status", "confirmed"
                        ),
                        "category": [
                            _concept(f"{TERMINOLOGY}/condition-category", "encounter-diagnosis")
                        ],
                        "code": {**_concept(ICD10_SYSTEM, code, display), "text": chinese},
                    }
                )
                encounter_resource["diagnosis"].append(
                    {
                        "condition": {"reference": ref},
                        "rank": len(encounter_resource["diagnosis"]) + 1,
                    }
                )
            case ("observation", code, display, value, unit, category):
                ref = add(
                    {
                        "resourceType": "Observation",
                        "id": fid,
                        "status": "final",
                        **context,
                        "category": [_concept(f"{TERMINOLOGY}/observation-category", category)],
                        "code": _concept(LOINC_SYSTEM, code, display),
                        "effectiveDateTime": start,
                        "performer": performer,
                        "valueQuantity": _quantity(value, unit),
                    }
                )
                if category == "laboratory":
                    labs.append(ref)
            case ("bp", systolic, diastolic):
                add(
                    {
                        "resourceType": "Observation",
                        "id": fid,
                        "status": "final",
                        **context,
                        "category": [
                            _concept(f"{TERMINOLOGY}/observation-category", "vital-signs")
                        ],
                        "code": _concept(
                            LOINC_SYSTEM,
                            "85354-9",
                            "Blood pressure panel with all children optional",
                        ),
                        "effectiveDateTime": start,
                        "performer": performer,
                        "component": [
                            {
                                "code": _concept(LOINC_SYSTEM, "8480-6", "Systolic blood pressure"),
                                "valueQuantity": _quantity(systolic, "mm[Hg]"),
                            },
                            {
                                "code": _concept(
                                    LOINC_SYSTEM, "8462-4", "Diastolic blood pressure"
                                ),
                                "valueQuantity": _quantity(diastolic, "mm[Hg]"),
                            },
                        ],
                    }
                )
            case ("medication", atc, text):
                add(
                    {
                        "resourceType": "MedicationStatement",
                        "id": fid,
                        "status": "active",
                        "subject": subject,
                        "context": {"reference": encounter},
                        "effectiveDateTime": start,
                        "medicationCodeableConcept": {
                            **_concept(ATC_SYSTEM, atc, "metformin"),
                            "text": text,
                        },
                        "dosage": [{"text": text}],
                    }
                )
            case ("report", code, display, conclusion):
                add(
                    {
                        "resourceType": "DiagnosticReport",
                        "id": fid,
                        "status": "final",
                        **context,
                        "category": [_concept(f"{TERMINOLOGY}/v2-0074", "LAB", "Laboratory")],
                        "code": _concept(LOINC_SYSTEM, code, display),
                        "effectiveDateTime": start,
                        "issued": start,
                        "performer": performer,
                        "conclusion": conclusion,
                        "result": [{"reference": lab} for lab in labs],
                    }
                )
            case ("ecg",):
                add_ecg(add, fid, start, context, performer)
            case _:
                raise ValueError(f"unknown fact {fact[0]}")


def add_ecg(add: Any, fid: str, start: str, context: dict[str, Any], performer: Any) -> None:
    """An ECG as an ImagingStudy (DICOM modality ECG) and its tracing as a PNG DocumentReference."""
    study_uid = f"2.25.{uuid.uuid5(NAMESPACE, fid).int}"  # a UUID-derived DICOM UID (2.25 arc)
    study = add(
        {
            "resourceType": "ImagingStudy",
            "id": f"{fid}-study",
            "status": "available",
            **context,
            "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{study_uid}"}],
            "started": start,
            "modality": [{"system": DICOM_MODALITY_SYSTEM, "code": "ECG"}],
            "numberOfSeries": 1,
            "numberOfInstances": 1,
            "description": "12 导联心电图",
            "series": [
                {
                    "uid": f"{study_uid}.1",
                    "number": 1,
                    "modality": {"system": DICOM_MODALITY_SYSTEM, "code": "ECG"},
                    "instance": [
                        {
                            "uid": f"{study_uid}.1.1",
                            "number": 1,
                            "sopClass": {
                                "system": "urn:ietf:rfc:3986",
                                "code": "urn:oid:1.2.840.10008.5.1.4.1.1.9.1.1",
                            },
                        }
                    ],
                }
            ],
        }
    )
    image = ecg_png()
    add(
        {
            "resourceType": "DocumentReference",
            "id": f"{fid}-image",
            "status": "current",
            "type": _concept(LOINC_SYSTEM, "11524-6", "EKG study"),
            "subject": context["subject"],
            "date": start,
            "author": performer,
            "description": "心电图：V1-V4 导联 ST 段抬高",
            "content": [
                {
                    "attachment": {
                        "contentType": "image/png",
                        "title": "ecg.png",
                        "size": len(image),
                        "data": base64.b64encode(image).decode(),
                    }
                }
            ],
            "context": {"encounter": [context["encounter"]], "related": [{"reference": study}]},
        }
    )


def ecg_png(width: int = 240, height: int = 80) -> bytes:
    """A small greyscale PNG of an ECG-like tracing with ST elevation, drawn here."""
    rows = [bytearray(b"\xff" * width) for _ in range(height)]
    for y in range(height):
        for x in range(width):
            if x % 10 == 0 or y % 10 == 0:
                rows[y][x] = 0xDD  # the paper's grid
    previous = None
    for x in range(width):
        phase = x % 60
        level = 0.0
        level += 4 * math.exp(-(((phase - 10) / 3) ** 2))  # P wave
        level += 28 * math.exp(-(((phase - 22) / 1.2) ** 2)) - 8 * math.exp(
            -(((phase - 25) / 1.2) ** 2)
        )
        level += 6 if 25 < phase < 38 else 0  # the ST segment, raised
        level += 9 * math.exp(-(((phase - 40) / 4) ** 2))  # T wave
        y = int(height * 0.65 - level)
        for yy in range(min(y, previous or y), max(y, previous or y) + 1):
            rows[yy][x] = 0x00
        previous = y
    raw = b"".join(b"\x00" + bytes(row) for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def rendered() -> dict[str, bytes]:
    """Each example file's name → its exact bytes."""
    return {f"{h[0]}.json": _dump(make_hospital(*h)) for h in HOSPITALS}


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code} | ({"display": display} if display else {})
    return {"coding": [coding]}


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM_SYSTEM, "code": unit}


def _dump(bundle: dict[str, Any]) -> bytes:
    return (json.dumps(bundle, ensure_ascii=False, indent=1) + "\n").encode()


def main() -> None:
    for name, data in rendered().items():
        (HERE / name).write_bytes(data)
        print(f"wrote {name} ({len(data)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
