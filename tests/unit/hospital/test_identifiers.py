"""Which identifier of a FHIR Patient the pseudonym service gets, and the alliance's own ones."""

from __future__ import annotations

from typing import Any

import pytest

from medalliance.hospital.identifiers import (
    MEDICAL_CARD_SYSTEM,
    PASSPORT_SYSTEM,
    PSEUDONYM_SYSTEM,
    RESIDENT_ID_SYSTEM,
    identifier_value,
    patient_identity,
    with_identifier,
)


def patient(*identifiers: tuple[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": s, "value": v} for s, v in identifiers],
    }


@pytest.mark.parametrize(
    ("resource", "identity"),
    [
        pytest.param(
            patient((PASSPORT_SYSTEM, "E1234567"), (RESIDENT_ID_SYSTEM, "11010519491231002X")),
            ("resident-id", "11010519491231002X"),
            id="the resident ID comes before a passport",
        ),
        pytest.param(
            patient(("http://hospital.example/mrn", "M-1"), (MEDICAL_CARD_SYSTEM, "C-0001")),
            ("medical-card", "C-0001"),
            id="a local record number is not an identity",
        ),
        pytest.param(patient(("http://hl7.org/fhir/sid/us-ssn", "999")), None, id="none known"),
        pytest.param({"resourceType": "Patient"}, None, id="no identifiers at all"),
    ],
)
def test_the_identity_for_the_pseudonym_service(
    resource: dict[str, Any], identity: tuple[str, str] | None
) -> None:
    assert patient_identity(resource) == identity


def test_the_pseudonym_is_written_back_once() -> None:
    first = with_identifier(patient((RESIDENT_ID_SYSTEM, "1")), PSEUDONYM_SYSTEM, "aa")
    again = with_identifier(first, PSEUDONYM_SYSTEM, "bb")
    assert identifier_value(again, PSEUDONYM_SYSTEM) == "bb"
    assert len(again["identifier"]) == 2
    assert identifier_value(again, RESIDENT_ID_SYSTEM) == "1"
