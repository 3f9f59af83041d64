"""`medalliance hospital ...` on a network folder (initialised, not running) as a user runs it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from tests.integration.hospital.synthetic_bundle import RESIDENT_IDS, synthea_bundle, uid
from tests.networks import DEMO_ALLIANCE, cli, cli_json, with_free_ports

from medalliance.app.hospital_import import open_hospital_store
from medalliance.hospital.bundle_import import import_bundle
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.node.bootstrap import NetworkLayout
from medalliance.privacy import oprf
from medalliance.privacy.pseudonym import oprf_input, pseudonym_of

ORG = "SecondaryAMSP"


def local_pseudonym() -> Callable[[str, str], str]:
    key = oprf.generate_key()
    return lambda id_type, number: pseudonym_of(oprf.evaluate(key, oprf_input(id_type, number)))


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo alliance folder whose SecondaryHospitalA store holds two imported patients."""
    base = tmp_path_factory.mktemp("hospital-cli")
    config = with_free_ports(DEMO_ALLIANCE, base / "network.yaml")
    cli("network", "init", str(config), "--dir", str(base / "net"))
    with open_hospital_store(NetworkLayout.load(base / "net"), ORG) as store:
        import_bundle(store, synthea_bundle(2), pseudonym=local_pseudonym())
    return base / "net"


def hospital(network: Path, *args: str) -> Any:
    return cli_json("hospital", *args, "--org", ORG, "--dir", str(network))


def test_patients_show_pseudonyms_never_identity_numbers(network: Path) -> None:
    rows = hospital(network, "patients")
    assert [row["id"] for row in rows] == sorted([uid("patient-0"), uid("patient-1")])
    row = next(r for r in rows if r["id"] == uid("patient-0"))
    assert row["name"] == "王芳0"
    assert row["encounters"] == 1
    assert len(row["pseudonym"]) == 32
    text = cli("hospital", "patients", "--org", ORG, "--dir", str(network)).stdout
    for number in RESIDENT_IDS[:2]:
        assert number not in json.dumps(rows)
        assert number not in text


def test_patient_show_summarises_the_record(network: Path) -> None:
    shown = hospital(network, "patient", "show", uid("patient-0"))
    assert shown["patient"]["pseudonym"]
    assert [c["code"] for c in shown["conditions"]] == ["I10"]
    assert shown["observations"][0]["value"] == "72 /min"
    assert [e["id"] for e in shown["encounters"]] == [uid("encounter-0")]
    text = cli("hospital", "patient", "show", uid("patient-0"), "--org", ORG, "--dir", str(network))
    assert "pseudonym: " + shown["patient"]["pseudonym"] in text.stdout


def test_encounters_of_one_patient(network: Path) -> None:
    rows = hospital(network, "encounters", "--patient", uid("patient-1"))
    assert [(r["id"], r["status"], r["kind"]) for r in rows] == [
        (uid("encounter-1"), "finished", "AMB")
    ]
    assert len(hospital(network, "encounters")) == 2


def test_export_writes_a_valid_bundle_for_its_owner_only(network: Path, tmp_path: Path) -> None:
    out = tmp_path / "export" / "p0.json"
    done = hospital(network, "export", "--patient", uid("patient-0"), "-o", str(out))
    assert done == {"output": str(out), "entries": 11}
    assert out.stat().st_mode & 0o777 == 0o600
    Bundle.model_validate_json(out.read_bytes())
    to_stdout = cli(
        "hospital", "export", "--patient", uid("patient-0"), "--encounter", uid("encounter-0"),
        "--org", ORG, "--dir", str(network),
    ).stdout  # fmt: skip
    assert json.loads(to_stdout)["type"] == "collection"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        pytest.param(("patient", "show", "nobody"), 1, "Patient/nobody", id="an unknown patient"),
        pytest.param(
            ("encounters", "--patient", "nobody"), 1, "Patient/nobody", id="encounters of nobody"
        ),
        pytest.param(
            ("export", "--patient", uid("patient-1"), "--encounter", uid("encounter-0")),
            2,
            "not an encounter of",
            id="an encounter of another patient",
        ),
    ],
)
def test_unknown_things_are_refused_clearly(
    network: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    refused = cli("hospital", *args, "--org", ORG, "--dir", str(network), check=False)
    assert refused.returncode == code
    assert message in refused.stderr


def test_a_regulator_has_no_hospital_store(network: Path) -> None:
    refused = cli("hospital", "patients", "--org", "DistrictHCMSP", "--dir", str(network),
                  check=False)  # fmt: skip
    assert refused.returncode == 2
    assert "not a hospital" in refused.stderr


def counts(network: Path) -> dict[str, int]:
    with open_hospital_store(NetworkLayout.load(network), ORG) as store:
        return {t: store.count(t) for t in ("Patient", "Encounter", "Observation")}


def test_import_without_a_running_network_fails_with_a_hint(network: Path, tmp_path: Path) -> None:
    before = counts(network)
    bundle = synthea_bundle(3)  # a third patient, who needs a pseudonym
    path = tmp_path / "three.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    refused = cli("hospital", "import", str(path), "--org", ORG, "--dir", str(network),
                  check=False)  # fmt: skip
    assert refused.returncode == 3
    assert "network up" in refused.stderr
    assert "nothing was imported" in refused.stderr
    assert counts(network) == before


def test_an_invalid_bundle_lists_every_issue_and_exits_2(network: Path, tmp_path: Path) -> None:
    before = counts(network)
    bundle = synthea_bundle(3)
    for item in bundle["entry"]:
        resource = item["resource"]
        if resource["id"] == uid("patient-2"):
            resource["birthDate"] = "2000-13-01"
        if resource["id"] == uid("observation-2"):
            resource["status"] = "done"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    refused = cli("--json", "hospital", "import", str(path), "--org", ORG, "--dir", str(network),
                  check=False)  # fmt: skip
    assert refused.returncode == 2
    error = json.loads(refused.stdout)
    assert error["error"] == "InvalidResource"
    assert f"Patient/{uid('patient-2')} Patient.birthDate" in error["message"]
    assert f"Observation/{uid('observation-2')} Observation.status" in error["message"]
    assert counts(network) == before


def test_db_names_another_store(network: Path, database_url: str) -> None:
    with ClinicalStore.open(database_url, schema="hospital_secondaryamsp") as store:
        import_bundle(store, synthea_bundle(1), pseudonym=local_pseudonym())
    rows = hospital(network, "patients", "--db", database_url)
    assert [r["id"] for r in rows] == [uid("patient-0")]
