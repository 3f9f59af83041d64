"""The FHIR clinical store on a real database: each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medalliance.errors import InvalidArgument, NotFound, Unavailable
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.fhir_validation import InvalidResource

LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"


@pytest.fixture
def store(database_url: str) -> Iterator[ClinicalStore]:
    opened = ClinicalStore.open(database_url)
    try:
        yield opened
    finally:
        opened.close()


def patient(pid: str, family: str, birth: str, gender: str = "female") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": "urn:test:mrn", "value": f"MRN-{pid}"}],
        "name": [{"family": family, "given": ["Mei"]}],
        "gender": gender,
        "birthDate": birth,
    }


def observation(oid: str, pid: str, code: str, when: str, eid: str = "e1") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "encounter": {"reference": f"Encounter/{eid}"},
        "effectiveDateTime": when,
    }


def nested_extension(depth: int) -> dict[str, Any]:
    extension: dict[str, Any] = {"url": "http://example.org/x", "valueString": "v"}
    for _ in range(depth):
        extension = {"url": "http://example.org/x", "extension": [extension]}
    return extension


def snapshot(store: ClinicalStore) -> dict[str, Any]:
    """Everything a test can observe: every resource of the types used here, and the records."""
    types = ("Patient", "Observation", "Condition", "Encounter")
    return {
        "resources": {t: store.search(t) for t in types},
        "records": store.records("referral"),
        "count": store.count(),
    }


@pytest.fixture
def filled(store: ClinicalStore) -> ClinicalStore:
    store.put(patient("p1", "Wang", "1990-03-07"))
    store.put(patient("p2", "Li", "1985-11", gender="male"))
    store.put(
        {
            "resourceType": "Encounter",
            "id": "e1",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": "Patient/p1"},
            "period": {"start": "2024-03-05T09:00:00+08:00"},
        }
    )
    store.put(observation("o1", "p1", "8867-4", "2024-03-05T10:00:00+08:00"))
    store.put(observation("o2", "p1", "8310-5", "2024-04-01"))
    store.put(observation("o3", "p2", "8867-4", "2023-12-31", eid="e2"))
    store.put(
        {
            "resourceType": "Condition",
            "id": "c1",
            "subject": {"reference": "Patient/p2"},
            "code": {"coding": [{"system": ICD10, "code": "I10"}]},
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "onsetDateTime": "2020-06",
        }
    )
    return store


def test_put_sets_versions_and_identical_content_writes_nothing(store: ClinicalStore) -> None:
    first = store.put(patient("p1", "Wang", "1990-03-07"))
    assert first["meta"]["versionId"] == "1"
    assert "lastUpdated" in first["meta"]
    again = store.put({**patient("p1", "Wang", "1990-03-07"), "meta": {"versionId": "7"}})
    assert again["meta"] == first["meta"]
    updated = store.put(patient("p1", "Wang", "1990-03-08"))
    assert updated["meta"]["versionId"] == "2"
    assert store.get("Patient", "p1")["birthDate"] == "1990-03-08"
    assert store.count("Patient") == 1


def test_tuples_and_lists_are_the_same_content(store: ClinicalStore) -> None:
    as_lists = patient("p1", "Wang", "1990-03-07")
    as_tuples = {**as_lists, "name": ({"family": "Wang", "given": ("Mei",)},)}
    first = store.put(as_lists)
    assert store.put_outcome(as_tuples) == (first, "unchanged")


def test_an_update_keeps_the_first_source_unless_told(store: ClinicalStore) -> None:
    store.put(patient("p1", "Wang", "1990-03-07"), source="referral:R1")
    store.put(patient("p1", "Wang", "1990-03-08"), source="local")
    assert store.source_of("Patient", "p1") == "referral:R1"
    store.put(patient("p1", "Wang", "1990-03-09"), source="local", keep_source=False)
    assert store.source_of("Patient", "p1") == "local"
    assert store.source_of("Patient", "nobody") is None


def test_get_of_a_missing_resource_is_not_found(store: ClinicalStore) -> None:
    assert store.find("Patient", "p9") is None
    with pytest.raises(NotFound, match="Patient/p9"):
        store.get("Patient", "p9")


@pytest.mark.parametrize(
    ("resource", "path"),
    [
        pytest.param(
            {**patient("p1", "Wang", "1990-03-07"), "birthDate": "07/03/1990"},
            "Patient.birthDate",
            id="a malformed birth date is refused",
        ),
        pytest.param(
            {k: v for k, v in patient("p1", "Wang", "1990").items() if k != "id"},
            "Patient.id",
            id="a resource without id is refused",
        ),
        pytest.param(
            {"resourceType": "Basic", "id": "b1"},
            "Resource.resourceType",
            id="a type the store does not keep is refused",
        ),
        pytest.param(
            {**observation("o1", "p1", "x", "2024"), "status": "done"},
            "Observation.status",
            id="an observation status outside its value set is refused",
        ),
        pytest.param(
            {**patient("p1", "Wang", "1990"), "birthDate": dt.date(1990, 3, 7)},
            "Patient",
            id="a Python date object is not FHIR JSON",
        ),
        pytest.param(
            {**patient("p1", "Wang", "1990"), "name": [{"family": "Wa\u0000ng"}]},
            "Patient.name[0].family",
            id="a NUL inside a string is refused (JSONB could not store it)",
        ),
        pytest.param(
            {**patient("p1", "Wang", "1990"), "extension": [nested_extension(200)]},
            "Patient",
            id="hostile nesting is refused without exhausting the stack",
        ),
    ],
)
def test_a_refused_put_changes_nothing(
    filled: ClinicalStore, resource: dict[str, Any], path: str
) -> None:
    before = snapshot(filled)
    with pytest.raises(InvalidResource) as refused:
        filled.put(resource)
    assert path in [issue.path for issue in refused.value.issues]
    assert snapshot(filled) == before


def test_a_failed_transaction_leaves_the_store_unchanged(filled: ClinicalStore) -> None:
    before = snapshot(filled)

    def several_writes_then_a_refused_one() -> None:
        with filled.transaction():
            filled.put(patient("p3", "Zhao", "2001-01-01"))
            filled.put(patient("p1", "Wang", "1990-03-09"))
            filled.delete("Observation", "o1")
            filled.set_record("referral", "R1", {"status": "REFERRED"})
            filled.put({**patient("p4", "Sun", "2002"), "gender": "x"})  # refused: all rolls back

    with pytest.raises(InvalidResource):
        several_writes_then_a_refused_one()
    assert snapshot(filled) == before
    filled.put(patient("p3", "Zhao", "2001-01-01"))  # the store still works afterwards
    assert filled.find("Patient", "p3") is not None


def test_a_nested_transaction_joins_the_outer_one(store: ClinicalStore) -> None:
    def inner_commits_then_outer_fails() -> None:
        with store.transaction():
            with store.transaction():
                store.put(patient("p1", "Wang", "1990"))
            assert store.find("Patient", "p1") is not None  # visible inside the outer one
            raise RuntimeError("the outer transaction fails")

    with pytest.raises(RuntimeError):
        inner_commits_then_outer_fails()
    assert store.find("Patient", "p1") is None


SEARCHES: list[Any] = [
    pytest.param("Observation", {}, ["o1", "o2", "o3"], id="no parameter lists every resource"),
    pytest.param("Observation", {"_id": "o2,o3"}, ["o2", "o3"], id="_id takes a list"),
    pytest.param("Observation", {"patient": "p1"}, ["o1", "o2"], id="patient by bare id"),
    pytest.param("Observation", {"patient": "Patient/p2"}, ["o3"], id="patient by reference"),
    pytest.param(
        "Observation",
        {"subject": "http://hospa.example.com/fhir/Patient/p2"},
        ["o3"],
        id="subject by absolute URL",
    ),
    pytest.param("Observation", {"encounter": "Encounter/e1"}, ["o1", "o2"], id="encounter"),
    pytest.param("Observation", {"code": "8867-4"}, ["o1", "o3"], id="code without system"),
    pytest.param("Observation", {"code": f"{LOINC}|8310-5"}, ["o2"], id="code with system"),
    pytest.param("Observation", {"code": "http://other|8867-4"}, [], id="code in another system"),
    pytest.param(
        "Observation", {"code": "8867-4", "patient": "p1"}, ["o1"], id="two parameters mean AND"
    ),
    pytest.param("Observation", {"date": "2024"}, ["o1", "o2"], id="date by year"),
    pytest.param("Observation", {"date": "2024-03"}, ["o1"], id="date by month"),
    pytest.param("Observation", {"date": "eq2024-03-05"}, ["o1"], id="date by day"),
    pytest.param("Observation", {"date": "lt2024-03-05"}, ["o3"], id="date before a day"),
    pytest.param("Observation", {"date": "le2024-03-05"}, ["o1", "o3"], id="date up to a day"),
    pytest.param("Observation", {"date": "gt2024-03"}, ["o2"], id="date after a month"),
    pytest.param("Observation", {"date": "ge2024-03-05"}, ["o1", "o2"], id="date from a day"),
    pytest.param("Observation", {"date": "ne2024"}, ["o3"], id="date not in a year"),
    pytest.param("Observation", {"_count": "2"}, ["o1", "o2"], id="_count limits in id order"),
    pytest.param("Condition", {"date": "2020-06-15"}, [], id="a month onset is not in a day"),
    pytest.param("Condition", {"date": "2020"}, ["c1"], id="a month onset is in its year"),
    pytest.param("Condition", {"status": "active"}, ["c1"], id="status reads clinicalStatus"),
    pytest.param("Condition", {"code": f"{ICD10}|I10"}, ["c1"], id="condition by ICD-10 code"),
    pytest.param("Encounter", {"date": "2024-03-05"}, ["e1"], id="encounter by period start"),
    pytest.param("Encounter", {"status": "finished"}, ["e1"], id="encounter by status"),
    pytest.param("Patient", {"name": "WAN"}, ["p1"], id="name contains, any case"),
    pytest.param("Patient", {"name": "mei"}, ["p1", "p2"], id="name matches given names"),
    pytest.param("Patient", {"name": "%"}, [], id="name treats % literally"),
    pytest.param("Patient", {"birthdate": "1985"}, ["p2"], id="birthdate by year"),
    pytest.param("Patient", {"date": "ge1988"}, ["p1"], id="date of a patient is its birth date"),
    pytest.param("Patient", {"gender": "male"}, ["p2"], id="gender"),
    pytest.param(
        "Patient", {"identifier": "urn:test:mrn|MRN-p2"}, ["p2"], id="identifier with system"
    ),
    pytest.param("Patient", {"identifier": "MRN-p1,MRN-p2"}, ["p1", "p2"], id="comma means OR"),
]


@pytest.mark.parametrize(("resource_type", "params", "ids"), SEARCHES)
def test_search_parameters(
    filled: ClinicalStore, resource_type: str, params: dict[str, str], ids: list[str]
) -> None:
    assert [r["id"] for r in filled.search(resource_type, params)] == ids


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param({"colour": "red"}, "colour", id="an unknown parameter names itself"),
        pytest.param({"date": "yesterday"}, "YYYY", id="a malformed date shows the format"),
        pytest.param({"date": "sa2024"}, "YYYY", id="an unsupported prefix shows the format"),
        pytest.param({"_count": "-1"}, "positive", id="a negative _count is refused"),
        pytest.param({"code": ","}, "empty", id="an empty value is refused"),
    ],
)
def test_bad_searches_are_refused(
    filled: ClinicalStore, params: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message) as refused:
        filled.search("Observation", params)
    if "colour" in params:
        assert "patient" in str(refused.value)  # names the supported ones


def test_a_type_the_store_does_not_keep_cannot_be_searched(filled: ClinicalStore) -> None:
    with pytest.raises(InvalidArgument, match="Observation"):
        filled.search("Claim")


def test_an_update_replaces_its_index_rows(filled: ClinicalStore) -> None:
    filled.put(observation("o1", "p2", "1234-5", "2019-01-01"))
    assert [r["id"] for r in filled.search("Observation", {"patient": "p1"})] == ["o2"]
    assert [r["id"] for r in filled.search("Observation", {"code": "1234-5"})] == ["o1"]
    assert [r["id"] for r in filled.search("Observation", {"date": "2019"})] == ["o1"]


def test_referring_finds_every_resource_naming_a_patient(filled: ClinicalStore) -> None:
    found = [(r["resourceType"], r["id"]) for r in filled.referring("Patient/p1")]
    assert found == [("Encounter", "e1"), ("Observation", "o1"), ("Observation", "o2")]


def test_delete_and_delete_by_source(filled: ClinicalStore) -> None:
    filled.put(patient("p7", "Qian", "1970"), source="referral:R9")
    filled.put(observation("o7", "p7", "8867-4", "2024"), source="referral:R9")
    assert filled.delete("Observation", "o1") is True
    assert filled.delete("Observation", "o1") is False
    assert filled.delete_source("referral:R9") == [("Observation", "o7"), ("Patient", "p7")]
    assert filled.delete_source("referral:R9") == []
    assert filled.search("Observation", {"code": "8867-4"}) == [filled.get("Observation", "o3")]
    assert filled.find("Patient", "p7") is None


def test_records_are_documents_by_kind_and_key(store: ClinicalStore) -> None:
    store.set_record("referral", "R2", {"status": "REFERRED", "block": 3})
    store.set_record("referral", "R1", {"status": "ACCEPTED"})
    store.set_record("referral", "R2", {"status": "COMPLETED", "names": ["王芳"]})
    store.set_record("checkpoint", "R1", {"block": 9})
    assert store.get_record("referral", "R2") == {"status": "COMPLETED", "names": ["王芳"]}
    assert store.records("referral") == [
        ("R1", {"status": "ACCEPTED"}),
        ("R2", {"status": "COMPLETED", "names": ["王芳"]}),
    ]
    assert store.delete_record("referral", "R1") is True
    assert store.delete_record("referral", "R1") is False
    assert store.get_record("referral", "R1") is None
    assert store.records("checkpoint") == [("R1", {"block": 9})]


def test_record_keys_page_through_one_prefix_in_key_order(store: ClinicalStore) -> None:
    for key in ("in:002:b", "in:010:a", "in:001:c", "out:005:d", "inx:1"):
        store.set_record("order", key, {})
    assert store.record_keys("order", "in:", limit=2, descending=True) == ["in:010:a", "in:002:b"]
    assert store.record_keys("order", "in:", offset=2, limit=2, descending=True) == ["in:001:c"]
    assert store.record_keys("order", "in:", limit=5) == ["in:001:c", "in:002:b", "in:010:a"]
    assert (store.count_records("order", "in:"), store.count_records("order")) == (3, 5)


def test_data_survives_reopening(database_url: str) -> None:
    with ClinicalStore.open(database_url) as first:
        first.put(patient("p1", "Wang", "1990"))
    with ClinicalStore.open(database_url) as second:
        assert second.get("Patient", "p1")["name"][0]["family"] == "Wang"


def test_two_stores_in_one_postgres_database_keep_apart(postgres_url: str) -> None:
    with (
        ClinicalStore.open(postgres_url, schema="hospital_a") as a,
        ClinicalStore.open(postgres_url, schema="hospital_b") as b,
    ):
        a.put(patient("p1", "Wang", "1990"))
        assert b.find("Patient", "p1") is None


def test_a_path_opens_sqlite_creating_its_folders(tmp_path: Path) -> None:
    with ClinicalStore.open(tmp_path / "hospitals" / "HospAMSP.db") as opened:
        opened.put(patient("p1", "Wang", "1990"))
    assert (tmp_path / "hospitals" / "HospAMSP.db").is_file()


def test_an_unreachable_postgres_says_so_without_the_password() -> None:
    with pytest.raises(Unavailable) as refused:
        ClinicalStore.open("postgresql://nurse:s3cret-pw@127.0.0.1:1/hospital")
    assert "s3cret-pw" not in str(refused.value)
    assert "127.0.0.1" in str(refused.value)


def test_tasks_are_found_by_owner_and_requester_and_paged_with_their_count(
    store: ClinicalStore,
) -> None:
    for n in range(5):
        store.put({"resourceType": "Task", "id": f"t{n}", "status": "requested", "intent": "order",
                   "owner": {"reference": f"Organization/{'b' if n % 2 else 'a'}"},
                   "requester": {"reference": "Organization/c"}})  # fmt: skip
    mine = {"owner": "Organization/b", "status": "requested"}
    assert store.search_count("Task", mine) == 2
    assert [t["id"] for t in store.search("Task", {**mine, "_count": "1", "_offset": "1"})] == [
        "t3"
    ]
    assert [t["id"] for t in store.search("Task", {"requester": "Organization/c", "_offset": "3"})] == ["t3", "t4"]  # fmt: skip
    with pytest.raises(InvalidArgument):
        store.search("Task", {"_offset": "-1"})
