"""The shipped FHIR example data (examples/fhir/) and the Synthea-style test bundle
(tests/data/fhir/): valid FHIR R4, identities valid by GB 11643 and consistent with the record,
every reference resolvable, and each file exactly what its generator script writes."""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import struct
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from fhir.resources.R4B.bundle import Bundle

from medalliance.hospital.code_systems import ICD10_SYSTEM, LOINC_SYSTEM, MSP_ID_SYSTEM
from medalliance.hospital.identifiers import (
    RESIDENT_ID_SYSTEM,
    VISIT_NUMBER_SYSTEM,
    identifier_value,
    patient_identity,
)
from medalliance.privacy.pseudonym import normalise

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "fhir"
SYNTHEA_STYLE = ROOT / "tests" / "data" / "fhir" / "synthea-style.json"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json"))
ALL_FILES = [*EXAMPLE_FILES, SYNTHEA_STYLE]


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def resources(bundle: dict[str, Any], kind: str | None = None) -> list[dict[str, Any]]:
    found = [entry["resource"] for entry in bundle["entry"]]
    return [r for r in found if kind is None or r["resourceType"] == kind]


def reference_texts(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            yield value["reference"]
        for item in value.values():
            yield from reference_texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from reference_texts(item)


def script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_is_a_file_per_demo_hospital_with_patients_named_after_it() -> None:
    config = yaml.safe_load((ROOT / "networks" / "demo-alliance.yaml").read_text())
    msp_of = {
        re.sub(r"(?<!^)(?=[A-Z])", "-", org["name"]).lower(): org["msp_id"]
        for org in config["organizations"]
    }
    assert [path.stem for path in EXAMPLE_FILES] == [
        "secondary-hospital-a",
        "secondary-hospital-b",
        "tertiary-hospital-a",
    ]
    for path in EXAMPLE_FILES:
        bundle = load(path)
        (organization,) = resources(bundle, "Organization")
        assert identifier_value(organization, MSP_ID_SYSTEM) == msp_of[path.stem]
        assert resources(bundle, "Patient")


@pytest.mark.parametrize("path", ALL_FILES, ids=[f"{p.name} validates" for p in ALL_FILES])
def test_every_bundle_validates_as_a_transaction_with_resolvable_references(path: Path) -> None:
    bundle = load(path)
    Bundle.model_validate(bundle)
    assert bundle["type"] == "transaction"
    full_urls = [entry["fullUrl"] for entry in bundle["entry"]]
    assert len(set(full_urls)) == len(full_urls)
    assert all(url.startswith("urn:uuid:") for url in full_urls)
    assert all(entry["request"]["method"] in {"POST", "PUT"} for entry in bundle["entry"])
    assert set(reference_texts(bundle)) <= set(full_urls)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.stem for p in EXAMPLE_FILES])
def test_resident_ids_pass_gb_11643_and_match_birth_date_and_sex(path: Path) -> None:
    for patient in resources(load(path), "Patient"):
        assert patient_identity(patient) is not None
        number = identifier_value(patient, RESIDENT_ID_SYSTEM)
        assert number is not None
        assert normalise("resident-id", number) == number  # the check digit is right
        assert number.startswith("99")  # a region code no real region has
        assert f"{number[6:10]}-{number[10:12]}-{number[12:14]}" == patient["birthDate"]
        assert int(number[16]) % 2 == (1 if patient["gender"] == "male" else 0)
        assert re.fullmatch(r"[\u4e00-\u9fff]{2,3}", patient["name"][0]["text"])


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.stem for p in EXAMPLE_FILES])
def test_the_clinical_record_uses_the_alliance_code_systems(path: Path) -> None:
    bundle = load(path)
    encounters = resources(bundle, "Encounter")
    visits = [identifier_value(e, VISIT_NUMBER_SYSTEM) for e in encounters]
    assert all(visits)
    assert len(set(visits)) == len(visits)
    conditions = resources(bundle, "Condition")
    assert {c["code"]["coding"][0]["system"] for c in conditions} == {ICD10_SYSTEM}
    observations = resources(bundle, "Observation")
    assert {o["code"]["coding"][0]["system"] for o in observations} == {LOINC_SYSTEM}
    assert resources(bundle, "DiagnosticReport")
    assert resources(bundle, "Practitioner")


def test_the_demo_alliance_data_carries_diagnoses_observations_and_one_image() -> None:
    bundles = [load(path) for path in EXAMPLE_FILES]
    codes = {c["code"]["coding"][0]["code"] for b in bundles for c in resources(b, "Condition")}
    assert {"I10", "E11.9", "I63.9", "J18.9"} <= codes
    loinc = {o["code"]["coding"][0]["code"] for b in bundles for o in resources(b, "Observation")}
    assert {"85354-9", "4548-4"} <= loinc  # blood pressure, HbA1c
    (study,) = [s for b in bundles for s in resources(b, "ImagingStudy")]
    images = [
        content["attachment"]
        for b in bundles
        for document in resources(b, "DocumentReference")
        for content in document["content"]
        if content["attachment"]["contentType"] == "image/png"
    ]
    (image,) = images
    data = base64.b64decode(image["data"])
    assert len(data) == image["size"] < 20 * 1024
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    idat_length = struct.unpack(">I", data[33:37])[0]
    pixels = zlib.decompress(data[41 : 41 + idat_length])
    assert len(pixels) == height * (width + 1)  # a complete greyscale image
    assert study["series"][0]["modality"]["code"] == "ECG"


def test_the_synthea_style_bundle_looks_like_synthea_output() -> None:
    bundle = load(SYNTHEA_STYLE)
    kinds = Counter(r["resourceType"] for r in resources(bundle))
    assert 30 <= sum(kinds.values()) <= 50
    for kind in ("Patient", "Encounter", "Condition", "Observation", "Procedure",
                 "MedicationRequest", "Immunization", "DiagnosticReport"):  # fmt: skip
        assert kinds[kind] >= 1, kind
    assert not {"Claim", "ExplanationOfBenefit"} & set(kinds)
    assert all(entry["request"]["method"] == "POST" for entry in bundle["entry"])
    (patient,) = resources(bundle, "Patient")
    systems = {i["system"] for i in patient["identifier"]}
    assert "http://hl7.org/fhir/sid/us-ssn" in systems
    assert patient_identity(patient) is None  # no identity the alliance's pseudonyms know


@pytest.mark.parametrize(
    ("generator", "files"),
    [
        pytest.param(EXAMPLES / "make_examples.py", EXAMPLE_FILES,
                     id="the example bundles are what make_examples.py writes"),
        pytest.param(SYNTHEA_STYLE.parent / "make_synthea_style.py", [SYNTHEA_STYLE],
                     id="the Synthea-style bundle is what make_synthea_style.py writes"),
    ],
)  # fmt: skip
def test_the_committed_files_are_what_the_generator_writes(
    generator: Path, files: list[Path]
) -> None:
    made = script(generator).rendered()
    if isinstance(made, bytes):
        made = {files[0].name: made}
    assert sorted(made) == [path.name for path in files]
    for path in files:
        assert path.read_bytes() == made[path.name], f"run {generator.relative_to(ROOT)}"


def test_the_readme_lists_every_example_patient() -> None:
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for path in EXAMPLE_FILES:
        for patient in resources(load(path), "Patient"):
            row = f"| {path.name} | {patient['name'][0]['text']} (`{patient['id']}`) |"
            assert row in readme
            number = identifier_value(patient, RESIDENT_ID_SYSTEM)
            assert number is not None
            assert number in readme
