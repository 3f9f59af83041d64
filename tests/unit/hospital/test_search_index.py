"""Which index rows a resource gets, and which searches are refused before any SQL runs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medalliance.errors import InvalidArgument
from medalliance.hospital.search_index import (
    REFERENCE_PARAM,
    SEARCH_PARAMETERS,
    IndexRow,
    index_rows,
    reference_key,
    search_sql,
)


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        pytest.param(
            {"resourceType": "Observation", "subject": {"reference": "Patient/p1"}},
            {
                IndexRow("patient", "p1"),
                IndexRow("subject", "Patient/p1"),
                IndexRow("subject", "p1"),
                IndexRow(REFERENCE_PARAM, "Patient/p1"),
            },
            id="a patient subject is indexed as patient and subject",
        ),
        pytest.param(
            {"resourceType": "Task", "for": {"reference": "https://h.example/fhir/Patient/p1"}},
            {IndexRow("patient", "p1"), IndexRow(REFERENCE_PARAM, "Patient/p1")},
            id="an absolute Task.for reference is indexed by Type/id",
        ),
        pytest.param(
            {"resourceType": "Condition", "onsetDateTime": "2020-06"},
            {IndexRow("date", "2020-06-01", "2020-06-31")},
            id="a month is indexed as the range of its days",
        ),
        pytest.param(
            {"resourceType": "Patient", "birthDate": "1990"},
            {IndexRow("date", "1990-01-01", "1990-12-31")},
            id="a birth year is indexed as its days",
        ),
        pytest.param(
            {"resourceType": "Immunization", "vaccineCode": {"coding": [{"code": "140"}]}},
            {IndexRow("code", "|140"), IndexRow("code", "140")},
            id="a code without system is indexed with an empty system",
        ),
        pytest.param(
            {
                "resourceType": "Observation",
                "contained": [{"subject": {"reference": "X/1"}}],
                "hasMember": [{"reference": "#local"}],
            },
            set(),
            id="contained resources and local references are not indexed",
        ),
    ],
)
def test_index_rows(resource: dict[str, Any], expected: set[IndexRow]) -> None:
    assert set(index_rows(resource)) == expected


@pytest.mark.parametrize(
    ("reference", "key"),
    [
        pytest.param("Patient/p1", "Patient/p1", id="relative stays"),
        pytest.param("Patient/p1/_history/3", "Patient/p1", id="history is dropped"),
        pytest.param("http://x.example/fhir/Patient/p1", "Patient/p1", id="absolute is cut"),
        pytest.param("urn:uuid:abc", "urn:uuid:abc", id="a urn stays as given"),
    ],
)
def test_reference_key(reference: str, key: str) -> None:
    assert reference_key(reference) == key


def test_every_value_is_a_placeholder_argument() -> None:
    sql, args = search_sql("Patient", {"name": "'; DROP TABLE fhir_resource; --"})
    assert "DROP" not in sql
    assert "%'; drop table fhir\\_resource; --%" in args  # LIKE wildcards escaped


@pytest.mark.parametrize("param", ["_count", "_offset"])
@pytest.mark.parametrize("value", ["²", "١٢", "-1", "1e3", " 5"])
def test_paging_numbers_are_ascii_digits(param: str, value: str) -> None:
    # "²".isdigit() is true but int("²") fails: such a value must be a clear InvalidArgument
    with pytest.raises(InvalidArgument, match=param):
        search_sql("Patient", {param: value})


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*SEARCH_PARAMETERS, "unknown", "_sort"]), st.text(max_size=12), max_size=4
    )
)
def test_any_parameters_give_sql_or_invalid_argument(params: dict[str, str]) -> None:
    try:
        sql, args = search_sql("Observation", params)
    except InvalidArgument:
        return
    assert sql.count("?") == len(args)
