"""`medalliance audit ...` against the demo alliance as processes: the commission's index fed
over Deliver from its own peer, its queries, a follower killed and resumed, and refusals."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.networks import (
    DEMO_ALLIANCE,
    REPO,
    cli,
    cli_json,
    free_ports,
    running,
    wait_until,
    with_free_ports,
)

AUDITOR, CITY = "Auditor1@DistrictHC", "Auditor1@CityHC"


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The demo alliance running, after one referral workflow (`medalliance demo --network`)."""
    base = tmp_path_factory.mktemp("audit")
    with running(with_free_ports(DEMO_ALLIANCE, base / "network.yaml"), base) as directory:
        cli("demo", "--network", str(directory), timeout=300)
        yield directory


def audit(alliance: Path, *args: str) -> Any:
    return cli_json("audit", *args, "--dir", str(alliance))


def test_the_index_catches_up_once_and_answers_the_commission(alliance: Path) -> None:
    first = audit(alliance, "index", "--as", AUDITOR)
    assert first["blocks_added"] == first["next_block"] > 0
    assert first["facts"] == first["facts_added"] > 0
    again = audit(alliance, "index", "--as", AUDITOR)
    assert (again["blocks_added"], again["facts"]) == (0, first["facts"])

    referrals = audit(alliance, "referrals", "--as", AUDITOR)["rows"]
    assert [(r["direction"], r["status"]) for r in referrals] == [
        ("UP", "COMPLETED"),
        ("DOWN", "COMPLETED"),
    ]
    down = audit(alliance, "referrals", "--direction", "DOWN", "--from", "TertiaryHospitalA",
                 "--as", AUDITOR)["rows"]  # fmt: skip
    assert [r["to_hospital"] for r in down] == ["SecondaryAMSP"]
    rejections = audit(alliance, "rejections", "--as", AUDITOR)["rows"]
    assert [(r["stage"], r["reason_code"], r["count"]) for r in rejections] == [
        ("application", "TARGET_NO_CAPACITY", 1)
    ]
    assert audit(alliance, "pending", "--as", AUDITOR)["rows"] == []
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    figures = {(f["indicator"], f["hospital"]): f for f in
               audit(alliance, "indicators", "--period", month, "--as", AUDITOR)["rows"]}  # fmt: skip
    assert figures[("referrals.upward", "SecondaryAMSP")]["value"] == "1"
    assert figures[("referrals.returns", "")]["value"] == "1"
    assert figures[("applications.approval_rate", "SecondaryAMSP")]["value"] == "0.5"
    assert len(figures[("referrals.returns", "")]["sources"]) == 2


def test_the_city_commission_sees_its_districts_hospitals(alliance: Path) -> None:
    audit(alliance, "index", "--as", CITY)
    referrals = audit(alliance, "referrals", "--as", CITY)["rows"]
    assert len(referrals) == 2
    assert Path(alliance, "audit", "CityHCMSP.db").exists()


@pytest.mark.parametrize(
    ("caller", "message"),
    [("User1@SecondaryHospitalA", "is doctor of a secondary organisation"),
     ("Clerk1@TertiaryHospitalB", "is clerk of a tertiary organisation"),
     ("Auditor9@DistrictHC", "no certificate and key of user Auditor9")],
    ids=["a hospital doctor is refused with exit 4", "a hospital clerk is refused with exit 4",
         "a user without a certificate is refused with exit 4"],
)  # fmt: skip
def test_audit_queries_refuse_members_outside_the_audit_role(
    alliance: Path, caller: str, message: str
) -> None:
    for command in (("referrals",), ("index",), ("access", "--org", "TertiaryHospitalA")):
        result = cli("--json", "audit", *command, "--as", caller, "--dir", str(alliance),
                     check=False)  # fmt: skip
        assert result.returncode == 4, result.stdout + result.stderr
        assert message in result.stdout
        assert "PermissionDenied" in result.stdout or "AuditDenied" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [(("referrals", "--status", "LOST"), "--status must be one of"),
     (("referrals", "--period", "2026-13"), "--period must be YYYY-MM"),
     (("indicators", "--period", "last month"), "period must be YYYY-MM")],
    ids=["an unknown status is a usage error", "month 13 is a usage error",
         "a period in words is a usage error"],
)  # fmt: skip
def test_bad_filters_are_refused_with_exit_2(
    alliance: Path, args: tuple[str, ...], message: str
) -> None:
    result = cli("audit", *args, "--as", AUDITOR, "--dir", str(alliance), check=False)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_a_follower_killed_mid_stream_resumes_without_a_gap_or_a_double(
    alliance: Path, tmp_path: Path
) -> None:
    db = tmp_path / "follower.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    (port,) = free_ports(1)
    follower = subprocess.Popen(
        [sys.executable, "-m", "medalliance", "audit", "index", "--follow", "--db", str(db),
         "--metrics", f"127.0.0.1:{port}", "--as", AUDITOR, "--dir", str(alliance)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO,
    )  # fmt: skip
    try:
        assert follower.stdout is not None
        wait_until(lambda: "block 3:" in follower.stdout.readline(), "the follower indexes")
        wait_until(lambda: _lag(port) == 0, "the follower reports it has caught up with its peer")
        follower.kill()  # SIGKILL: no cleanup, possibly inside a block's transaction
        follower.wait(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
    for n in range(3):  # more blocks while it is down
        registered = cli_json("visit", "register", f"V-AUDIT-{n}", "--patient-ref",
                              f"{n:02d}" * 16, "--as", "User1@SecondaryHospitalA",
                              "--dir", str(alliance))  # fmt: skip
    # committed on A's peer; the commission's own peer receives the block a moment later
    last = str(registered["block_number"])
    resumed = audit(alliance, "index", "--db", str(db), "--as", AUDITOR, "--through-block", last)
    assert resumed["blocks_added"] >= 3  # what it missed, and the three new blocks
    fresh = audit(alliance, "index", "--db", str(tmp_path / "fresh.db"), "--as", AUDITOR)
    assert resumed["next_block"] == fresh["next_block"]
    assert resumed["facts"] == fresh["facts"]
    rows = [audit(alliance, "referrals", "--db", str(d), "--as", AUDITOR)["rows"]
            for d in (db, tmp_path / "fresh.db")]  # fmt: skip
    assert rows[0] == rows[1]
    assert len(rows[0]) == 2  # the workflow's referral up and back down


def _lag(port: int) -> float | None:
    """The follower's `medalliance_audit_index_lag_blocks` (None until it serves one)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith('medalliance_audit_index_lag_blocks{channel="alliance"}'):
            return float(line.split()[-1])
    return None
