"""The referral and feedback Bundles (HL7 BSeR pattern): what they carry, what they leave out, and
what a receiver refuses. Validation is checked with fhir.resources (R4B) directly."""

from __future__ import annotations

import base64
import contextlib
import copy
import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medalliance.errors import InvalidArgument
from medalliance.hospital.bundle_checks import references
from medalliance.hospital.code_systems import (
    DEPARTMENT_SYSTEM,
    ICD10_SYSTEM,
    MSP_ID_SYSTEM,
    REFERRAL_ID_SYSTEM,
    REFERRAL_STATUS_SYSTEM,
)
from medalliance.hospital.identifiers import (
    PSEUDONYM_SYSTEM,
    RESIDENT_ID_SYSTEM,
    VISIT_NUMBER_SYSTEM,
    identifier_value,
)
from medalliance.hospital.referral_bundle import (
    ReferralRequest,
    build_feedback_bundle,
    build_referral_bundle,
    read_referral_bundle,
)

NAME, RESIDENT_ID = "张三", "11010519491231002X"  # never in an error message
SECRET_TEXT = "PCI for acute myocardial infarction"
REQUEST = ReferralRequest(
    referral_id="REF-1-UP",
    visit_number="V-1",
    patient_ref="ps-0123abcd",
    from_org="SecondaryAMSP",
    to_org="TertiaryAMSP",
    direction="UP",
    priority="urgent",
    diagnoses=(("I21.0", "Acute anterior wall myocardial infarction"), ("I10", "Hypertension")),
    department="03.04",
    purpose=SECRET_TEXT,
    authored_on="2026-12-03T09:30:00+08:00",
)
PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "identifier": [
        {"system": "http://hospital-a.example/mrn", "value": "MRN-77"},
        {"system": RESIDENT_ID_SYSTEM, "value": RESIDENT_ID},
    ],
    "name": [{"text": NAME}],
    "gender": "male",
    "birthDate": "1949-12-31",
    "telecom": [{"system": "phone", "value": "13800000000"}],
    "address": [{"text": "某市某区某路 1 号"}],
}
ENCOUNTER: dict[str, Any] = {
    "resourceType": "Encounter",
    "id": "e1",
    "identifier": [{"system": VISIT_NUMBER_SYSTEM, "value": "V-1"}],
    "status": "finished",
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
    "subject": {"reference": "Patient/p1"},
    "serviceProvider": {"reference": "Organization/hospital-a"},  # not selected
}
CONDITION: dict[str, Any] = {
    "resourceType": "Condition",
    "id": "c1",
    "subject": {"reference": "Patient/p1"},
    "encounter": {"reference": "Encounter/e1"},
    "code": {"coding": [{"system": ICD10_SYSTEM, "code": "I21.0"}], "text": SECRET_TEXT},
}
OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "o1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "10839-9"}]},
    "subject": {"reference": "Patient/p1"},
    "encounter": {"reference": "Encounter/e-unselected"},
    "valueQuantity": {"value": 2.3, "unit": "ng/mL"},
}
DISCHARGE: dict[str, Any] = {
    "resourceType": "DocumentReference",
    "id": "d1",
    "status": "current",
    "subject": {"reference": "Patient/p1"},
    "content": [{"attachment": {"contentType": "text/plain", "data": "5Ye66Zmi5bCP57uT"}}],
}
SUPPORTING = (ENCOUNTER, CONDITION, OBSERVATION)


def referral(**changes: Any) -> dict[str, Any]:
    return build_referral_bundle(dataclasses.replace(REQUEST, **changes), PATIENT, SUPPORTING)


