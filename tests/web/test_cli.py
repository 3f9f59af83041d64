"""`medalliance web account|token` and `serve`'s refusal to start without accounts (subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.networks import REPO, cli

PASSWORD = "a long enough password"


def _with_stdin(text: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medalliance", *args],
        input=text, capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip


def test_accounts_and_tokens_from_the_command_line(demo_template: Path, tmp_path: Path) -> None:
    where = ["--dir", str(demo_template), "--accounts", str(tmp_path / "accounts.db")]
    added = _with_stdin(
        PASSWORD + "\n", "--json", "web", "account", "add", "clerk.qian", *where,
        "--org", "SecondaryHospitalB", "--identity", "Clerk1", "--password-stdin",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["role"] == "clerk"
    assert PASSWORD not in added.stdout + added.stderr

    bad = _with_stdin(
        "short\n", "--json", "web", "account", "add", "clerk.sun", *where,
        "--org", "SecondaryHospitalB", "--identity", "Clerk1", "--password-stdin",
    )  # fmt: skip
    assert bad.returncode == 2
    assert "at least" in json.loads(bad.stdout)["message"]

    issued = json.loads(cli("--json", "web", "token", "issue", "clerk.qian", *where).stdout)
    assert issued["token"].startswith("mat_")
    listed = json.loads(cli("--json", "web", "token", "list", *where).stdout)["tokens"]
    assert [t["token"] for t in listed] == [None]  # never shown again
    cli("web", "token", "revoke", issued["token_id"], *where)
    cli("web", "account", "disable", "clerk.qian", *where)
    accounts = json.loads(cli("--json", "web", "account", "list", *where).stdout)["accounts"]
    assert [(a["username"], a["disabled"]) for a in accounts] == [("clerk.qian", True)]


def test_serve_refuses_to_start_without_an_account(demo_template: Path, tmp_path: Path) -> None:
    result = cli(
        "serve", "--dir", str(demo_template), "--org", "SecondaryHospitalA",
        "--accounts", str(tmp_path / "none.db"), "--port", "1",
        check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "medalliance web account add" in result.stderr
