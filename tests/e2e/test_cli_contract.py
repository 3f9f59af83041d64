"""The README's table of exit codes, run: every documented failure of the CLI against one running
demo alliance and against no network, checking its exit code and the words that say what to fix.

`NET` in a command line is the running network's folder, `DOWN` an initialised network that is
not running; commands run from the repository root, which is no network folder.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.networks import DEMO_ALLIANCE, REPO, cli, running, with_free_ports

DOCTOR, CLERK = "User1@SecondaryHospitalA", "Clerk1@SecondaryHospitalA"
METRICS = '{"referralsOut":1}'


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    base = tmp_path_factory.mktemp("contract")
    down = tmp_path_factory.mktemp("down")
    cli("network", "init", str(with_free_ports(DEMO_ALLIANCE, down / "n.yaml")), "--dir",
        str(down / "network"))  # fmt: skip
    with running(with_free_ports(DEMO_ALLIANCE, base / "network.yaml"), base) as directory:
        yield {"NET": str(directory), "DOWN": str(down / "network")}


def run(folders: dict[str, str], line: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """`medalliance LINE` (words split on spaces; NET and DOWN replaced): exit code, stdout and
    stderr together."""
    args = [folders.get(word, word) for word in line.split(" ")]
    environment = {k: v for k, v in os.environ.items() if k != "MEDALLIANCE_DIR"}
    environment.update({"PYTHONPATH": str(REPO), **(env or {})})
    done = subprocess.run([sys.executable, "-m", "medalliance", *args], capture_output=True,
                          text=True, timeout=150, cwd=REPO, env=environment)  # fmt: skip
    return done.returncode, done.stdout + done.stderr


# The README's exit codes: 0 done, 1 no / not found, 2 bad input, 3 retry may help, 4 denied.
FAILURES = [
    (f"visit show V-NONE --as {DOCTOR} -d NET", 1, "visit V-NONE does not exist"),
    (f"report submit R-9 --period 2026-11 --metrics {METRICS} --as {DOCTOR} -d NET", 4,
     "role clerk required"),
    (f"report submit R-9 --period 2026-13 --metrics {METRICS} --as {CLERK} -d NET", 2,
     "period must be YYYY-MM"),
    ("audit indicators --period 2026-13 --as Auditor1@DistrictHC -d NET", 2,
     "--period must be YYYY-MM"),
    ("visit show V-1 --as User1@Nowhere -d NET", 2,
     "organisations: CityHC, DistrictHC, TertiaryHospitalA"),
    ("visit show V-1 --as Nobody@SecondaryHospitalA -d NET", 2, "users: Admin, Clerk1, User1"),
    ("visit show V-1 --as User1 -d NET", 2, "--as takes USER@ORG"),
    ("referral review APP-1 --as Reviewer1@DistrictHC -d NET", 2,
     "give exactly one of --approve or --reject"),
    ("tx evaluate -C nochannel -n visit GetVisit V-1 --org SecondaryHospitalA -d NET", 2,
     "no channel 'nochannel' in network demo-alliance; channels: alliance"),
    ("tx evaluate -C alliance -n nocontract F --org SecondaryHospitalA -d NET", 1,
     "contracts: visit, report, referral"),
    ("tx evaluate -C alliance -n visit NoSuchFunction --org SecondaryHospitalA -d NET", 1,
     "has no function NoSuchFunction; functions: "),
    ("visit show V-1 --as User1@SecondaryHospitalA -d NET --frobnicate", 2, "No such option"),
    (f"visit show V-NONE --as {DOCTOR} -d NET --json", 1,
     '{"error": "ContractError", "message": "visit V-NONE does not exist"}'),
    (f"--dir NET visit show V-NONE --as {DOCTOR} -v", 1, "visit V-NONE does not exist"),
    ("tx evaluate -C alliance -n visit GetVisit --org --json -d NET", 2,
     "error: no organisation '--json'"),
    (f"visit show V-1 --as {DOCTOR} -d DOWN", 3,
     "is the network up? `medalliance network status --dir "),
    ("tx evaluate -C alliance -n visit GetVisit V-1 --org SecondaryHospitalA -d DOWN --json", 3,
     "is the network up? `medalliance network status --dir "),
    ("network status -d DOWN", 1, "down"),
    (f"visit show V-1 --as {DOCTOR}", 1,
     "is not a network folder; add --dir DIR (or set MEDALLIANCE_DIR)"),
    (f"visit show V-1 --as {DOCTOR} -d /nonexistent/folder", 1,
     "/nonexistent/folder holds no network (no network.yaml); run `network init`"),
    ("ledger verify /nonexistent/folder", 1, "does not exist"),
    (f"connector sync --follow --through-block 3 --as {DOCTOR} -d NET", 2,
     "--through-block is for one pass"),
    ("audit index --metrics 127.0.0.1:9 --as Auditor1@DistrictHC -d NET", 2,
     "--metrics serves the lag of a follower: add --follow"),
    ("visit show -h", 0, "Example: medalliance visit show"),
    ("referral show -h", 0, "--json"),
]  # fmt: skip
IDS = [
    "a contract's not found is no",
    "a contract's permission refusal is permission denied",
    "a contract's bad period is bad input",
    "a bad period option is bad input",
    "an unknown organisation is bad input and lists the organisations",
    "an unknown user is bad input and lists the users",
    "a malformed --as is bad input",
    "neither of two required flags is bad input",
    "an unknown channel is bad input and lists the channels",
    "an unknown contract is not found and lists the contracts",
    "an unknown contract function is not found and lists the functions",
    "an unknown option is a usage error",
    "--json after the command gives one JSON error",
    "--dir before the command and -v after it are accepted",
    "a value that reads --json stays the option's value",
    "a network that is down says how to check it",
    "a network that is down says so under --json too",
    "network status on a network that is down is no",
    "no --dir outside a network folder says to add --dir",
    "a --dir holding no network says to run network init",
    "a missing ledger folder is no",
    "--through-block with --follow is bad input",
    "--metrics without --follow is bad input",
    "-h is --help",
    "-h shows the global options on every command",
]


@pytest.mark.parametrize(("line", "code", "fragment"), FAILURES, ids=IDS)
def test_each_documented_failure_exits_as_the_readme_says(
    folders: dict[str, str], line: str, code: int, fragment: str
) -> None:
    exit_code, output = run(folders, line)
    assert exit_code == code, output
    assert fragment in output


def test_the_readme_table_lists_each_exit_code_the_cli_uses() -> None:
    from medalliance.errors import MedallianceError, contract_category

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("| code | meaning | examples |") :].split("\n\n")[0]
    table = re.findall(r"^\| (\d+) \|", section, re.MULTILINE)
    documented = {int(code) for code in table}
    used = {0, 70} | {
        c.status.exit_code for c in (*MedallianceError.__subclasses__(), MedallianceError)
    }
    assert documented == used
    assert [contract_category(s).status.exit_code for s in (400, 403, 404, 409, 412, 503)] == [
        2, 4, 1, 1, 1, 3
    ]  # fmt: skip


def test_a_refused_submission_changes_nothing_and_a_committed_one_says_where(
    folders: dict[str, str],
) -> None:
    submit = f"report submit R-7 --period 2026-11 --metrics {METRICS} -d NET --as"
    assert run(folders, f"{submit} {DOCTOR}")[0] == 4  # refused: nothing written
    code, output = run(folders, f"{submit} {CLERK}")
    assert code == 0, output
    assert re.search(r"committed in block \d+ \([0-9a-f]{64}\)", output)
    again = subprocess.run(
        [sys.executable, "-m", "medalliance", *f"{submit} {CLERK}".replace("NET",
         folders["NET"]).split(" "), "--json"], capture_output=True, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=150,
    )  # fmt: skip
    assert again.returncode == 1
    assert json.loads(again.stdout)["message"] == "report R-7 for 2026-11 already exists"
    code, output = run(
        folders, "tx submit -C alliance -n visit RegisterVisit --org SecondaryHospitalA -d NET"
    )
    assert code == 2  # the contract's own "bad arguments": nothing committed
    shown = json.loads(run(folders, f"report show R-7 --as {CLERK} -d NET --json")[1])
    assert shown["reportId"] == "R-7"


def test_the_network_folder_comes_from_medalliance_dir(folders: dict[str, str]) -> None:
    code, output = run(
        folders, f"visit show V-NONE --as {DOCTOR}", env={"MEDALLIANCE_DIR": folders["NET"]}
    )
    assert (code, "visit V-NONE does not exist" in output) == (1, True)


def test_piped_tables_are_not_cut(folders: dict[str, str]) -> None:
    code, output = run(folders, "network status -d NET")
    assert code == 0, output
    for name in ("orderer0.districthc.example.com", "peer0.secondarya.example.com"):
        assert name in output
    assert max(len(line) for line in output.splitlines()) > 100
