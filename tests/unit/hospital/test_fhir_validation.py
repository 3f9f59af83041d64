"""What the hospital store accepts as FHIR R4, and how it says what is wrong (without the value)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medalliance.errors import InvalidArgument
from medalliance.hospital.fhir_validation import (
    SUPPORTED_TYPES,
    InvalidResource,
    ResourceIssue,
    validate_resource,
)

SECRET = "110101199003074514"  # stands for patient data that must never appear in an issue

VALID: list[Any] = [
    pytest.param(
        {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1990-03-07"},
        id="a patient with gender and birth date is valid",
    ),
    pytest.param(
        {
            "resourceType": "Observation",
            "id": "o-1.2",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "urn:uuid:8c95253e-8ee8-9ae8-6d40-021d702dc78e"},
            "effectiveDateTime": "2024-03-05T10:00:00+08:00",
        },
        id="an observation referring to a urn:uuid is valid",
    ),
    pytest.param(
        {
            "resourceType": "Task",
            "id": "t1",
            "status": "requested",
            "intent": "order",
            "for": {"reference": "http://hospa.example.com/fhir/Patient/p1"},
        },
        id="a task with an absolute reference is valid",
    ),
    pytest.param(
        {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}},
        id="a resource without id is valid (the store asks for one, a bundle need not)",
    ),
]


@pytest.mark.parametrize("resource", VALID)
def test_valid_resources_have_no_issues(resource: dict[str, Any]) -> None:
    assert validate_resource(resource) == []


INVALID: list[Any] = [
    pytest.param(
        {"resourceType": "Patient", "id": "p1", "birthDate": "1990-13-45"},
        "Patient.birthDate",
        "date",
        id="a birth date that is not a FHIR date names its element",
    ),
    pytest.param(
        {"resourceType": "Patient", "id": "p1", "gender": "m"},
        "Patient.gender",
        "value set",
        id="a gender outside its value set is refused",
    ),
    pytest.param(
        {"resourceType": "Patient", "id": "p1", "nmae": [{"family": "Li"}]},
        "Patient.nmae",
        "misspelt",
        id="an unknown element is refused as misspelt",
    ),
    pytest.param(
        {"resourceType": "Observation", "id": "o1", "code": {"coding": [{"system": 3}]}},
        "Observation.code.coding[0].system",
        "string",
        id="a wrong type deep inside names the list index",
    ),
    pytest.param(
        {"resourceType": "Observation", "id": "o1", "code": {"text": "x"}},
        "Observation.status",
        "required",
        id="an observation without status is refused",
    ),
    pytest.param(
        {"resourceType": "Task", "id": "t1", "status": "done", "intent": "order"},
        "Task.status",
        "value set",
        id="a task status outside its value set is refused",
    ),
    pytest.param(
        {"resourceType": "Encounter", "id": "e1", "status": "open", "class": {"code": "AMB"}},
        "Encounter.status",
        "value set",
        id="an encounter status outside its value set is refused",
    ),
    pytest.param(
        {
            "resourceType": "Condition",
            "id": "c1",
            "subject": {"reference": "patient one"},
        },
        "Condition.subject.reference",
        "reference",
        id="a malformed reference is refused",
    ),
    pytest.param(
        {"resourceType": "Patient", "id": "has space"},
        "Patient.id",
        "",
        id="an id outside FHIR's id pattern is refused",
    ),
    pytest.param(
        {"resourceType": "Basic", "id": "b1"},
        "Resource.resourceType",
        "Patient",
        id="a resource type the store does not keep names the supported ones",
    ),
    pytest.param(
        ["not", "a", "resource"],
        "Resource",
        "JSON object",
        id="a JSON array is not a resource",
    ),
]


@pytest.mark.parametrize(("resource", "path", "reason_part"), INVALID)
def test_invalid_resources_name_the_element(resource: Any, path: str, reason_part: str) -> None:
    issues = validate_resource(resource)
    assert path in [issue.path for issue in issues]
    issue = next(issue for issue in issues if issue.path == path)
    assert reason_part in issue.reason


@pytest.mark.parametrize(
    "resource",
    [
        pytest.param(
            {"resourceType": "Patient", "id": "p1", "birthDate": SECRET}, id="a bad birth date"
        ),
        pytest.param({"resourceType": "Patient", "id": "p1", "gender": SECRET}, id="a bad gender"),
        pytest.param(
            {"resourceType": "Patient", "id": "p1", "name": [{"family": ["x", SECRET]}]},
            id="a name of the wrong type",
        ),
        pytest.param(
            {"resourceType": "Condition", "id": "c1", "subject": {"reference": SECRET}},
            id="a bad reference",
        ),
        pytest.param({"resourceType": "Patient", "id": SECRET + " x"}, id="a bad id"),
    ],
)
def test_issues_never_quote_the_offending_value(resource: dict[str, Any]) -> None:
    issues = validate_resource(resource)
    assert issues
    assert SECRET not in str(InvalidResource(issues))


def test_invalid_resource_lists_every_issue_and_is_an_invalid_argument() -> None:
    issues = validate_resource({"resourceType": "Task", "id": "t1"})
    error = InvalidResource(issues)
    assert isinstance(error, InvalidArgument)
    assert str(error) == (
        "invalid FHIR resource: Task/t1 Task.intent: required; Task/t1 Task.status: required"
    )
    assert error.issues == (
        ResourceIssue("Task", "t1", "Task.intent", "required"),
        ResourceIssue("Task", "t1", "Task.status", "required"),
    )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(
    resource_type=st.sampled_from([*sorted(SUPPORTED_TYPES), "Bundle", ""]),
    body=st.dictionaries(
        st.sampled_from(["id", "status", "subject", "code", "meta", "name", "identifier"]),
        JSON,
        max_size=4,
    ),
)
def test_any_json_is_judged_never_raises(resource_type: str, body: dict[str, Any]) -> None:
    issues = validate_resource({"resourceType": resource_type, **body})
    assert all(isinstance(issue, ResourceIssue) for issue in issues)
