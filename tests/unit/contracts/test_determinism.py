"""Contracts stay deterministic: a static check before load, an audit-hook guard at run time."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from tests.conftest import Org
from tests.unit.contracts.fakes import DictState, tx_context

from medalliance.contracts.api import Context, Contract, transaction
from medalliance.contracts.determinism import check_contract_source, contract_running
from medalliance.contracts.simulation import simulate
from medalliance.identity.msp import MspManager


@pytest.mark.parametrize(
    ("source", "finding"),
    [
        pytest.param("import time\n", "imports time", id="the clock module is flagged"),
        pytest.param("from random import choice\n", "imports random", id="randomness is flagged"),
        pytest.param("import secrets\n", "imports secrets", id="secrets is flagged"),
        pytest.param("import os.path\n", "imports os.path", id="a submodule of os is flagged"),
        pytest.param("import socket\n", "imports socket", id="sockets are flagged"),
        pytest.param("import subprocess\n", "imports subprocess", id="processes are flagged"),
        pytest.param("import threading\n", "imports threading", id="threads are flagged"),
        pytest.param("import asyncio\n", "imports asyncio", id="asyncio is flagged"),
        pytest.param("import urllib.request\n", "imports urllib", id="urllib is flagged"),
        pytest.param("from http import client\n", "imports http", id="http is flagged"),
        pytest.param("import sqlite3\n", "imports sqlite3", id="databases are flagged"),
        pytest.param("from pathlib import Path\n", "imports pathlib", id="pathlib is flagged"),
        pytest.param(
            "import datetime\nx = datetime.datetime.now()\n", ".now()", id="datetime now is flagged"
        ),
        pytest.param(
            "import datetime\nd = datetime.date.today()\n", ".today()", id="today is flagged"
        ),
        pytest.param("x = dt.datetime.utcnow()\n", ".utcnow()", id="utcnow is flagged"),
        pytest.param("open('f')\n", "calls open()", id="open is flagged"),
        pytest.param("input()\n", "calls input()", id="input is flagged"),
        pytest.param("__import__('os')\n", "calls __import__()", id="__import__ is flagged"),
        pytest.param("eval('1')\n", "calls eval()", id="eval is flagged"),
        pytest.param("exec('1')\n", "calls exec()", id="exec is flagged"),
    ],
)
def test_static_check_flags_nondeterminism(source: str, finding: str) -> None:
    findings = check_contract_source(source)
    assert len(findings) == 1
    assert finding in findings[0]
    assert findings[0].startswith("line ")


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("import json\nimport re\n", id="pure standard modules pass"),
        pytest.param(
            "import datetime as dt\nx = dt.datetime.fromtimestamp(0, tz=dt.UTC)\n",
            id="formatting the transaction timestamp passes",
        ),
        pytest.param("from medalliance.contracts import Contract\n", id="the contract API passes"),
    ],
)
def test_static_check_passes_deterministic_code(source: str) -> None:
    assert check_contract_source(source) == []


@pytest.mark.parametrize(
    "action",
    [
        pytest.param(lambda path: path.open("w"), id="opening a file raises"),
        pytest.param(lambda _: socket.socket(), id="creating a socket raises"),
        pytest.param(
            lambda _: subprocess.run(["true"], check=False), id="starting a process raises"
        ),
    ],
)
def test_runtime_guard_refuses_io_inside_contract_code(tmp_path: Path, action: object) -> None:
    assert callable(action)
    with contract_running(), pytest.raises(RuntimeError, match="deterministic"):
        action(tmp_path / "f")


def test_runtime_guard_leaves_other_code_alone(tmp_path: Path) -> None:
    with contract_running():
        pass
    (tmp_path / "f").write_text("outside contract code is fine")
    assert (tmp_path / "f").read_text() == "outside contract code is fine"


class Sneaky(Contract):
    name = "sneaky"

    @transaction
    def ReadFile(self, ctx: Context, path: str) -> str:
        with open(path) as handle:
            return handle.read()

    @transaction
    def Count(self, ctx: Context, text: str) -> int:
        return int(text)  # a bug: the ValueError's text quotes the argument


@pytest.mark.parametrize(
    "function",
    [
        pytest.param(b"ReadFile", id="a contract doing I/O fails with a generic error"),
        pytest.param(b"Count", id="a contract bug fails with a generic error"),
    ],
)
def test_contract_bugs_answer_generically_and_log_no_arguments(
    tmp_path: Path,
    org1: Org,
    msps: MspManager,
    caplog: pytest.LogCaptureFixture,
    function: bytes,
) -> None:
    secret = tmp_path / "patient-record.txt"
    secret.write_text("private")
    args = [function, str(secret).encode()]
    result = simulate(Sneaky(), "sneaky", args, DictState(), tx_context(org1, msps))
    assert (result.status, result.message) == (500, "contract sneaky failed: internal error")
    assert (result.payload, result.rwset) == (b"", b"")
    # Arguments never reach the log, not even through the exception text or its extras.
    assert all("patient-record" not in str(vars(record)) for record in caplog.records)
    assert [r.getMessage() for r in caplog.records] == ["contract failed"]
