"""The generated month of alliance activity (app/activity_generator.py), made once per test
session and shared by every test that reads it (audit report, indicators, alarms). Tests must
not write to it: copy the folder first (shutil.copytree) to change anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from medalliance.app.activity_generator import MonthTruth, generate_month
from tests.networks import DEMO_ALLIANCE

PERIOD = "2026-11"
SEED = 14
EPISODES = 160  # about 190 referrals, 110 applications, 1,450 transactions; ~35 s of CPU

_made: dict[str, tuple[Path, MonthTruth]] = {}


def generated_month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, MonthTruth]:
    """(network folder, ground truth) of the session's month, generated on first use."""
    if "month" not in _made:
        directory = tmp_path_factory.getbasetemp() / "generated-month" / "net"
        truth = generate_month(DEMO_ALLIANCE, directory, period=PERIOD, seed=SEED,
                               episodes=EPISODES)  # fmt: skip
        _made["month"] = (directory, truth)
    return _made["month"]
