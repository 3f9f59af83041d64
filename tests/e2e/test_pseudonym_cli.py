"""`privacy pseudonym` and `privacy migrate-pseudonyms` against the demo alliance as processes."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from medalliance.app.demo_records import admission_bundle
from medalliance.hospital.bundle_import import import_bundle
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.identifiers import PSEUDONYM_SYSTEM, with_identifier
from medalliance.node.bootstrap import LEGACY_PSEUDONYM_KEY, NetworkLayout
from medalliance.privacy.pseudonym import normalise
from tests.networks import DEMO_ALLIANCE, REPO, cli_json, running, with_free_ports

A, TA = "SecondaryAMSP", "TertiaryAMSP"
ID_NUMBER = "11010519491231002X"  # GB 11643's own example number: synthetic


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("pcli")
    with running(with_free_ports(DEMO_ALLIANCE, base / "network.yaml"), base) as directory:
        yield directory


def with_stdin(text: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "medalliance", *args],
        input=text, capture_output=True, text=True, timeout=150, cwd=REPO, env=env,
    )  # fmt: skip


def test_two_hospitals_get_one_pseudonym_and_the_identifier_never_shows(alliance: Path) -> None:
    d = ("--dir", str(alliance))
    at_a = with_stdin(ID_NUMBER + "\n", "--json", "privacy", "pseudonym", *d, "--org", A)
    assert at_a.returncode == 0, at_a.stderr
    ref = json.loads(at_a.stdout)["patientRef"]
    at_ta = with_stdin(" 11010519491231002x\n", "--json", "privacy", "pseudonym", *d, "--org", TA)
    assert json.loads(at_ta.stdout)["patientRef"] == ref
    wrong = with_stdin("110105194912310021\n", "privacy", "pseudonym", *d, "--org", A)
    assert wrong.returncode == 2
    assert "check digit is wrong" in wrong.stderr
    assert "110105194912310021" not in wrong.stderr + wrong.stdout


def test_a_hospital_migrates_through_the_cli(alliance: Path, tmp_path: Path) -> None:
    layout = NetworkLayout.load(alliance)
    old_key = secrets.token_bytes(32)
    key_file = layout.org_dir(A) / LEGACY_PSEUDONYM_KEY
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_bytes(old_key)
    value = normalise("resident-id", ID_NUMBER).encode()
    message = b"\x00".join((b"medalliance/patient-pseudonym/v1", b"resident-id", value))
    old = hmac.new(old_key, message, hashlib.sha256).hexdigest()[:32]
    db_path = tmp_path / "a.db"
    store = ClinicalStore.open(db_path)
    import_bundle(store, admission_bundle("V-M1", "2026-11-29", patient_id="p-1"))
    store.put(with_identifier(store.get("Patient", "p-1"), PSEUDONYM_SYSTEM, old))
    store.close()
    d = ("--dir", str(alliance))
    cli_json("visit", "register", "V-M1", "--patient-ref", old, "--as", f"Clerk1@{A}", *d)
    args = ("privacy", "migrate-pseudonyms", *d, "--org", A, "--db", str(db_path))
    done = cli_json(*args)
    assert done == {"patients": 1, "unchanged": 0, "visitsMoved": ["V-M1"],
                    "visitsElsewhere": [], "keyDeleted": True}  # fmt: skip
    assert not key_file.exists()
    visit = cli_json("visit", "show", "V-M1", "--as", f"Clerk1@{A}", *d)
    assert visit["formerPatientRefs"] == [old]
    assert visit["patientRef"] != old
    assert cli_json(*args)["unchanged"] == 1  # a second run changes nothing
