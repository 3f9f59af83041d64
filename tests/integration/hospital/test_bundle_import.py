"""Bundle import and export on a real store: each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from tests.integration.hospital.synthetic_bundle import RESIDENT_IDS, synthea_bundle, uid

from medalliance.errors import InvalidArgument, NotFound
from medalliance.hospital.bundle_entries import MAX_ENTRIES
from medalliance.hospital.bundle_export import export_patient
from medalliance.hospital.bundle_import import import_bundle
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.fhir_validation import InvalidResource
from medalliance.hospital.identifiers import PSEUDONYM_SYSTEM, identifier_value
from medalliance.privacy import oprf
from medalliance.privacy.pseudonym import oprf_input, pseudonym_of

TYPES = (
    "Patient",
    "Encounter",
    "Condition",
    "Observation",
    "MedicationRequest",
    "Procedure",
    "DiagnosticReport",
    "Immunization",
    "AllergyIntolerance",
    "Organization",
    "Practitioner",
)


@pytest.fixture
def store(database_url: str) -> Iterator[ClinicalStore]:
    opened = ClinicalStore.open(database_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="module")
def pseudonym() -> Callable[[str, str], str]:
    """The alliance's OPRF pseudonym, evaluated locally under a key made for this test module
    (the network's pseudonym service does the same evaluation remotely)."""
    key = oprf.generate_key()

    def compute(id_type: str, number: str) -> str:
        return pseudonym_of(oprf.evaluate(key, oprf_input(id_type, number)))

    return compute


def everything(store: ClinicalStore) -> dict[str, list[dict[str, Any]]]:
    return {t: store.search(t) for t in TYPES}


def test_a_synthea_style_bundle_imports_with_references_resolved(
    store: ClinicalStore, pseudonym: Callable[[str, str], str]
) -> None:
    report = import_bundle(store, synthea_bundle(2, unidentified=1), pseudonym=pseudonym)
    assert len(report.created) == 2 + 3 * 9
    assert report.updated == report.unchanged == report.skipped == []
    assert len(report.ignored) == 3
    assert all(k.startswith("Claim/") for k in report.ignored)
    patient = uid("patient-0")
    assert report.patients == [
        (patient, pseudonym("resident-id", RESIDENT_IDS[0])),
        (uid("patient-1"), pseudonym("resident-id", RESIDENT_IDS[1])),
    ]
    assert report.without_pseudonym == [uid("patient-2")]
    stored = store.get("Patient", patient)
    assert identifier_value(stored, PSEUDONYM_SYSTEM) == report.patients[0][1]
    encounter = store.get("Encounter", uid("encounter-0"))
    assert encounter["subject"] == {"reference": f"Patient/{patient}"}
    # Synthea's conditional references resolve to the one shared Organization / Practitioner.
    assert encounter["serviceProvider"] == {"reference": f"Organization/{uid('org-hosp-a')}"}
    assert encounter["participant"][0]["individual"] == {
        "reference": f"Practitioner/{uid('practitioner-1')}"
    }
    found = store.search("Observation", {"patient": patient, "encounter": uid("encounter-0")})
    assert [o["id"] for o in found] == [uid("observation-0")]
    report_resource = store.get("DiagnosticReport", uid("report-0"))
    assert report_resource["result"] == [{"reference": f"Observation/{uid('observation-0')}"}]
    assert store.source_of("Patient", patient) == "local"


def test_importing_the_same_bundle_twice_changes_nothing(
    store: ClinicalStore, pseudonym: Callable[[str, str], str]
) -> None:
    bundle = json.dumps(synthea_bundle(2)).encode()
    import_bundle(store, bundle, pseudonym=pseudonym, source="import:a.json")
    before = everything(store)
    again = import_bundle(store, bundle, pseudonym=pseudonym, source="import:a.json")
    assert again.created == again.updated == []
    assert len(again.unchanged) == 2 + 2 * 9
    assert everything(store) == before


def test_an_entry_without_id_gets_its_id_from_the_full_url(store: ClinicalStore) -> None:
    bundle = synthea_bundle(1)
    for item in bundle["entry"]:
        del item["resource"]["id"]
    import_bundle(store, bundle)
    import_bundle(store, bundle)  # the same ids again, not new copies
    assert [p["id"] for p in store.search("Patient")] == [uid("patient-0")]


def invalid_bundle() -> dict[str, Any]:
    """Two patients; patient 0's birth date, one observation's status and one condition's
    reference are wrong, and patient 1's resident ID has a wrong check digit."""
    bundle = synthea_bundle(2)
    resources = {item["resource"]["id"]: item["resource"] for item in bundle["entry"]}
    resources[uid("patient-0")]["birthDate"] = "1960-02-30x"
    resources[uid("observation-1")]["status"] = "done"
    resources[uid("condition-1")]["encounter"] = {"reference": "Encounter/not-there"}
    resources[uid("patient-1")]["identifier"][0]["value"] = "110101199003074515"
    return bundle


def test_an_invalid_bundle_lists_every_issue_and_imports_nothing(
    store: ClinicalStore, pseudonym: Callable[[str, str], str]
) -> None:
    import_bundle(store, synthea_bundle(1, unidentified=0) | {"entry": []}, pseudonym=pseudonym)
    with pytest.raises(InvalidResource) as refused:
        import_bundle(store, invalid_bundle(), pseudonym=pseudonym)
    found = {(i.resource_type, i.resource_id, i.path) for i in refused.value.issues}
    assert found == {
        ("Patient", uid("patient-0"), "Patient.birthDate"),
        ("Observation", uid("observation-1"), "Observation.status"),
        ("Condition", uid("condition-1"), "Condition.encounter.reference"),
        ("Patient", uid("patient-1"), "Patient.identifier"),
    }
    assert "110101199003074515" not in str(refused.value)
    assert everything(store) == {t: [] for t in TYPES}


def test_skip_invalid_imports_the_rest_and_reports_what_it_skipped(
    store: ClinicalStore, pseudonym: Callable[[str, str], str]
) -> None:
    report = import_bundle(store, invalid_bundle(), pseudonym=pseudonym, skip_invalid=True)
    skipped = {f"{i.resource_type}/{i.resource_id}" for i in report.skipped}
    # Both patients are invalid, so everything of theirs is skipped too, with its own reason.
    assert f"Encounter/{uid('encounter-0')}" in skipped
    assert any(i.reason == f"refers to skipped Patient/{uid('patient-0')}" for i in report.skipped)
    assert sorted(report.created) == sorted(
        [f"Organization/{uid('org-hosp-a')}", f"Practitioner/{uid('practitioner-1')}"]
    )
    assert store.search("Patient") == []
    assert store.search("Observation") == []


def test_skip_invalid_keeps_valid_resources_of_a_valid_patient(store: ClinicalStore) -> None:
    bundle = synthea_bundle(1)
    for item in bundle["entry"]:
        if item["resource"]["id"] == uid("observation-0"):
            item["resource"]["status"] = "done"
    report = import_bundle(store, bundle, skip_invalid=True)
    # The report refers to the bad observation, so it is skipped too; the rest imports.
    assert {f"{i.resource_type}/{i.resource_id}" for i in report.skipped} == {
        f"Observation/{uid('observation-0')}",
        f"DiagnosticReport/{uid('report-0')}",
    }
    assert store.find("Condition", uid("condition-0")) is not None
    assert store.find("Observation", uid("observation-0")) is None


def test_references_to_the_store_resolve(store: ClinicalStore) -> None:
    import_bundle(store, synthea_bundle(1))
    later = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "weight"},
                    "subject": {
                        "reference": f"http://other.example/fhir/Patient/{uid('patient-0')}"
                    },
                },
                "request": {"method": "PUT", "url": "Observation/weight-1"},
            }
        ],
    }
    report = import_bundle(store, later)
    assert report.created == ["Observation/weight-1"]
    stored = store.get("Observation", "weight-1")
    assert stored["subject"] == {"reference": f"Patient/{uid('patient-0')}"}


