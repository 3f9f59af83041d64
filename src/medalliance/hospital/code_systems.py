"""The code systems and code tables of the alliance's FHIR resources, in one place. Pure.

Standard systems (ICD-10, LOINC, SNOMED CT, UCUM, HL7's own code systems) are named by their
canonical URIs; what the alliance defines itself (departments, referral direction, the chain's
referral status, organisations by MSP id) lives under `urn:medalliance:`. The identifier systems of
patients and visits are in identifiers.py. docs/fhir.md describes how the referral Bundle uses them.
"""

from __future__ import annotations

from collections.abc import Mapping

# --- standard code systems -----------------------------------------------------------------------
ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
LOINC_SYSTEM = "http://loinc.org"
SNOMED_SYSTEM = "http://snomed.info/sct"
UCUM_SYSTEM = "http://unitsofmeasure.org"
TASK_CODE_SYSTEM = "http://hl7.org/fhir/CodeSystem/task-code"
OBSERVATION_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CLINICAL_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-clinical"
ENCOUNTER_CLASS_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
DICOM_MODALITY_SYSTEM = "http://dicom.nema.org/resources/ontology/DCM"

# ServiceRequest.category of every referral (SNOMED CT 3457005, as in BSeR's examples).
REFERRAL_CATEGORY = (SNOMED_SYSTEM, "3457005", "Patient referral")
# DocumentReference.type of the documents a referral carries back (LOINC document ontology).
DISCHARGE_SUMMARY = (LOINC_SYSTEM, "18842-5", "Discharge summary")
CONSULT_NOTE = (LOINC_SYSTEM, "11488-4", "Consult note")

# --- the alliance's own systems ------------------------------------------------------------------
# The chain's referral id, on the referral's Task and ServiceRequest (and on the Bundle).
REFERRAL_ID_SYSTEM = "urn:medalliance:id:referral"
# An organisation of the alliance by its MSP id (the Organization's identifier).
MSP_ID_SYSTEM = "urn:medalliance:id:msp"
# Task.businessStatus: the referral's status on the chain (alliance/referral.py STATUSES).
REFERRAL_STATUS_SYSTEM = "urn:medalliance:cs:referral-status"
# A second ServiceRequest.category coding: upward (to a higher level) or downward (return).
DIRECTION_SYSTEM = "urn:medalliance:cs:referral-direction"
DIRECTIONS: Mapping[str, str] = {
    "UP": "upward referral (上转)",
    "DOWN": "downward or return referral (下转)",
}
# ServiceRequest.code: the target department, numbered after the catalogue of clinical
# departments of medical institutions (医疗机构诊疗科目名录); code → (Chinese, English).
DEPARTMENT_SYSTEM = "urn:medalliance:cs:department"
DEPARTMENTS: Mapping[str, tuple[str, str]] = {
    "02": ("全科医疗科", "General practice"),
    "03": ("内科", "Internal medicine"),
    "03.01": ("呼吸内科专业", "Respiratory medicine"),
    "03.02": ("消化内科专业", "Gastroenterology"),
    "03.03": ("神经内科专业", "Neurology"),
    "03.04": ("心血管内科专业", "Cardiology"),
    "03.06": ("肾病学专业", "Nephrology"),
    "03.07": ("内分泌专业", "Endocrinology"),
    "03.10": ("老年病专业", "Geriatrics"),
    "04": ("外科", "Surgery"),
    "04.02": ("神经外科专业", "Neurosurgery"),
    "04.03": ("骨科专业", "Orthopaedics"),
    "04.06": ("心脏大血管外科专业", "Cardiac surgery"),
    "05": ("妇产科", "Obstetrics and gynaecology"),
    "07": ("儿科", "Paediatrics"),
    "15": ("肿瘤科", "Oncology"),
    "16": ("急诊医学科", "Emergency medicine"),
    "17": ("康复医学科", "Rehabilitation medicine"),
    "24": ("重症医学科", "Critical care medicine"),
    "32": ("医学影像科", "Medical imaging"),
}

# ServiceRequest.priority and Task.priority (FHIR request-priority, required binding).
PRIORITIES = ("routine", "urgent", "asap", "stat")

# The chain's referral status → the Task's status (FHIR task-status). A return (downward)
# referral is a new referral with its own Task; in-progress has no chain status of its own.
TASK_STATUS_OF_CHAIN: Mapping[str, str] = {
    "REFERRED": "requested",
    "ACCEPTED": "accepted",
    "REJECTED": "rejected",
    "COMPLETED": "completed",
}
# The Task statuses a feedback Bundle may carry.
FEEDBACK_TASK_STATUSES = ("accepted", "rejected", "in-progress", "completed", "cancelled")


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    """A FHIR Coding; `display` is left out when None."""
    found = {"system": system, "code": code}
    return found if display is None else {**found, "display": display}


def department_coding(code: str) -> dict[str, str]:
    """The Coding of a department of `DEPARTMENTS` (display in Chinese, the alliance's language).
    Raises KeyError for a code not in the table; callers check first."""
    chinese, english = DEPARTMENTS[code]
    return coding(DEPARTMENT_SYSTEM, code, f"{chinese} ({english})")
