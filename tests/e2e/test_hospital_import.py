"""`hospital import` against the demo alliance as processes: pseudonyms from the regulator's
pseudonym service, the same as `privacy pseudonym` gives, and a second import changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.hospital.synthetic_bundle import RESIDENT_IDS, synthea_bundle, uid
from tests.networks import DEMO_ALLIANCE, REPO, cli, cli_json, running, with_free_ports

ORG = "SecondaryHospitalA"


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("hospital-import")
    with running(with_free_ports(DEMO_ALLIANCE, base / "network.yaml"), base) as directory:
        yield directory


def privacy_pseudonym(alliance: Path, number: str, org: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "medalliance", "--json", "privacy", "pseudonym",
         "--dir", str(alliance), "--org", org],
        input=number + "\n", capture_output=True, text=True, timeout=150, cwd=REPO, env=env,
        check=True,
    )  # fmt: skip
    ref: str = json.loads(done.stdout)["patientRef"]
    return ref


def test_import_gives_each_patient_the_alliance_pseudonym_once(
    alliance: Path, tmp_path: Path
) -> None:
    path = tmp_path / "synthea.json"
    path.write_text(json.dumps(synthea_bundle(2, unidentified=1)), encoding="utf-8")
    args = ("hospital", "import", str(path), "--org", ORG, "--dir", str(alliance))
    first = cli_json(*args)
    assert len(first["created"]) == 2 + 3 * 9
    assert first["skipped"] == []
    assert first["without_pseudonym"] == [uid("patient-2")]
    # The pseudonym the store keeps is the alliance's: what another hospital gets for the same
    # resident ID through `privacy pseudonym`.
    expected = privacy_pseudonym(alliance, RESIDENT_IDS[0], "TertiaryBMSP")
    assert first["patients"][uid("patient-0")] == expected
    rows = cli_json("hospital", "patients", "--org", ORG, "--dir", str(alliance))
    assert {r["id"]: r["pseudonym"] for r in rows}[uid("patient-0")] == expected
    second = cli_json(*args)
    assert second["created"] == second["updated"] == []
    assert len(second["unchanged"]) == len(first["created"])


def test_skip_invalid_imports_the_rest_through_the_cli(alliance: Path, tmp_path: Path) -> None:
    bundle = synthea_bundle(1)
    for item in bundle["entry"]:
        if item["resource"]["id"] == uid("procedure-0"):
            item["resource"]["status"] = "finished"  # not a Procedure status
    path = tmp_path / "one-bad.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    args = ("hospital", "import", str(path), "--org", "TertiaryHospitalB", "--dir", str(alliance))
    refused = cli(*args, check=False)
    assert refused.returncode == 2
    assert f"Procedure/{uid('procedure-0')} Procedure.status" in refused.stderr
    done = cli(*args, "--skip-invalid")
    assert "skipped 1" in done.stdout
    assert f"skipped Procedure/{uid('procedure-0')} Procedure.status" in done.stdout