def by_type(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def target(bundle: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    (found,) = [e["resource"] for e in bundle["entry"] if e["fullUrl"] == reference["reference"]]
    return found


def reference_texts(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            yield value["reference"]
        for item in value.values():
            yield from reference_texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from reference_texts(item)


def encoded(bundle: dict[str, Any]) -> bytes:
    return json.dumps(bundle, ensure_ascii=False).encode()


# --- the referral Bundle -----------------------------------------------------------------------


def test_the_referral_bundle_validates_and_follows_bser() -> None:
    bundle = referral()
    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection"
    (task,) = by_type(bundle, "Task")
    (service_request,) = by_type(bundle, "ServiceRequest")
    assert (task["status"], task["intent"]) == ("requested", "order")
    assert task["identifier"] == [{"system": REFERRAL_ID_SYSTEM, "value": "REF-1-UP"}]
    assert task["businessStatus"]["coding"][0] == {
        "system": REFERRAL_STATUS_SYSTEM,
        "code": "REFERRED",
    }
    assert target(bundle, task["focus"]) == service_request
    assert target(bundle, task["for"])["resourceType"] == "Patient"
    msp = {"requester": "SecondaryAMSP", "owner": "TertiaryAMSP"}
    for role, msp_id in msp.items():
        organization = target(bundle, task[role])
        assert organization["identifier"] == [{"system": MSP_ID_SYSTEM, "value": msp_id}]
    assert target(bundle, service_request["requester"]) == target(bundle, task["requester"])
    assert target(bundle, service_request["performer"][0]) == target(bundle, task["owner"])
    assert service_request["priority"] == task["priority"] == "urgent"
    assert service_request["category"][0]["coding"][0]["code"] == "3457005"
    assert service_request["code"]["coding"][0]["system"] == DEPARTMENT_SYSTEM
    assert service_request["code"]["coding"][0]["code"] == "03.04"
    reasons = [c["coding"][0] for c in service_request["reasonCode"]]
    assert [(r["system"], r["code"]) for r in reasons] == [
        (ICD10_SYSTEM, "I21.0"),
        (ICD10_SYSTEM, "I10"),
    ]
    assert service_request["note"] == [{"text": SECRET_TEXT}]
    supporting = [target(bundle, ref)["id"] for ref in service_request["supportingInfo"]]
    assert supporting == ["e1", "c1", "o1"]
    assert target(bundle, service_request["encounter"])["id"] == "e1"  # by the visit number


def test_every_reference_resolves_inside_the_bundle() -> None:
    bundle = referral()
    full_urls = {entry["fullUrl"] for entry in bundle["entry"]}
    assert all(url.startswith("urn:uuid:") for url in full_urls)
    assert set(reference_texts(bundle)) <= full_urls
    (condition,) = by_type(bundle, "Condition")
    assert target(bundle, condition["encounter"])["id"] == "e1"  # refs among the selected kept
    assert target(bundle, condition["subject"])["resourceType"] == "Patient"


def test_only_the_minimum_necessary_travels() -> None:
    bundle = referral()
    (patient,) = by_type(bundle, "Patient")
    assert patient == {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [
            {"system": RESIDENT_ID_SYSTEM, "value": RESIDENT_ID},
            {"system": PSEUDONYM_SYSTEM, "value": "ps-0123abcd"},
        ],
        "name": [{"text": NAME}],
        "gender": "male",
        "birthDate": "1949-12-31",
    }
    kinds = sorted(e["resource"]["resourceType"] for e in bundle["entry"])
    assert kinds == sorted(
        [
            "Task",
            "ServiceRequest",
            "Patient",
            "Organization",
            "Organization",
            "Encounter",
            "Condition",
            "Observation",
        ]
    )
    (observation,) = by_type(bundle, "Observation")
    assert observation["encounter"] == {"display": "not included in this referral"}
    (encounter,) = by_type(bundle, "Encounter")
    assert "reference" not in encounter["serviceProvider"]


def test_building_is_deterministic_and_leaves_the_inputs_alone() -> None:
    before = copy.deepcopy((PATIENT, SUPPORTING))
    assert referral() == referral()
    assert before == (PATIENT, SUPPORTING)
    assert referral()["entry"][0] != referral(referral_id="REF-2-UP")["entry"][0]


def test_whitespace_fhir_forbids_in_free_text_becomes_a_space() -> None:
    bundle = referral(purpose="PCI\u00a0now", diagnoses=(("I10", "Hyper\u2003tension"),))
    (service_request,) = by_type(bundle, "ServiceRequest")
    assert service_request["note"] == [{"text": "PCI now"}]
    assert service_request["reasonCode"][0]["coding"][0]["display"] == "Hyper tension"


def test_a_downward_referral_carries_its_discharge_summary() -> None:
    down = dataclasses.replace(
        REQUEST, direction="DOWN", from_org="TertiaryAMSP", to_org="SecondaryAMSP"
    )
    bundle = build_referral_bundle(down, PATIENT, (*SUPPORTING, DISCHARGE))
    Bundle.model_validate(bundle)
    (service_request,) = by_type(bundle, "ServiceRequest")
    assert service_request["category"][1]["coding"][0]["code"] == "DOWN"
    assert [d["id"] for d in by_type(bundle, "DocumentReference")] == ["d1"]


def test_the_reader_returns_what_the_builder_wrote() -> None:
    bundle = referral()
    package = read_referral_bundle(encoded(bundle), referral_id="REF-1-UP")
    assert (package.referral_id, package.patient_ref) == ("REF-1-UP", "ps-0123abcd")
    assert (package.requester, package.owner) == ("SecondaryAMSP", "TertiaryAMSP")
    assert package.bundle == bundle
    assert package.task == by_type(bundle, "Task")[0]
    assert package.service_request == by_type(bundle, "ServiceRequest")[0]
    assert package.patient == by_type(bundle, "Patient")[0]
    assert [r["resourceType"] for r in package.resources] == [
        "Organization",
        "Organization",
        "Encounter",
        "Condition",
        "Observation",
    ]
    assert NAME not in repr(package)
    assert SECRET_TEXT not in repr(REQUEST)


def other_patients_condition() -> dict[str, Any]:
    return {**CONDITION, "id": "c9", "subject": {"reference": "Patient/p2"}}


@pytest.mark.parametrize(
    ("changes", "patient", "supporting", "fault"),
    [
        pytest.param({"priority": "whenever"}, PATIENT, (), "priority", id="an unknown priority"),
        pytest.param({"department": "99"}, PATIENT, (), "department", id="an unknown department"),
        pytest.param({"diagnoses": (("heart", "MI"),)}, PATIENT, (), "diagnoses[0]",
                     id="a diagnosis that is not an ICD-10 code"),
        pytest.param({"diagnoses": ()}, PATIENT, (), "at least one", id="no diagnosis"),
        pytest.param({"authored_on": "2026-12-03"}, PATIENT, (), "authored_on",
                     id="a time without a zone"),
        pytest.param({"to_org": "SecondaryAMSP"}, PATIENT, (), "different", id="a self-referral"),
        pytest.param({"direction": "SIDEWAYS"}, PATIENT, (), "direction", id="an unknown direction"),
        pytest.param({"patient_ref": ""}, PATIENT, (), "patient_ref", id="no pseudonym"),
        pytest.param({"referral_id": "REF 1/UP"}, PATIENT, (), "referral_id",
                     id="a referral id the chain would not accept"),
        pytest.param({"direction": "DOWN"}, PATIENT, SUPPORTING, "discharge summary",
                     id="a downward referral without its discharge summary"),
        pytest.param({}, PATIENT, (PATIENT,), "may not travel", id="a Patient selected as support"),
        pytest.param({}, PATIENT, (other_patients_condition(),), "other than the referred",
                     id="another patient's condition"),
        pytest.param({}, PATIENT, ({**CONDITION, "subject": {"reference": "urn:uuid:0f0e"}},),
                     "supporting[0].subject names neither", id="a condition of nobody known"),
        pytest.param({}, PATIENT, ({**CONDITION, "recordedDate": "yesterday"},),
                     "supporting[0].recordedDate", id="a supporting resource that is not valid FHIR"),
        pytest.param({}, PATIENT, (CONDITION, CONDITION), "repeats", id="a resource selected twice"),
        pytest.param({}, {**PATIENT, "identifier": PATIENT["identifier"][:1]}, (),
                     "resident ID", id="a patient without an identity for the pseudonym"),
        pytest.param({}, {**PATIENT, "identifier": [*PATIENT["identifier"],
                     {"system": PSEUDONYM_SYSTEM, "value": "ps-other"}]}, (),
                     "pseudonym", id="a patient whose pseudonym is another"),
        pytest.param({}, {**PATIENT, "birthDate": "31/12/1949"}, (), "patient.birthDate",
                     id="a patient that is not valid FHIR"),
        pytest.param({}, {**CONDITION}, (), "FHIR Patient", id="a Condition given as the patient"),
    ],
)  # fmt: skip
def test_the_builder_refuses_a_bad_referral(
    changes: dict[str, Any],
    patient: dict[str, Any],
    supporting: tuple[dict[str, Any], ...],
    fault: str,
) -> None:
    before = copy.deepcopy((patient, supporting))
    request = dataclasses.replace(REQUEST, **changes)
    with pytest.raises(InvalidArgument) as refused:
        build_referral_bundle(request, patient, supporting)
    assert fault in str(refused.value)
    for private in (NAME, RESIDENT_ID, SECRET_TEXT, "31/12/1949", "yesterday"):
        assert private not in str(refused.value)
    assert (patient, supporting) == before  # nothing half-changed


def test_a_referral_of_the_shipped_example_patient_validates() -> None:
    path = Path(__file__).resolve().parents[3] / "examples" / "fhir" / "secondary-hospital-a.json"
    source = json.loads(path.read_text(encoding="utf-8"))
    # as a store holds them: references as Type/id instead of the transaction's urn:uuid
    local = {
        e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in source["entry"]
    }
    stored = json.loads(json.dumps([e["resource"] for e in source["entry"]]))
    for found in stored:
        for ref in (r for _, r in references(found, "")):
            ref["reference"] = local[ref["reference"]]
    patient = next(r for r in stored if r["resourceType"] == "Patient")
    mine = [r for r in stored if r.get("subject") == {"reference": f"Patient/{patient['id']}"}]
    visit = identifier_value(
        next(r for r in mine if r["resourceType"] == "Encounter"), VISIT_NUMBER_SYSTEM
    )
    request = dataclasses.replace(REQUEST, visit_number=visit or "")
    bundle = build_referral_bundle(request, patient, mine)
    Bundle.model_validate(bundle)
    package = read_referral_bundle(encoded(bundle), referral_id=REQUEST.referral_id)
    kinds = {r["resourceType"] for r in package.resources}
    assert {"Encounter", "Condition", "Observation", "DiagnosticReport", "ImagingStudy"} <= kinds
    assert package.service_request is not None
    assert "encounter" in package.service_request  # tied to the visit by its number


# --- the feedback Bundle -----------------------------------------------------------------------


def feedback(**changes: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "from_org": "TertiaryAMSP",
        "to_org": "SecondaryAMSP",
        "patient_ref": "ps-0123abcd",
        "status": "COMPLETED",
        "document_title": "出院小结",
        "document_text": "PCI done, one stent, stable",
        "authored_on": "2026-12-05T10:00:00+08:00",
        "attachments": [("ECG", "image/png", b"\x89PNG fake")],
    }
    return build_feedback_bundle("REF-1-UP", **{**arguments, **changes})


def test_the_feedback_bundle_carries_the_discharge_summary_back() -> None:
    bundle = feedback()
    Bundle.model_validate(bundle)
    (task,) = by_type(bundle, "Task")
    (document,) = by_type(bundle, "DocumentReference")
    assert task["status"] == "completed"
    assert task["businessStatus"]["coding"][0]["code"] == "COMPLETED"
    assert task["id"] == by_type(referral(), "Task")[0]["id"]  # the referral's Task, updated
    assert target(bundle, task["output"][0]["valueReference"]) == document
    assert target(bundle, task["owner"])["identifier"][0]["value"] == "TertiaryAMSP"
    assert target(bundle, task["requester"])["identifier"][0]["value"] == "SecondaryAMSP"
    assert document["type"]["coding"][0]["code"] == "18842-5"  # LOINC discharge summary
    texts = [base64.b64decode(c["attachment"]["data"]) for c in document["content"]]
    assert texts == [b"PCI done, one stent, stable", b"\x89PNG fake"]
    package = read_referral_bundle(encoded(bundle), referral_id="REF-1-UP")
    assert package.service_request is None
    assert (package.requester, package.owner) == ("SecondaryAMSP", "TertiaryAMSP")
    assert package.patient_ref == "ps-0123abcd"
    assert set(package.patient) == {"resourceType", "id", "identifier"}  # the pseudonym only


def test_a_rejection_is_feedback_without_a_discharge_summary() -> None:
    bundle = feedback(status="REJECTED", document_title="Review", attachments=())
    (task,) = by_type(bundle, "Task")
    (document,) = by_type(bundle, "DocumentReference")
    assert task["status"] == "rejected"
    assert document["type"]["coding"][0]["code"] == "11488-4"


@pytest.mark.parametrize(
    ("changes", "fault"),
    [
        pytest.param({"status": "REFERRED"}, "status", id="feedback cannot re-request"),
        pytest.param({"status": "done"}, "status", id="an unknown status"),
        pytest.param({"document_text": ""}, "document_text", id="an empty document"),
        pytest.param({"authored_on": "tomorrow"}, "authored_on", id="a time that is no time"),
        pytest.param({"attachments": [("ECG", "png", b"x")]}, "attachments[0]",
                     id="an attachment without a MIME type"),
        pytest.param({"to_org": "TertiaryAMSP"}, "different", id="feedback to oneself"),
    ],
)  # fmt: skip
def test_the_feedback_builder_refuses_bad_fields(changes: dict[str, Any], fault: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        feedback(**changes)
    assert fault in str(refused.value)
    assert "PCI done" not in str(refused.value)


# --- what a receiver refuses -------------------------------------------------------------------


def edited(edit: Callable[[dict[str, Any]], None]) -> bytes:
    bundle = copy.deepcopy(referral())
    edit(bundle)
    return encoded(bundle)


def resource(bundle: dict[str, Any], kind: str) -> dict[str, Any]:
    return by_type(bundle, kind)[0]


@pytest.mark.parametrize(
    ("data", "fault"),
    [
        pytest.param(b"\xff\xfe not utf-8", "not a JSON document", id="bytes that are not UTF-8"),
        pytest.param(b'{"resourceType": "Bundle", ', "not a JSON document", id="truncated JSON"),
        pytest.param(b"[1, 2]", "must be a FHIR Bundle", id="JSON that is not an object"),
        pytest.param(encoded(PATIENT), "must be a FHIR Bundle", id="a Patient instead of a Bundle"),
        pytest.param(edited(lambda b: b.update(type="transaction")), "collection",
                     id="a transaction Bundle"),
        pytest.param(edited(lambda b: resource(b, "Patient").update(birthDate="31/12/1949")),
                     "entry[2].resource.birthDate", id="a resource that is not valid FHIR"),
        pytest.param(edited(lambda b: resource(b, "Patient").update(resourceType="Patient2")),
                     "not a FHIR R4 resource type", id="an unknown resource type"),
        pytest.param(edited(lambda b: b["entry"].append(copy.deepcopy(b["entry"][0]))),
                     "repeats", id="two entries with one fullUrl"),
        pytest.param(edited(lambda b: b["entry"][3].pop("fullUrl")), "entry[3].fullUrl",
                     id="an entry without a fullUrl"),
        pytest.param(edited(lambda b: b["entry"].pop(0)), "exactly one Task", id="no Task"),
        pytest.param(edited(lambda b: b["entry"].pop(2)), "exactly one Patient", id="no Patient"),
        pytest.param(edited(lambda b: resource(b, "Task").pop("identifier")), "Task.identifier",
                     id="a Task without the referral id"),
        pytest.param(edited(lambda b: resource(b, "Task")["identifier"][0].update(value="REF-9")),
                     "another referral", id="the package of another referral"),
        pytest.param(edited(lambda b: resource(b, "ServiceRequest")["identifier"][0].update(
                     value="REF-9")), "ServiceRequest.identifier",
                     id="a ServiceRequest of another referral"),
        pytest.param(edited(lambda b: resource(b, "Patient")["identifier"].pop()),
                     "Patient.identifier", id="a Patient without a pseudonym"),
        pytest.param(edited(lambda b: resource(b, "Condition")["subject"].update(
                     reference="Patient/elsewhere")), "entry[6].resource.subject.reference",
                     id="a reference that resolves nowhere"),
        pytest.param(edited(lambda b: resource(b, "Task").update(
                     focus=resource(b, "Task")["for"])), "Task.focus",
                     id="a Task focused on something else than a ServiceRequest"),
        pytest.param(edited(lambda b: resource(b, "Task").update(
                     **{"for": resource(b, "Task")["owner"]})), "Task.for",
                     id="a Task for somebody else than the Patient"),
        pytest.param(edited(lambda b: resource(b, "Task").pop("focus")), "Task.focus",
                     id="a requested referral without its ServiceRequest"),
        pytest.param(edited(lambda b: resource(b, "Task").update(
                     owner=resource(b, "Task")["for"])), "Task.owner",
                     id="a Task owned by something else than an alliance Organization"),
        pytest.param(edited(lambda b: resource(b, "Organization")["identifier"][0].update(
                     system="urn:other")), "Task.requester",
                     id="an origin Organization without its MSP id"),
    ],
)  # fmt: skip
def test_the_reader_refuses_a_bad_package(data: bytes, fault: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        read_referral_bundle(data, referral_id="REF-1-UP")
    message = str(refused.value)
    assert fault in message
    for private in (NAME, RESIDENT_ID, SECRET_TEXT, "31/12/1949", "elsewhere"):
        assert private not in message


def test_the_reader_refuses_a_huge_package_before_parsing_it() -> None:
    data = encoded(referral())
    with pytest.raises(InvalidArgument, match="limit is 1024"):
        read_referral_bundle(data + b" " * 1024, max_bytes=1024)
    assert read_referral_bundle(data, max_bytes=len(data)).referral_id == "REF-1-UP"


def test_a_deeply_nested_document_is_refused_not_crashed() -> None:
    with pytest.raises(InvalidArgument):
        read_referral_bundle(b"[" * 100_000 + b"]" * 100_000)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["resourceType", "type", "entry", "resource", "fullUrl",
                                       "reference", "identifier", "id", "x"]), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_random_input_raises_only_invalid_argument(data: bytes) -> None:
    with contextlib.suppress(InvalidArgument):
        read_referral_bundle(data)


def paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key)
            yield from paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*path, index)
            yield from paths(item, (*path, index))


VALID = referral()
VALID_PATHS = list(paths(VALID))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID_PATHS), st.none() | st.integers() | st.text(max_size=6) | st.just({}))
def test_a_damaged_bundle_is_read_or_refused_never_crashes(
    path: tuple[Any, ...], value: Any
) -> None:
    bundle = copy.deepcopy(VALID)
    parent = bundle
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    try:
        package = read_referral_bundle(encoded(bundle))
    except InvalidArgument:
        return
    assert package.referral_id
    assert package.patient_ref


REQUEST_FIELDS = ["referral_id", "visit_number", "patient_ref", "from_org", "to_org", "purpose",
                  "authored_on", "priority", "department", "direction"]  # fmt: skip


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(REQUEST_FIELDS), st.text(max_size=12))
def test_any_request_field_is_built_into_a_valid_bundle_or_refused(field: str, value: str) -> None:
    try:
        bundle = build_referral_bundle(
            dataclasses.replace(REQUEST, **{field: value}), PATIENT, SUPPORTING
        )
    except InvalidArgument:
        return
    Bundle.model_validate(bundle)


SUPPORTING_PATHS = [(i, *p) for i, found in enumerate(SUPPORTING) for p in paths(found)]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SUPPORTING_PATHS),
    st.none() | st.integers() | st.text(max_size=6) | st.just({}) | st.just([]),
)
def test_a_damaged_supporting_resource_is_built_or_refused(
    path: tuple[Any, ...], value: Any
) -> None:
    supporting = copy.deepcopy(list(SUPPORTING))
    parent: Any = supporting
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    try:
        bundle = build_referral_bundle(REQUEST, PATIENT, supporting)
    except InvalidArgument:
        return
    Bundle.model_validate(bundle)
