"""`medalliance audit generate-month | report | verify-report` as a commission runs them: one
JSON document under --json, exit 0 / 1 (a difference) / 2 (bad input) / 4 (not a commission),
and a refused command writes no file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.networks import cli, cli_json

PERIOD = "2026-11"


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("month") / "net"
    out = cli_json("audit", "generate-month", "--data-dir", str(directory), "--episodes", "12",
                   "--seed", "7")  # fmt: skip
    assert out["referrals"] >= 10
    assert out["counts"]["referrals.upward@region"] > 0
    return directory


def test_a_report_is_made_verified_and_a_changed_one_fails(month: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    made = cli_json("audit", "report", "--period", PERIOD, "-o", str(report), "--dir", str(month),
                    "--as", "Auditor1@DistrictHC")  # fmt: skip
    assert made["figures"] > 0
    assert made["signer"] == "Auditor1@DistrictHCMSP"
    verified = cli_json("audit", "verify-report", str(report), "--ledger", str(month))
    assert verified["ok"] is True
    assert verified["problem"] is None

    document = json.loads(report.read_text(encoding="utf-8"))
    figure = next(f for f in document["report"]["figures"] if f["sources"])
    figure["sources"][0]["txId"] = "0" * 64
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(document), encoding="utf-8")
    result = cli("--json", "audit", "verify-report", str(changed), "--ledger", str(month),
                 check=False)  # fmt: skip
    assert result.returncode == 1
    verdict = json.loads(result.stdout)
    assert verdict["ok"] is False
    assert f"cites transaction {'0' * 64}, which is not on the ledger" in verdict["problem"]


@pytest.mark.parametrize(
    ("args", "code", "named"),
    [
        pytest.param(("--as", "User1@TertiaryHospitalA", "--period", PERIOD), 4, "health commission", id="a hospital doctor is refused with exit 4"),
        pytest.param(("--as", "Auditor1@DistrictHC", "--period", "2026-13"), 2, "YYYY-MM", id="a malformed period is refused with exit 2"),
        pytest.param(("--as", "Auditor1", "--period", PERIOD), 2, "USER@ORG", id="a malformed --as is refused with exit 2"),
    ],
)  # fmt: skip
def test_a_refused_report_writes_nothing(
    month: Path, tmp_path: Path, args: tuple[str, ...], code: int, named: str
) -> None:
    report = tmp_path / "report.json"
    result = cli("--json", "audit", "report", "-o", str(report), "--dir", str(month), *args,
                 check=False)  # fmt: skip
    assert result.returncode == code
    assert named in json.loads(result.stdout)["message"]
    assert not report.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left either


@pytest.mark.parametrize(
    ("format_", "starts"),
    [
        pytest.param("csv", "\ufeffindicator,hospital,period".encode(), id="csv starts with its header"),
        pytest.param("pdf", b"%PDF-", id="pdf starts as a PDF"),
    ],
)  # fmt: skip
def test_exports(month: Path, tmp_path: Path, format_: str, starts: bytes) -> None:
    path = tmp_path / f"report.{format_}"
    cli("audit", "report", "--period", PERIOD, "-o", str(path), "--dir", str(month), "--as",
        "Reviewer1@DistrictHC", "--format", format_)  # fmt: skip
    assert path.read_bytes().startswith(starts)
