"""`medalliance audit alarms` against the demo alliance as processes: the runner's one JSON
document and its restart, and an alarm listed, acknowledged and closed through the CLI, with the
contract's refusals as clean errors and exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.networks import DEMO_ALLIANCE, cli, cli_json, running, with_free_ports

AUDITOR = "Auditor1@DistrictHC"
PATIENT = "7c" * 16


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("alarm-cli")
    with running(with_free_ports(DEMO_ALLIANCE, base / "network.yaml"), base) as directory:
        result = cli_json("demo", "--network", str(directory))
        assert result["ok"], [s for s in result["steps"] if not s["ok"]]
        yield directory


def run(alliance: Path, *args: str) -> Any:
    return cli_json(*args, "--dir", str(alliance))


def tx(alliance: Path, org: str, user: str, contract: str, *args: str) -> Any:
    return cli_json("tx", "submit", "--org", org, "--user", user, "-C", "alliance", "-n",
                    contract, *args, "--dir", str(alliance))  # fmt: skip


def test_the_runner_reads_to_the_height_and_a_restart_raises_nothing(alliance: Path) -> None:
    first = run(alliance, "audit", "alarms", "--as", AUDITOR)
    assert first["raised"] == []  # the demo's workflow is on time, shared and granted
    assert first["last_block"] > 0
    again = run(alliance, "audit", "alarms", "--as", AUDITOR)
    assert (again["raised"], again["already_raised"]) == ([], 0)
    assert again["last_block"] >= first["last_block"]
    assert (alliance / "audit" / "alarms-DistrictHCMSP.db").exists()


def test_an_alarm_is_listed_acknowledged_and_closed(alliance: Path) -> None:
    tx(alliance, "DistrictHC", "Auditor1", "alarm", "RaiseAlarm", "ALM-CLI", "manual.review", "1",
       "LOW", json.dumps(["SecondaryAMSP"]), "[]", "")  # fmt: skip
    tx(alliance, "DistrictHC", "Auditor1", "records", "RegisterRecord", "NOTE-CLI", PATIENT,
       "ab" * 32, "[]", "[]")  # fmt: skip
    run(alliance, "audit", "index", "--as", AUDITOR)
    (listed,) = run(alliance, "audit", "alarms", "list", "--state", "open", "--as", AUDITOR)["rows"]
    assert (listed["alarm_id"], listed["raised_by"]) == ("ALM-CLI", "DistrictHCMSP")
    acked = run(alliance, "audit", "alarms", "ack", "ALM-CLI", "--as", AUDITOR)
    assert acked["result"]["status"] == "ACKNOWLEDGED"
    closed = run(alliance, "audit", "alarms", "close", "ALM-CLI", "--note", "NOTE-CLI",
                 "--as", AUDITOR)  # fmt: skip
    assert closed["result"]["status"] == "CLOSED"

    again = cli("audit", "alarms", "close", "ALM-CLI", "--note", "NOTE-CLI", "--as", AUDITOR,
                "--dir", str(alliance), check=False)  # fmt: skip
    assert again.returncode == 1
    assert "alarm ALM-CLI is already CLOSED" in again.stderr
    hospital = cli("--json", "audit", "alarms", "list", "--as", "User1@SecondaryHospitalA",
                   "--dir", str(alliance), check=False)  # fmt: skip
    assert hospital.returncode == 4  # permission denied: the index answers commissions only
    assert json.loads(hospital.stdout)["message"].startswith(
        "audit queries answer auditors and reviewers of a health commission"
    )
    shown = run(alliance, "audit", "alarms", "show", "ALM-CLI", "--as", AUDITOR)
    assert [h["status"] for h in shown["history"]] == ["OPEN", "ACKNOWLEDGED", "CLOSED"]
    run(alliance, "audit", "index", "--as", AUDITOR)
    (closed_row,) = run(alliance, "audit", "alarms", "list", "--state", "closed", "--as",
                        AUDITOR)["rows"]  # fmt: skip
    assert (closed_row["status"], closed_row["note_ref"], len(closed_row["tx_ids"])) == (
        "CLOSED", "NOTE-CLI", 3)  # fmt: skip
    bad = cli("audit", "alarms", "list", "--state", "opened", "--as", AUDITOR, "--dir",
              str(alliance), check=False)  # fmt: skip
    assert bad.returncode == 2
    assert "--state must be one of" in bad.stderr


def test_the_runner_needs_a_caller(alliance: Path) -> None:
    result = cli("audit", "alarms", "--dir", str(alliance), check=False)
    assert result.returncode == 2
    assert "give --as USER@ORG" in result.stderr
