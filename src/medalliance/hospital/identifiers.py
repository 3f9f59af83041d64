"""The identifier systems the alliance reads in FHIR resources, in one place. Pure.

A Patient's identity for the pseudonym service is one of its identifiers whose `system` names an
identifier type the service knows (privacy/pseudonym.py `ID_TYPES`); the alliance pseudonym and
the visit number (就诊号) are written back as identifiers of our own systems, so every bundle the
project writes carries them and every store can search by them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# 中华人民共和国居民身份证号码 (GB 11643), the OID China's health-information standards use.
RESIDENT_ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"
# 护照号码 and the alliance's own medical card (就诊卡) number.
PASSPORT_SYSTEM = "urn:oid:2.16.156.10011.1.5"
MEDICAL_CARD_SYSTEM = "urn:medalliance:id:medical-card"
# What the alliance adds: the patient's pseudonym (the chain's patientRef) and the visit number.
PSEUDONYM_SYSTEM = "urn:medalliance:id:pseudonym"
VISIT_NUMBER_SYSTEM = "urn:medalliance:id:visit-number"

# identifier system → the pseudonym service's identifier type, in order of preference
ID_TYPE_OF_SYSTEM: Mapping[str, str] = {
    RESIDENT_ID_SYSTEM: "resident-id",
    PASSPORT_SYSTEM: "passport",
    MEDICAL_CARD_SYSTEM: "medical-card",
}


def patient_identity(patient: Mapping[str, Any]) -> tuple[str, str] | None:
    """(identifier type, number) of a FHIR Patient for the pseudonym service: its resident ID,
    else passport, else medical card number; None when it carries none of them. The number is
    returned as written; `privacy.pseudonym.normalise` checks it."""
    found: dict[str, str] = {}
    for identifier in patient.get("identifier") or ():
        system, value = identifier.get("system"), identifier.get("value")
        if system in ID_TYPE_OF_SYSTEM and isinstance(value, str) and value:
            found.setdefault(system, value)
    for system, id_type in ID_TYPE_OF_SYSTEM.items():
        if system in found:
            return id_type, found[system]
    return None


def identifier_value(resource: Mapping[str, Any], system: str) -> str | None:
    """The value of the resource's first identifier of `system`, or None."""
    for identifier in resource.get("identifier") or ():
        if identifier.get("system") == system and isinstance(identifier.get("value"), str):
            return str(identifier["value"])
    return None


def with_identifier(resource: Mapping[str, Any], system: str, value: str) -> dict[str, Any]:
    """A copy of the resource whose identifier of `system` is `value` (replaced if present)."""
    kept = [i for i in resource.get("identifier") or () if i.get("system") != system]
    return {**resource, "identifier": [*kept, {"system": system, "value": value}]}
