"""Private data between processes: the parties of a referral get the package, nobody else.

The demo alliance runs as processes. SecondaryA seals a clinical package for TertiaryB (its
regulator DistrictHC is added by rule), registers the record and shares it; TertiaryB's peer is
down at the time, so it later gets the package from another authorised peer (reconciliation).
Then every file of the third hospital SecondaryB's node is scanned for the plaintext and the
ciphertext.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from medalliance.privacy.envelope import SealedPackage
from tests.networks import DEMO_ALLIANCE, cli, cli_json, running, wait_until, with_free_ports

PATIENT = "0123456789abcdef0123456789abcdef"
MARKER = "胸痛三小时-ST段抬高-PLAINTEXT-MARKER"


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("pd")
    with running(with_free_ports(DEMO_ALLIANCE, base / "network.yaml"), base) as directory:
        yield directory


def test_the_parties_get_the_package_and_a_third_hospital_has_no_trace(
    alliance: Path, tmp_path: Path
) -> None:
    package = tmp_path / "package.json"
    package.write_text(json.dumps({"sex": "F", "age": 67, "emr": MARKER}, ensure_ascii=False))
    image = tmp_path / "pathology.pdf"
    image.write_bytes(b"%PDF-" + MARKER.encode() * 200)
    sealed = tmp_path / "R-1.sealed"
    d = ("--dir", str(alliance))
    cli("privacy", "encrypt", str(package), *d, "--org", "SecondaryAMSP", "--to", "TertiaryBMSP",
        "--record", "R-1", "--attach", str(image), "-o", str(sealed))  # fmt: skip
    raw = SealedPackage.from_bytes(sealed.read_bytes()).ciphertext
    (attachment,) = [
        p.read_bytes() for p in Path(f"{sealed}.documents/chunks").rglob("*") if p.is_file()
    ]
    # as bytes, as stored in a sealed package, and the attachment's ciphertext
    traces = (raw, base64.b64encode(raw), attachment)

    # TertiaryB's peer is down while the package is shared.
    pid_file = alliance / "run" / "peer0.tertiaryb.example.com.pid"
    os.kill(int(pid_file.read_text()), signal.SIGTERM)
    while (alliance / "run").exists() and _alive(int(pid_file.read_text())):
        time.sleep(0.1)
    shared = cli_json("privacy", "share", str(sealed), *d, "--org", "SecondaryAMSP",
                      "--patient-ref", PATIENT)  # fmt: skip
    assert shared["held_by"] == ["DistrictHCMSP", "SecondaryAMSP"]
    cli("network", "up", *d)

    out = tmp_path / "at-b.json"
    cli("privacy", "fetch", *d, "--org", "TertiaryBMSP", "--record", "R-1", "-o", str(out),
        "--through-block", str(shared["block_number"]))  # fmt: skip
    assert json.loads(out.read_text())["emr"] == MARKER
    assert Path(f"{out}.attachments/pathology.pdf").read_bytes() == image.read_bytes()

    refused = cli("privacy", "fetch", *d, "--org", "SecondaryBMSP", "--record", "R-1",
                  "-o", str(tmp_path / "at-d.json"), check=False)  # fmt: skip
    assert refused.returncode == 4
    assert "SecondaryBMSP is not authorised for record R-1" in refused.stderr

    log = json.loads(
        cli("tx", "evaluate", *d, "--org", "DistrictHCMSP", "--user", "Auditor1", "-C", "alliance",
            "-n", "records", "AccessLog", "R-1").stdout
    )  # fmt: skip
    assert [(e["org"], e["action"]) for e in log] == [("TertiaryBMSP", "decrypt")]

    # The scan finds the ciphertext where it belongs, so its silence below means something.
    holder = alliance / "nodes" / "peer0.tertiaryb.example.com" / "private"
    held = [p.read_bytes() for p in holder.rglob("*") if p.is_file()]
    assert any(traces[1] in data for data in held)
    assert any(traces[2] in data for data in held)

    third = alliance / "nodes" / "peer0.secondaryb.example.com"
    logs = alliance / "logs"
    files = [p for p in (*third.rglob("*"), *logs.rglob("*")) if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        assert MARKER.encode() not in data, path
        assert not any(trace in data for trace in traces), path


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_grant_revoke_and_erasure(alliance: Path, tmp_path: Path) -> None:
    d = ("--dir", str(alliance))
    package = tmp_path / "package.json"
    package.write_text(json.dumps({"emr": MARKER + "-2"}, ensure_ascii=False))
    sealed = tmp_path / "R-2.sealed"
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-report-" + os.urandom(64))
    cli("privacy", "encrypt", str(package), *d, "--org", "SecondaryAMSP", "--to", "TertiaryBMSP",
        "--record", "R-2", "--attach", str(report), "-o", str(sealed))  # fmt: skip
    patient = "fedcba9876543210fedcba9876543210"
    cli("privacy", "share", str(sealed), *d, "--org", "SecondaryAMSP", "--patient-ref", patient)
    (attachment,) = [
        p.read_bytes() for p in Path(f"{sealed}.documents/chunks").rglob("*") if p.is_file()
    ]
    erased = (
        base64.b64encode(SealedPackage.from_bytes(sealed.read_bytes()).ciphertext),
        attachment,
    )

    # TertiaryB consults TertiaryA: a grant re-wraps the key; the digest on the ledger stays.
    granted = cli_json("privacy", "grant", *d, "--org", "TertiaryBMSP", "--record", "R-2",
                       "--to", "TertiaryAMSP")  # fmt: skip
    assert "TertiaryAMSP" in granted["authorised"]
    out = tmp_path / "at-a.json"
    # TertiaryA's peer decides on its own ledger: it must have the grant's block first.
    cli("privacy", "fetch", *d, "--org", "TertiaryAMSP", "--record", "R-2", "-o", str(out),
        "--through-block", str(granted["block_number"]))  # fmt: skip
    assert json.loads(out.read_text())["emr"] == MARKER + "-2"

    revoked = cli_json("privacy", "revoke", *d, "--org", "SecondaryAMSP", "--record", "R-2",
                       "--from", "TertiaryAMSP")  # fmt: skip
    again = cli("privacy", "fetch", *d, "--org", "TertiaryAMSP", "--record", "R-2",
                "-o", str(tmp_path / "again.json"), "--through-block",
                str(revoked["block_number"]), check=False)  # fmt: skip
    assert again.returncode == 4

    holders = ("secondarya", "tertiaryb", "districthc")
    stores = [alliance / "nodes" / f"peer0.{h}.example.com" / "private" for h in holders]
    before = [p.read_bytes() for s in stores for p in s.rglob("*") if p.is_file()]
    assert all(any(trace in data for data in before) for trace in erased)
    cli("privacy", "erase", *d, "--org", "SecondaryAMSP", "--patient-ref", patient)
    cli("privacy", "erase", *d, "--org", "DistrictHCMSP", "--patient-ref", patient, "--approve")
    wait_until(
        lambda: (
            not any(
                trace in p.read_bytes()
                for s in stores
                for p in s.rglob("*")
                if p.is_file()
                for trace in erased
            )
        ),
        "no holder keeps an erased package",
        timeout_s=15,
    )
    for org in ("SecondaryAMSP", "TertiaryBMSP", "DistrictHCMSP", "TertiaryAMSP"):
        # each holder files its deletion receipt (TertiaryA held it until its revocation)
        cli("privacy", "erase", *d, "--org", org, "--patient-ref", patient, "--confirm")
    check = cli(
        "--json",
        "privacy",
        "erase",
        *d,
        "--org",
        "DistrictHCMSP",
        "--patient-ref",
        patient,
        "--check",
    )
    assert check.returncode == 0, check.stderr
    assert set(json.loads(check.stdout)["holders"].values()) == {"confirmed"}
    left = json.loads(check.stdout)["copiesLeft"]
    assert left["peer0.tertiaryb.example.com"] == 0
    assert set(left.values()) == {0}
    gone = cli("privacy", "fetch", *d, "--org", "TertiaryBMSP", "--record", "R-2",
               "-o", str(tmp_path / "gone.json"), check=False)  # fmt: skip
    assert gone.returncode != 0
    assert "erased" in gone.stderr
    log = cli_json("privacy", "access-log", *d, "--org", "DistrictHCMSP", "--user", "Auditor1",
                   "--record", "R-2")  # fmt: skip
    assert [e["action"] for e in log] == ["grant", "decrypt", "revoke"]
