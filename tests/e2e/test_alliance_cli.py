"""The role commands against the demo alliance as processes: each step is a real CLI run.

Secondary hospital A registers a visit and shares its clinical package (`privacy encrypt` +
`privacy share`), applies twice; the district commission rejects one application and approves the
other; A refers the patient up to tertiary hospital B, whose connector imports the referral into
B's database exactly once; B accepts and completes it and the A–B agreement settles it. Refusals
come back with the contract's own words and a non-zero exit code. Reports, resources and
settlements get one walk each.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.identifiers import PSEUDONYM_SYSTEM, identifier_value
from tests.networks import DEMO_ALLIANCE, REPO, cli, cli_json, running, with_free_ports

A, B, OTHER, C = "SecondaryHospitalA", "TertiaryHospitalB", "TertiaryHospitalA", "DistrictHC"
DOCTOR_A, CLERK_A = f"User1@{A}", f"Clerk1@{A}"
DOCTOR_B, CLERK_B = "User1@TertiaryBMSP", f"Clerk1@{B}"  # an MSP id works as well as a name
REVIEWER = f"Reviewer1@{C}"
ID_NUMBER = "11010519491231002X"  # GB 11643's own example number: synthetic


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("acli")
    with running(with_free_ports(DEMO_ALLIANCE, base / "network.yaml"), base) as directory:
        yield directory


def run(alliance: Path, *args: str) -> Any:
    """A role command with --json: its one JSON document."""
    return cli_json(*args, "--dir", str(alliance))


def refused(alliance: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(*args, "--dir", str(alliance), check=False)


def test_a_malformed_as_is_a_usage_error(tmp_path: Path) -> None:
    for value in ("User1", "@SecondaryHospitalA"):
        result = cli("visit", "show", "V-1", "--as", value, "--dir", str(tmp_path), check=False)
        assert result.returncode == 2, result.stderr
        assert "--as takes USER@ORG, e.g. User1@SecondaryHospitalA" in result.stderr


def test_a_referral_walks_through_the_cli(
    alliance: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    visit, summary = "V-100", "R-100"
    # A's HIS records arrive as a FHIR Bundle (the shipped example data); the import gives each
    # patient the pseudonym, so no one invents one; the referral Bundle is built from the store.
    example = REPO / "examples" / "fhir" / "secondary-hospital-a.json"
    imported = cli_json("hospital", "import", str(example), "--org", A, "--dir", str(alliance))
    ref = imported["patients"]["sa-p1"]
    registered = run(alliance, "visit", "register", visit, "--patient", "sa-p1", "--as", DOCTOR_A)
    assert registered["result"]["hospital"] == "SecondaryAMSP"
    assert registered["result"]["patientRef"] == ref
    assert registered["block_number"] > 0
    reason = tmp_path / "reason.txt"
    reason.write_text("PCI for acute anterior MI", encoding="utf-8")
    packaged = run(alliance, "referral", "package", "REF-1", "--visit", visit, "--to", B,
                   "--record", summary, "--purpose-file", str(reason), "--priority", "urgent",
                   "--as", DOCTOR_A)  # fmt: skip
    assert (packaged["record_id"], packaged["visit"], packaged["patient_ref"]) == (
        summary, visit, ref
    )  # fmt: skip
    assert len(packaged["tx_id"]) == 64
    assert packaged["block_number"] > registered["block_number"]

    # Two applications to the district commission: one rejected, one approved.
    for app_id, target in (("APP-1", OTHER), ("APP-2", B)):
        applied = run(alliance, "referral", "apply", app_id, "--visit", visit, "--to", target,
                      "--summary", summary, "--as", DOCTOR_A)  # fmt: skip
        assert applied["result"]["regulator"] == "DistrictHCMSP"
    neither = refused(alliance, "referral", "review", "APP-1", "--as", REVIEWER)
    assert neither.returncode == 2
    assert "give exactly one of --approve or --reject" in neither.stderr
    as_text = refused(alliance, "referral", "review", "APP-1", "--reject", "--reason-code",
                      "no capacity", "--as", REVIEWER)  # fmt: skip
    assert as_text.returncode == 2  # the contract's 400: bad input
    assert "reasonCode must be one of NOT_INDICATED, " in as_text.stderr
    assert "no capacity" not in as_text.stderr  # free text is refused, never echoed
    rejected = run(alliance, "referral", "review", "APP-1", "--reject", "--reason-code",
                   "TARGET_NO_CAPACITY", "--as", REVIEWER)  # fmt: skip
    assert (rejected["result"]["status"], rejected["result"]["reasonCode"]) == (
        "REJECTED", "TARGET_NO_CAPACITY"
    )  # fmt: skip
    approved = run(alliance, "referral", "review", "APP-2", "--approve", "--as", REVIEWER)
    assert approved["result"]["status"] == "APPROVED"

    refer = ("referral", "refer", "REF-1", "--visit", visit, "--direction", "UP",
             "--clinical", summary)  # fmt: skip
    by_clerk = refused(alliance, *refer, "--to", B, "--application", "APP-2", "--as", CLERK_A)
    assert by_clerk.returncode == 4  # the contract's 403: permission denied
    assert "role doctor required, caller has clerk" in by_clerk.stderr
    with_rejected = refused(alliance, *refer, "--to", OTHER, "--application", "APP-1",
                            "--as", DOCTOR_A)  # fmt: skip
    assert with_rejected.returncode == 1
    assert "application APP-1 is REJECTED" in with_rejected.stderr

    # The benefit-sharing agreement between A and B, signed by both clerks.
    terms = tmp_path / "terms.json"
    terms.write_text(json.dumps({
        "version": 2, "fees": {"UP": {"outpatient": {"amountCents": 5000, "payer": "target"}}},
        "shares": {"UP": {"basisPoints": 250, "payer": "target"}},
    }))  # fmt: skip
    proposed = run(alliance, "settlement", "propose", "AG-1", "--partner", B,
                   "--terms", f"@{terms}", "--as", CLERK_A)  # fmt: skip
    assert proposed["result"]["status"] == "PROPOSED"
    accepted = run(alliance, "settlement", "accept", "AG-1", "--as", CLERK_B)
    assert accepted["result"]["status"] == "ACTIVE"

    # B offers an outpatient slot; the referral holds it in its own transaction (issue 19), and
    # its care type picks the agreement's outpatient fee
    run(alliance, "resource", "publish", "OP-1", "--kind", "outpatient", "--description", "PCI clinic",
        "--slot", "2030-01-10T08:00", "--as", CLERK_B)  # fmt: skip
    referred = run(alliance, *refer, "--to", B, "--application", "APP-2",
                   "--hold-slot", "OP-1:2030-01-10T08:00", "--as", DOCTOR_A)  # fmt: skip
    assert (referred["result"]["status"], referred["result"]["careType"]) == (
        "REFERRED", "outpatient"
    )  # fmt: skip

    # B's connector imports the referral into B's own database, exactly once. The referral's
    # block was committed on A's peer; B's peer receives it a moment later.
    db = tmp_path / "tertiary-b.db"
    sync = ("connector", "sync", "--db", str(db), "--as", DOCTOR_B)
    first = run(alliance, *sync, "--through-block", str(referred["block_number"]))
    assert first["imported"] == ["REF-1"]
    assert first["last_block"] >= referred["block_number"]
    held = _imported(db, "REF-1")
    assert (held["patientRefs"], held["provenance"]) == ([ref], True)
    assert (held["Condition"], held["Observation"], held["DiagnosticReport"]) == (2, 2, 1)
    again = run(alliance, *sync)
    assert again["imported"] == []
    assert again["last_block"] >= first["last_block"]
    # A connector killed (SIGKILL) right after an import neither loses nor doubles it.
    killed = tmp_path / "killed.db"
    _kill_after(alliance, killed, "imported referral REF-1")
    resumed = run(alliance, "connector", "sync", "--db", str(killed), "--as", DOCTOR_B)
    assert (resumed["imported"], resumed["quarantined"]) == ([], [])
    assert _imported(killed, "REF-1") == held

    run(alliance, "referral", "accept", "REF-1", "--as", DOCTOR_B)
    (slot_state,) = run(alliance, "resource", "slots", "OP-1", "--as", CLERK_A)
    assert (slot_state["state"], slot_state["bookingId"]) == (
        "BOOKED",
        "REF-1",
    )  # the hold became the booking
    outcome = tmp_path / "outcome.txt"
    outcome.write_text("PCI done, one stent, stable", encoding="utf-8")
    fed = run(alliance, "referral", "feedback", "REF-1", "--text-file", str(outcome),
              "--record", "F-100", "--as", DOCTOR_B)  # fmt: skip
    assert fed["record_id"] == "F-100"
    completed = run(alliance, "referral", "complete", "REF-1", "--feedback", "F-100",
                    "--as", DOCTOR_B)  # fmt: skip
    assert completed["result"]["feedbackRef"] == "F-100"
    settlement = completed["result"]["settlement"]
    assert (settlement["executed"], settlement["payer"], settlement["amountCents"]) == (
        True, "TertiaryBMSP", 5000,
    )  # fmt: skip
    followed = run(alliance, *sync)
    assert [(c["referral_id"], c["status"]) for c in followed["updated"]] == [
        ("REF-1", "ACCEPTED"),
        ("REF-1", "COMPLETED"),
    ]
    assert _follow_until(alliance, tmp_path / "followed.db", "referral REF-1 is COMPLETED") == [
        "imported referral REF-1",
        "referral REF-1 is ACCEPTED",
        "referral REF-1 is COMPLETED",
    ]
    # The origin's connector follows its referral and imports the feedback Bundle.
    origin = run(alliance, "connector", "sync", "--as", DOCTOR_A,
                 "--through-block", str(completed["block_number"]))  # fmt: skip
    assert (origin["noted"], origin["quarantined"]) == (["REF-1"], [])
    assert run(alliance, "connector", "failures", "--db", str(db), "--as", DOCTOR_B) == {
        "failures": []
    }
    not_held = refused(alliance, "connector", "retry", "REF-1", "--db", str(db), "--as", DOCTOR_B)
    assert not_held.returncode == 1
    assert "REF-1 is not quarantined" in not_held.stderr
    balance = run(alliance, "settlement", "balance", "--hospital", "SecondaryAMSP",
                  "--period", settlement["period"], "--as", CLERK_A)  # fmt: skip
    assert (balance["receivableCents"], balance["payableCents"]) == (5000, 0)
    # B, the payer, declares REF-1's settled cost; 2.5 % of it (rounded down) is an entry. Both
    # clerks sign the month's statement, which closes it.
    period = ("--period", settlement["period"])
    share = run(alliance, "settlement", "declare", "AG-1", "--referral", "REF-1",
                "--amount-cents", "1234567", "--as", CLERK_B)["result"]  # fmt: skip
    assert (share["rule"], share["amountCents"]) == ("share", 30864)
    by_payee = refused(alliance, "settlement", "declare", "AG-1", "--referral", "REF-1",
                       "--amount-cents", "5", "--as", CLERK_A)  # fmt: skip
    assert by_payee.returncode == 4
    assert "cannot declare the amount of referral REF-1" in by_payee.stderr
    run(alliance, "settlement", "sign", "AG-1", *period, "--as", CLERK_A)
    signed = run(alliance, "settlement", "sign", "AG-1", *period, "--as", CLERK_B)["result"]
    statement = run(alliance, "settlement", "statement", "AG-1", *period, "--as", CLERK_A)
    assert (statement["closed"], statement["digest"]) == (True, signed["digest"])
    assert [e["rule"] for e in statement["entries"]] == ["flat", "share"]
    assert statement["netCents"] == {"SecondaryAMSP": 35864, "TertiaryBMSP": -35864}

    monkeypatch.setenv("COLUMNS", "200")  # one table row per referral
    trail = cli("referral", "history", visit, "--as", "Auditor1@CityHC", "--dir", str(alliance))
    (row,) = [line for line in trail.stdout.splitlines() if "REF-1" in line]
    assert row.split()[1:7:2] == ["REF-1", "UP", "SecondaryAMSP"]
    assert "REFERRED → ACCEPTED → COMPLETED" in row


def test_a_bad_package_is_quarantined_listed_and_retried_through_the_cli(
    alliance: Path, tmp_path: Path
) -> None:
    """A referral whose sealed package is not a referral Bundle: `connector sync` goes on past
    it, `connector failures` lists it (no patient data), `connector retry` exits 1 with the
    reason and keeps it."""
    visit, record, ref = "V-900", "R-900", "9a" * 16
    junk = tmp_path / "junk.txt"
    junk.write_text("not a FHIR Bundle", encoding="utf-8")
    sealed, d = tmp_path / "R-900.sealed", ("--dir", str(alliance))
    cli("privacy", "encrypt", str(junk), *d, "--org", A, "--to", B, "--record", record,
        "-o", str(sealed))  # fmt: skip
    cli_json("privacy", "share", str(sealed), *d, "--org", A, "--patient-ref", ref)
    run(alliance, "visit", "register", visit, "--patient-ref", ref, "--as", DOCTOR_A)
    run(alliance, "referral", "apply", "APP-900", "--visit", visit, "--to", B, "--summary", record,
        "--as", DOCTOR_A)  # fmt: skip
    run(alliance, "referral", "review", "APP-900", "--approve", "--as", REVIEWER)
    referred = run(alliance, "referral", "refer", "REF-900", "--visit", visit, "--to", B,
                   "--direction", "UP", "--application", "APP-900", "--clinical", record,
                   "--as", DOCTOR_A)  # fmt: skip
    db = tmp_path / "b.db"
    synced = run(alliance, "connector", "sync", "--db", str(db), "--as", DOCTOR_B,
                 "--through-block", str(referred["block_number"]))  # fmt: skip
    assert "REF-900" in synced["quarantined"]
    assert "REF-900" not in synced["imported"]
    listed = run(alliance, "connector", "failures", "--db", str(db), "--as", DOCTOR_B)
    [failure] = [f for f in listed["failures"] if f["referral_id"] == "REF-900"]
    assert (failure["record_id"], failure["reason"][:15]) == (record, "InvalidBundle: ")
    again = refused(alliance, "connector", "retry", "REF-900", "--db", str(db), "--as", DOCTOR_B)
    assert again.returncode == 1
    assert "REF-900 is quarantined: InvalidBundle" in again.stderr
    after = run(alliance, "connector", "failures", "--db", str(db), "--as", DOCTOR_B)
    [kept] = [f for f in after["failures"] if f["referral_id"] == "REF-900"]
    assert kept["first_attempt"] == failure["first_attempt"]


def test_reports_go_up_the_regulator_hierarchy(alliance: Path) -> None:
    period = "2026-11"
    for report_id, clerk, count in (("RPT-A", CLERK_A, 12), ("RPT-B", CLERK_B, 30)):
        submitted = run(alliance, "report", "submit", report_id, "--period", period,
                        "--metrics", json.dumps({"referralsOut": count}), "--as", clerk)  # fmt: skip
        assert submitted["result"]["recipient"] == "DistrictHCMSP"
    summed = run(alliance, "report", "aggregate", "RPT-D", "--period", period, "--as", REVIEWER)
    assert summed["result"]["metrics"] == {"referralsOut": 42}
    assert summed["result"]["recipient"] == "CityHCMSP"
    listed = run(alliance, "report", "list", "--to", C, "--period", period, "--as", REVIEWER)
    assert [r["reportId"] for r in listed] == ["RPT-A", "RPT-B"]


def test_a_resource_is_published_booked_and_confirmed(alliance: Path) -> None:
    clerk_other = f"Clerk1@{OTHER}"
    slots = ("2026-12-01T09:00", "2026-12-01T10:00")
    run(alliance, "resource", "publish", "MRI-1", "--kind", "equipment", "--description", "3T MRI",
        "--slot", slots[0], "--slot", slots[1], "--as", clerk_other)  # fmt: skip
    booked = run(alliance, "resource", "book", "BK-1", "--resource", "MRI-1", "--slot", slots[0],
                 "--as", CLERK_A)  # fmt: skip
    assert booked["result"]["status"] == "REQUESTED"
    not_owner = refused(alliance, "resource", "confirm", "BK-1", "--as", CLERK_A)
    assert not_owner.returncode == 4  # the contract's 403: permission denied
    assert "resource MRI-1 belongs to TertiaryAMSP, not SecondaryAMSP" in not_owner.stderr
    confirmed = run(alliance, "resource", "confirm", "BK-1", "--as", clerk_other)
    assert confirmed["result"]["status"] == "CONFIRMED"
    listed = {r["resourceId"]: r for r in run(alliance, "resource", "list", "--as", CLERK_A)}
    assert listed["MRI-1"]["freeSlots"] == [slots[1]]


def test_a_recognised_result_is_found_requested_granted_and_fetched(
    alliance: Path, tmp_path: Path
) -> None:
    """Issue 19 on the demo alliance: the district publishes its recognition rules from the YAML
    file; TertiaryA records a haemoglobin result sealed in its record; SecondaryA, holding a visit
    of the patient, finds it, requests it, and fetches it once TertiaryA grants it; a duplicate
    order records its reason; an expired day offers nothing; another hospital cannot ask."""
    ref, record, d = "7c" * 16, "R-950", ("--dir", str(alliance))
    today = dt.datetime.now(dt.UTC).date()
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"resourceType": "DiagnosticReport", "status": "final"}))
    sealed = tmp_path / "R-950.sealed"
    rules = run(alliance, "result", "publish-rules", "--file", str(REPO / "networks" / "recognition-rules.yaml"), "--as", REVIEWER)  # fmt: skip
    assert rules["result"]["levels"]["TertiaryAMSP"]["718-7"] == "A"
    cli("privacy", "encrypt", str(report), *d, "--org", OTHER, "--record", record, "-o", str(sealed))  # fmt: skip
    cli_json("privacy", "share", str(sealed), *d, "--org", OTHER, "--patient-ref", ref)
    run(alliance, "result", "record", "RES-950", "--patient", ref, "--code", "718-7", "--performed-on", today.isoformat(), "--record", record, "--as", f"User1@{OTHER}")  # fmt: skip
    run(alliance, "visit", "register", "V-950", "--patient-ref", ref, "--as", DOCTOR_A)
    ask = ("result", "recognised", "--patient", ref, "--code", "718-7", "--visit", "V-950")
    [found] = run(alliance, *ask, "--as", DOCTOR_A)
    assert (found["resultId"], found["hospital"], found["level"]) == (
        "RES-950",
        "TertiaryAMSP",
        "A",
    )
    later = (today + dt.timedelta(days=31)).isoformat()
    assert run(alliance, *ask, "--as-of", later, "--as", DOCTOR_A) == []  # expired then
    stranger = refused(alliance, *ask, "--as", "User1@SecondaryHospitalB")
    assert stranger.returncode == 4
    assert "patient of visit V-950 is not at SecondaryBMSP" in stranger.stderr
    run(alliance, "result", "request", "RES-950", "--visit", "V-950", "--as", DOCTOR_A)
    granted = cli_json("privacy", "grant", *d, "--org", OTHER, "--record", record, "--to", A)
    out = tmp_path / "fetched.json"
    cli("privacy", "fetch", *d, "--org", A, "--record", record, "-o", str(out), "--through-block", str(granted["block_number"]))  # fmt: skip
    assert json.loads(out.read_text())["resourceType"] == "DiagnosticReport"
    order = run(alliance, "result", "order-duplicate", "ORD-950", "--visit", "V-950", "--code", "718-7", "--reason-code", "CONDITION_CHANGED", "--as", DOCTOR_A)  # fmt: skip
    assert (order["result"]["reasonCode"], order["result"]["recognised"]) == ("CONDITION_CHANGED", ["RES-950"])  # fmt: skip


def test_a_consultation_grants_access_until_it_closes(alliance: Path, tmp_path: Path) -> None:
    """Issue 19's remote consultation on the demo alliance: SecondaryA asks TertiaryA about a
    visit, granting its sealed record; TertiaryA opens it, reports (sealed, signed); SecondaryA
    verifies the report and closes; TertiaryA can no longer fetch the record; a third hospital
    cannot read the consultation."""
    ref, record, d = "7d" * 16, "R-960", ("--dir", str(alliance))
    consultant = f"User1@{OTHER}"
    note = tmp_path / "note.json"
    note.write_text(json.dumps({"resourceType": "Bundle", "type": "collection"}))
    sealed = tmp_path / "R-960.sealed"
    run(alliance, "visit", "register", "V-960", "--patient-ref", ref, "--as", DOCTOR_A)
    cli("privacy", "encrypt", str(note), *d, "--org", A, "--record", record, "-o", str(sealed))
    cli_json("privacy", "share", str(sealed), *d, "--org", A, "--patient-ref", ref)
    asked = run(alliance, "consultation", "request", "C-960", "--visit", "V-960", "--consultant", OTHER, "--record", record, "--question", "Is surgery indicated?", "--as", DOCTOR_A)  # fmt: skip
    assert asked["result"]["granted"] == [record]
    fetch = ("privacy", "fetch", *d, "--org", OTHER, "--record", record)
    cli(*fetch, "-o", str(tmp_path / "opened.json"), "--through-block", str(asked["block_number"]))  # fmt: skip
    assert json.loads((tmp_path / "opened.json").read_text())["type"] == "collection"
    stranger = refused(alliance, "consultation", "show", "C-960", "--as", "User1@TertiaryHospitalB")
    assert stranger.returncode == 4
    run(alliance, "consultation", "accept", "C-960", "--as", consultant)
    run(alliance, "consultation", "report", "C-960", "--text", "Surgery is indicated.", "--as", consultant)  # fmt: skip
    shown = run(alliance, "consultation", "show", "C-960", "--report", "--as", DOCTOR_A)
    assert (shown["report"], shown["reportVerified"]) == ("Surgery is indicated.", True)
    closed = run(alliance, "consultation", "close", "C-960", "--as", DOCTOR_A)
    assert closed["result"]["status"] == "CLOSED"
    after = refused(alliance, *fetch, "-o", str(tmp_path / "again.json"))
    assert after.returncode != 0
    assert [c["consultationId"] for c in run(alliance, "consultation", "list", "--as", consultant)] == ["C-960"]  # fmt: skip


def _kill_after(alliance: Path, db: Path, line: str) -> None:
    """Run `connector sync --follow` on a fresh database until it prints `line`, then kill it
    with SIGKILL (no cleanup of any kind)."""
    args = ("connector", "sync", "--follow", "--db", str(db), "--as", DOCTOR_B)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with subprocess.Popen(
        [sys.executable, "-m", "medalliance", *args, "--dir", str(alliance)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env,
    ) as follower:  # fmt: skip
        assert follower.stdout is not None
        for printed in follower.stdout:
            if printed.split(": ", 1)[-1].strip() == line:
                break
        follower.kill()
        follower.communicate(timeout=30)
    assert follower.returncode == -signal.SIGKILL


def _follow_until(alliance: Path, db: Path, last: str) -> list[str]:
    """Run `connector sync --follow` on a fresh database until it prints `last`, then Ctrl-C
    it; what it printed per change (without the block numbers)."""
    args = ("connector", "sync", "--follow", "--db", str(db), "--as", DOCTOR_B)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with subprocess.Popen(
        [sys.executable, "-m", "medalliance", *args, "--dir", str(alliance)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env,
    ) as follower:  # fmt: skip
        assert follower.stdout is not None
        lines = []
        for line in follower.stdout:  # the follower flushes each line as it happens
            lines.append(line.split(": ", 1)[-1].strip())
            if lines[-1] == last:
                break
        follower.send_signal(signal.SIGINT)
        rest, errors = follower.communicate(timeout=30)
    assert follower.returncode == 130, errors
    assert "imported: REF-1" in rest
    return lines


def _imported(db: Path, referral: str) -> dict[str, Any]:
    """What B's store holds from the referral: counts by type, the patients' pseudonyms, and
    whether its Provenance is there."""
    store = ClinicalStore.open(db)
    try:
        source = f"referral:{referral}"
        found: dict[str, Any] = {}
        for kind in ("Condition", "Observation", "DiagnosticReport"):
            found[kind] = sum(store.source_of(kind, r["id"]) == source for r in store.search(kind))
        found["patientRefs"] = [
            identifier_value(p, PSEUDONYM_SYSTEM) for p in store.search("Patient")
        ]
        found["provenance"] = store.find("Provenance", f"referral-{referral}") is not None
        return found
    finally:
        store.close()


def test_serve_acts_for_its_organisation_only_and_streams_its_events(
    alliance: Path, tmp_path: Path
) -> None:
    """`medalliance serve --dir --org` beside A's peer: A's staff log in, another organisation's
    account is refused, and a visit A registers reaches A's session over /events."""
    import queue
    import re
    import threading

    import httpx

    from tests.networks import free_ports, wait_until

    accounts = ["--dir", str(alliance), "--accounts", str(tmp_path / "accounts.db")]
    password = "a long enough password"
    for name, org in (("doctor.a", A), ("doctor.b", B)):
        added = subprocess.run(
            [sys.executable, "-m", "medalliance", "web", "account", "add", name, *accounts,
             "--org", org, "--identity", "User1", "--password-stdin"],
            input=password + "\n", capture_output=True, text=True, timeout=120, cwd=REPO,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "medalliance", "serve", *accounts, "--org", A, "--port", str(port)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip

    def up() -> bool:
        try:
            return server.poll() is not None or httpx.get(f"{url}/login").status_code == 200
        except httpx.HTTPError:
            return False

    def log_in(client: httpx.Client, username: str) -> httpx.Response:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert token is not None
        form = {"username": username, "password": password, "csrf_token": token.group(1)}
        return client.post("/login", data=form)

    events: queue.Queue[str] = queue.Queue()
    try:
        wait_until(up, "the web server answers", 120)
        assert server.poll() is None, server.stdout.read() if server.stdout else ""
        with httpx.Client(base_url=url) as other:
            assert log_in(other, "doctor.b").status_code == 401  # B's account, A's server
        with httpx.Client(base_url=url, timeout=60) as client:
            assert log_in(client, "doctor.a").status_code == 303
            assert client.get("/api/v1/me").json()["organization"] == A

            def listen() -> None:
                # Closing the client below ends the stream with a read error: the stream's end,
                # not a failure (a missing event fails the wait for it instead).
                with (
                    contextlib.suppress(httpx.HTTPError),
                    client.stream("GET", "/events") as stream,
                ):
                    for line in stream.iter_lines():
                        if line.startswith("data:"):
                            events.put(line[5:].strip())

            threading.Thread(target=listen, daemon=True).start()
            run(alliance, "visit", "register", "V-WEB-1", "--patient-ref", "7c" * 16,
                "--as", DOCTOR_A)  # fmt: skip
            seen: list[dict[str, Any]] = []
            wait_until(
                lambda: _drain(events, seen) and any(e.get("visitNo") == "V-WEB-1" for e in seen),
                "A's session receives the VisitRegistered event",
                60,
            )
            event = next(e for e in seen if e.get("visitNo") == "V-WEB-1")
            assert event["type"] == "VisitRegistered"
            assert "patientRef" not in event  # ids and statuses only
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _drain(events: Any, seen: list[dict[str, Any]]) -> bool:
    while not events.empty():
        seen.append(json.loads(events.get()))
    return True
