"""Sealing a referral package for its parties: they open it, a third hospital cannot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.networks import DEMO_ALLIANCE, cli, cli_json, with_free_ports

PACKAGE = json.dumps(
    {"sex": "F", "age": 67, "diagnosis": "I21.0", "emr": "胸痛三小时，心电图ST段抬高"},
    ensure_ascii=False,
).encode()


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("privacy")
    config = with_free_ports(DEMO_ALLIANCE, base / "network.yaml")
    cli("network", "init", str(config), "--dir", str(base / "net"))
    return base / "net"


IMAGE = bytes(range(256)) * 40  # stands in for a CT image


def sealed(network: Path, tmp: Path) -> tuple[Path, dict]:  # type: ignore[type-arg]
    (tmp / "package.json").write_bytes(PACKAGE)
    (tmp / "ct.dcm").write_bytes(IMAGE)
    out = tmp / "R-1.sealed"
    result = cli_json(
        "privacy", "encrypt", str(tmp / "package.json"), "--dir", str(network),
        "--org", "SecondaryAMSP", "--to", "TertiaryBMSP", "--record", "R-1",
        "--attach", str(tmp / "ct.dcm"), "-o", str(out),
    )  # fmt: skip
    return out, result


def test_the_parties_and_their_regulator_open_it(network: Path, tmp_path: Path) -> None:
    package, result = sealed(network, tmp_path)
    assert result["recipients"] == ["DistrictHCMSP", "SecondaryAMSP", "TertiaryBMSP"]
    assert len(result["digest"]) == 64
    assert PACKAGE not in package.read_bytes()
    assert package.stat().st_mode & 0o777 == 0o600
    for org in ("TertiaryBMSP", "DistrictHCMSP"):
        out = tmp_path / f"{org}.json"
        cli("privacy", "decrypt", str(package), "--dir", str(network), "--org", org, "-o", str(out))
        assert out.read_bytes() == PACKAGE
        assert (tmp_path / f"{org}.json.attachments" / "ct.dcm").read_bytes() == IMAGE
    stored = [p.read_bytes() for p in (tmp_path / "R-1.sealed.documents").rglob("*") if p.is_file()]
    assert stored
    assert not any(IMAGE[:256] in chunk for chunk in stored)  # the image is stored encrypted


def test_a_third_hospital_is_refused_clearly(network: Path, tmp_path: Path) -> None:
    package, _ = sealed(network, tmp_path)
    out = tmp_path / "stolen.json"
    args = ("privacy", "decrypt", str(package), "--dir", str(network), "-o", str(out))
    refused = cli(*args, "--org", "SecondaryBMSP", check=False)
    assert refused.returncode == 4  # permission denied
    assert "SecondaryBMSP" in refused.stderr
    assert not out.exists()


def test_a_flipped_bit_is_detected(network: Path, tmp_path: Path) -> None:
    package, _ = sealed(network, tmp_path)
    document = json.loads(package.read_bytes())
    ciphertext = bytearray(document["ciphertext"], "ascii")
    ciphertext[20] = ord("A") if ciphertext[20] != ord("A") else ord("B")
    document["ciphertext"] = ciphertext.decode()
    package.write_text(json.dumps(document, sort_keys=True, separators=(",", ":")))
    out = tmp_path / "tampered.json"
    args = ("privacy", "decrypt", str(package), "--dir", str(network), "-o", str(out))
    tampered = cli(*args, "--org", "TertiaryBMSP", check=False)
    assert tampered.returncode == 2
    assert not out.exists()


def test_a_substituted_attachment_is_detected(network: Path, tmp_path: Path) -> None:
    package, _ = sealed(network, tmp_path)
    (chunk,) = [p for p in (tmp_path / "R-1.sealed.documents" / "chunks").rglob("*") if p.is_file()]
    data = bytearray(chunk.read_bytes())
    data[-1] ^= 0x01
    chunk.write_bytes(bytes(data))
    out = tmp_path / "out.json"
    args = ("privacy", "decrypt", str(package), "--dir", str(network), "-o", str(out))
    refused = cli(*args, "--org", "TertiaryBMSP", check=False)
    assert refused.returncode == 2
    assert "does not match its hash" in refused.stderr