def deep_list(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return {"resourceType": "Patient", "id": "p1", "extension": value}


HOSTILE: list[Any] = [
    pytest.param(b"{not json", "not valid JSON", id="malformed JSON says where"),
    pytest.param(b"\xff\xfe", "UTF-8", id="bytes that are not UTF-8 are refused"),
    pytest.param(b"[]", "resourceType", id="a JSON array is not a bundle"),
    pytest.param(
        {"resourceType": "Patient", "id": "p1"}, "resourceType", id="a lone resource is refused"
    ),
    pytest.param(
        {"resourceType": "Bundle", "type": "document", "entry": []},
        "transaction, batch, collection, searchset",
        id="a document bundle names the accepted types",
    ),
    pytest.param(
        {"resourceType": "Bundle", "type": "collection", "entry": {"x": 1}},
        "list",
        id="entries that are not a list are refused",
    ),
    pytest.param(
        {"resourceType": "Bundle", "type": "collection", "entry": [{}] * (MAX_ENTRIES + 1)},
        "split",
        id="a bundle with too many entries is refused",
    ),
    pytest.param(b" " * (50 * 1024 * 1024 + 1), "MiB", id="a bundle over 50 MiB is refused unread"),
    pytest.param(b"[" * 100_000, "nested too deeply", id="hostile JSON nesting is refused"),
    pytest.param(
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": deep_list(80)}]},
        "nests deeper",
        id="nesting deeper than any FHIR resource is refused",
    ),
]


@pytest.mark.parametrize(("bundle", "message"), HOSTILE)
def test_hostile_input_is_refused_and_changes_nothing(
    store: ClinicalStore, bundle: Any, message: str
) -> None:
    import_bundle(store, synthea_bundle(1))
    before = everything(store)
    with pytest.raises(InvalidArgument, match=message):
        import_bundle(store, bundle, skip_invalid=True)
    assert everything(store) == before


REFUSED_ENTRIES: list[Any] = [
    pytest.param(
        {"request": {"method": "DELETE", "url": "Patient/p1"}},
        "DELETE",
        id="a DELETE request is refused",
    ),
    pytest.param(
        {"request": {"method": "PUT", "url": "Patient/other-id"}},
        "differs",
        id="a PUT whose url names another id is refused",
    ),
    pytest.param(
        {"fullUrl": "urn:uuid:00000000-0000-0000-0000-000000000001"},
        "twice",
        id="the same resource twice is refused",
    ),
]


@pytest.mark.parametrize(("change", "reason"), REFUSED_ENTRIES)
def test_refused_entries_refuse_the_bundle(
    store: ClinicalStore, change: dict[str, Any], reason: str
) -> None:
    bundle = synthea_bundle(1)
    first = bundle["entry"][2]  # patient 0
    bundle["entry"].append(copy.deepcopy(first) | change)
    with pytest.raises(InvalidResource, match=reason):
        import_bundle(store, bundle)
    assert everything(store) == {t: [] for t in TYPES}


def test_a_failing_pseudonym_service_imports_nothing(store: ClinicalStore) -> None:
    def unreachable(id_type: str, number: str) -> str:
        raise NotFound("no pseudonym service in this test")

    with pytest.raises(NotFound):
        import_bundle(store, synthea_bundle(2), pseudonym=unreachable)
    assert everything(store) == {t: [] for t in TYPES}


def test_an_exported_patient_validates_and_holds_the_record(
    store: ClinicalStore, pseudonym: Callable[[str, str], str]
) -> None:
    import_bundle(store, synthea_bundle(2), pseudonym=pseudonym)
    exported = export_patient(store, uid("patient-0"))
    Bundle.model_validate(exported)  # raises if the library finds it invalid
    keys = [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in exported["entry"]]
    assert keys[0] == f"Patient/{uid('patient-0')}"
    assert f"Organization/{uid('org-hosp-a')}" in keys  # referenced, so included
    assert f"Patient/{uid('patient-1')}" not in keys
    assert len(keys) == 9 + 2


def test_an_export_imports_into_an_empty_store_as_it_was(
    store: ClinicalStore, tmp_path: Any, pseudonym: Callable[[str, str], str]
) -> None:
    import_bundle(store, synthea_bundle(2), pseudonym=pseudonym)
    exported = export_patient(store, uid("patient-1"))
    with ClinicalStore.open(tmp_path / "copy.db") as empty:
        report = import_bundle(empty, json.dumps(exported).encode())
        assert len(report.created) == len(exported["entry"])
        for item in exported["entry"]:
            resource = item["resource"]
            copied = empty.get(resource["resourceType"], resource["id"])
            assert _unstamped(copied) == _unstamped(resource)


def test_an_encounter_export_holds_that_encounter_only(
    store: ClinicalStore, pseudonym: Callable[[str, str], str]
) -> None:
    import_bundle(store, synthea_bundle(2), pseudonym=pseudonym)
    exported = export_patient(store, uid("patient-0"), uid("encounter-0"))
    Bundle.model_validate(exported)
    types = sorted(e["resource"]["resourceType"] for e in exported["entry"])
    assert "AllergyIntolerance" not in types  # refers to the patient, not to the encounter
    assert types.count("Encounter") == 1
    assert "Observation" in types
    with pytest.raises(InvalidArgument, match="not an encounter of"):
        export_patient(store, uid("patient-1"), uid("encounter-0"))
    with pytest.raises(NotFound):
        export_patient(store, "nobody")


def _unstamped(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k != "meta"}
