"""`medalliance ca start` as a process and `identity enroll|register|list|revoke` against it.

A config without `bootstrap_secret` (an alliance's own): the first start writes a random secret,
mode 0600, and the operator enrols the registrar with `--secret-file`. No node runs: the CA
needs only the organisation's folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from medalliance.node.ca_launcher import CaProcess, answers
from tests.networks import REPO, TEST_NETWORK, cli, wait_until, with_free_ports

ORG1 = "organizations/peerOrganizations/org1.example.com"


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("identity-cli")
    config_path = with_free_ports(TEST_NETWORK, base / "network.yaml", with_cas=True)
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    for org in config["organizations"]:
        org.get("ca", {}).pop("bootstrap_secret", None)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    directory = base / "network"
    cli("network", "init", str(config_path), "--dir", str(directory))
    (org1,) = (o for o in config["organizations"] if o["name"] == "Org1")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "medalliance",
            "ca",
            "start",
            "--dir",
            str(directory),
            "--org",
            "Org1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        ca = CaProcess(
            "ca.org1.example.com",
            "Org1",
            f"localhost:{org1['ca']['port']}",
            directory / ORG1 / "tlsca" / "tlsca.org1.example.com-cert.pem",
        )
        wait_until(lambda: answers(ca) or process.poll() is not None, "the CA answers")
        assert process.poll() is None, "ca start exited"
        yield directory
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def _json(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    result = subprocess.run(
        [sys.executable, "-m", "medalliance", "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )
    return result.returncode, json.loads(result.stdout)


def test_the_connection_profile_lists_the_ca(network: Path) -> None:
    profile = json.loads((network / ORG1 / "connection-org1.json").read_text(encoding="utf-8"))
    config = yaml.safe_load((network / "network.yaml").read_text(encoding="utf-8"))
    (org1,) = (o for o in config["organizations"] if o["name"] == "Org1")
    assert profile["organizations"]["Org1"]["certificateAuthorities"] == ["ca.org1.example.com"]
    ca = profile["certificateAuthorities"]["ca.org1.example.com"]
    assert ca["url"] == f"https://localhost:{org1['ca']['port']}"
    assert ca["caName"] == "ca-org1"
    assert "BEGIN CERTIFICATE" in ca["tlsCACerts"]["pem"][0]


def test_operator_enrols_registers_lists_and_revokes(network: Path) -> None:
    secret_file = network / ORG1 / "ca-server" / "bootstrap-secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    d = ("--dir", str(network), "--org", "Org1")
    code, _ = _json("identity", "enroll", "admin", *d, "--secret-file", str(secret_file))
    assert code == 0
    code, registered = _json("identity", "register", "doctor8", "--role", "doctor", *d)
    assert code == 0
    code, enrolled = _json(
        "identity",
        "enroll",
        "doctor8",
        *d,
        env={"MEDALLIANCE_CA_SECRET": str(registered["secret"])},
    )
    assert code == 0
    msp = Path(str(enrolled["msp_dir"]))
    assert (msp / "signcerts" / "cert.pem").is_file()
    (key,) = (msp / "keystore").glob("*_sk")
    assert key.stat().st_mode & 0o777 == 0o600
    assert list((msp / "cacerts").glob("*.pem"))
    code, listed = _json("identity", "list", *d)
    assert code == 0
    rows = {row["id"]: row for row in listed["identities"]}  # type: ignore[attr-defined]
    assert rows["doctor8"]["role"] == "doctor"
    code, revoked = _json("identity", "revoke", "doctor8", *d, "--reason", "keycompromise")
    assert code == 0
    assert len(revoked["serials"]) == 1  # type: ignore[arg-type]
    # the revoked identity cannot enrol again: permission denied, nothing written
    again = network / "again"
    code, refused = _json(
        "identity",
        "enroll",
        "doctor8",
        *d,
        "--msp-dir",
        str(again),
        env={"MEDALLIANCE_CA_SECRET": str(registered["secret"])},
    )
    assert code == 4
    assert "revoked" in str(refused["message"])
    assert not again.exists()


def test_a_wrong_secret_and_a_registrar_that_never_enrolled_are_refused(network: Path) -> None:
    d = ("--dir", str(network), "--org", "Org1")
    code, refused = _json(
        "identity",
        "enroll",
        "admin",
        *d,
        "--msp-dir",
        str(network / "x"),
        env={"MEDALLIANCE_CA_SECRET": "guess"},
    )
    assert code == 4
    assert "authentication failure" in str(refused["message"])
    assert not (network / "x").exists()
    code, refused = _json("identity", "register", "eve", *d, "--as", "nobody")
    assert code == 1
    assert "enroll first" in str(refused["message"])
