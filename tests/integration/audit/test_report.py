"""The commission's signed report on a generated month of the demo alliance: the figures equal
what the generator produced, the report verifies against the raw blocks, and every change to a
cited transaction, a figure, the period or the signature is named; hospitals cannot sign."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import statistics
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.generated_month import PERIOD, generated_month

from medalliance.app.activity_generator import MonthTruth
from medalliance.app.audit_export import csv_bytes, pdf_bytes
from medalliance.app.audit_report import (
    ledger_blocks,
    make_report,
    read_report,
    report_digest,
    verify_report,
    write_report,
)
from medalliance.audit.facts import facts_of_block
from medalliance.audit.report import Derivation, check_report, derive_report, sign_report
from medalliance.errors import InvalidArgument, PermissionDenied
from medalliance.identity.cryptogen import load_signer
from medalliance.node.bootstrap import NetworkLayout

NOW = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)
TERTIARY_A, SECONDARY_B = "TertiaryAMSP", "SecondaryBMSP"


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, MonthTruth]:
    """The session's generated month: a network folder and its ground truth (read only)."""
    return generated_month(tmp_path_factory)


@pytest.fixture(scope="module")
def signed(month: tuple[Path, MonthTruth], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.json"
    made = make_report(month[0], PERIOD, "Auditor1", "DistrictHC", NOW)
    write_report(made.document, path)
    return path


@pytest.fixture(scope="module")
def derivation(month: tuple[Path, MonthTruth], signed: Path) -> Derivation:
    ledger = month[0] / "nodes" / "peer0.tertiaryb.example.com" / "ledgers" / "alliance"
    height = read_report(signed)["report"]["ledger"]["height"]
    return derive_report(ledger_blocks(ledger), PERIOD, height=height)


def figures(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(f["indicator"], f["hospital"]): f["value"] for f in document["report"]["figures"]}


def ratio(numerator: int, denominator: int) -> Decimal:
    exact = Decimal(numerator) / Decimal(denominator)
    return exact.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)


def hours_median(pairs: list[tuple[str, str]]) -> Decimal:
    def hours(start: str, end: str) -> Decimal:
        seconds = (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).seconds
        days = (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).days
        return Decimal(days * 86400 + seconds) / 3600

    median = statistics.median(hours(a, b) for a, b in pairs)
    return Decimal(median).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def expected(truth: MonthTruth) -> dict[tuple[str, str], Decimal]:
    """The figures the ground truth implies, per docs/audit.md §2's definitions."""
    out: dict[tuple[str, str], Decimal] = {}
    counts = truth.counts()
    for hospital in (*truth.hospitals, ""):

        def count(name: str, who: str = hospital) -> int:
            return counts.get((name, who), 0)

        out[("referrals.upward", hospital)] = Decimal(count("referrals.upward"))
        out[("referrals.downward", hospital)] = Decimal(count("referrals.downward"))
        received = count("referrals.upward_received") + count("referrals.downward_received")
        out[("referrals.received", hospital)] = Decimal(received)
        decided = count("referrals.accepted") + count("referrals.rejected")
        if decided:
            out[("referrals.acceptance_rate", hospital)] = ratio(
                count("referrals.accepted"), decided
            )
        reviewed = count("applications.approved") + count("applications.rejected")
        if reviewed:
            out[("applications.approval_rate", hospital)] = ratio(
                count("applications.approved"), reviewed
            )
        out[("results.shared", hospital)] = Decimal(count("results.shared"))
        cents = Decimal("0.01")
        out[("settlement.receivable", hospital)] = count("settlement.received_cents") * cents
        out[("settlement.payable", hospital)] = count("settlement.paid_cents") * cents
        accepted = [
            (r.referred_at, r.decided_at)
            for r in truth.referrals
            if r.status in ("ACCEPTED", "COMPLETED") and hospital in ("", r.to_hospital)
        ]
        if accepted:
            out[("referrals.acceptance_hours_median", hospital)] = hours_median(accepted)
        decisions = [
            (a.submitted_at, a.reviewed_at)
            for a in truth.applications
            if a.reviewed_at and hospital in ("", a.hospital)
        ]
        if decisions:
            out[("applications.decision_hours_median", hospital)] = hours_median(decisions)
    return out


def test_the_figures_equal_what_the_generator_produced(
    month: tuple[Path, MonthTruth], signed: Path
) -> None:
    _, truth = month
    assert len(truth.referrals) >= 150, "hundreds of referrals across all hospitals"
    assert {r.from_hospital for r in truth.referrals} == set(truth.hospitals)
    derived = figures(read_report(signed))
    want = expected(truth)
    got = {key: Decimal(derived[key]) for key in want}
    assert got == want
    # The region's rejections by reason and the late ones are in the truth for the rules.
    assert truth.counts()[("applications.rejected", "")] > 0
    assert truth.counts()[("referrals.decided_late", "")] > 0


def test_the_ping_pong_and_the_refused_access_are_where_the_truth_says(
    month: tuple[Path, MonthTruth],
) -> None:
    directory, truth = month
    ledger = directory / "nodes" / "peer0.cityhc.example.com" / "ledgers" / "alliance"
    facts = [f for block in ledger_blocks(ledger) for f in facts_of_block(block, "alliance")]
    created = {f.subject: f for f in facts if f.kind == "referral.created"}
    pair = {
        frozenset((created[r].attribute("from_hospital"), created[r].attribute("to_hospital")))
        for r in truth.ping_pong
    }
    times = [dt.datetime.fromisoformat(created[r].timestamp) for r in truth.ping_pong]
    assert len(truth.ping_pong) == 3
    assert len(pair) == 1
    assert max(times) - min(times) < dt.timedelta(days=7)
    ((record, stranger),) = truth.refused_access
    accesses = {(f.subject, f.attribute("org")) for f in facts if f.kind == "record.accessed"}
    assert (record, stranger) not in accesses  # refused by the contract: nothing on the ledger
    ((tx_id, forger, forged_record, code),) = truth.forged_access
    assert (forger, forged_record, code) == (stranger, record, "ENDORSEMENT_POLICY_FAILURE")
    invalid = [f for f in facts if f.kind == "tx.invalid" and f.subject == tx_id]
    assert [(f.creator_msp, f.attribute("code")) for f in invalid] == [(stranger, code)]
    assert len(accesses) == len(set(truth.accesses))


def test_a_report_verifies_against_the_network_folder_and_against_one_node_ledger(
    month: tuple[Path, MonthTruth], signed: Path
) -> None:
    directory, _ = month
    one_node = directory / "nodes" / "peer0.secondaryb.example.com" / "ledgers" / "alliance"
    for ledger in (directory, one_node):
        verdict = verify_report(signed, ledger)
        assert verdict.problem is None
        assert verdict.figures > 0
        assert verdict.cited > 0
        assert verdict.signer == "DistrictHCMSP"


def _other_valid_tx(document: dict[str, Any]) -> str:
    sources = [s["txId"] for f in document["report"]["figures"] for s in f["sources"]]
    return sources[-1]


def _first_counted(document: dict[str, Any]) -> dict[str, Any]:
    return next(f for f in document["report"]["figures"] if f["sources"] and f["value"] != "0")


def _unknown_tx(doc: dict[str, Any]) -> None:
    _first_counted(doc)["sources"][0]["txId"] = "f" * 64


def _other_tx(doc: dict[str, Any]) -> None:
    figure = _first_counted(doc)
    cited = {s["txId"] for s in figure["sources"]}
    replacement = next(
        s["txId"] for f in doc["report"]["figures"] for s in f["sources"] if s["txId"] not in cited
    )
    figure["sources"][0]["txId"] = replacement


def _figure(doc: dict[str, Any]) -> None:
    figure = _first_counted(doc)
    figure["value"] = str(int(figure["value"]) + 1)


def _period(doc: dict[str, Any]) -> None:
    doc["report"]["period"] = "2026-10"


def _dropped(doc: dict[str, Any]) -> None:
    doc["report"]["figures"].pop()


def _signature(doc: dict[str, Any]) -> None:
    signature = bytearray(doc["signature"].encode())
    signature[12] = ord("A") if signature[12] != ord("A") else ord("B")
    doc["signature"] = signature.decode()


def _signed_at(doc: dict[str, Any]) -> None:
    doc["signer"]["signedAt"] = "2026-12-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        pytest.param(_unknown_tx, "which is not on the ledger", id="a cited tx id that is not on the ledger is named"),
        pytest.param(_other_tx, "which it was not derived from", id="a cited tx the figure was not derived from is named"),
        pytest.param(_figure, "the report says value", id="a changed figure is named with both values"),
        pytest.param(_period, "the period was changed", id="a changed period is named"),
        pytest.param(_dropped, "the report omits figure", id="a dropped figure is named"),
        pytest.param(_signature, "signature does not verify", id="a changed signature is refused"),
        pytest.param(_signed_at, "signature does not verify", id="a changed signing time is refused"),
    ],
)  # fmt: skip
def test_every_change_to_a_signed_report_is_named(
    signed: Path, derivation: Derivation, change: Callable[[dict[str, Any]], None], named: str
) -> None:
    original = signed.read_bytes()
    document = read_report(signed)
    assert check_report(document, derivation) is None
    tampered = copy.deepcopy(document)
    change(tampered)
    problem = check_report(tampered, derivation)
    assert problem is not None
    assert named in problem
    assert signed.read_bytes() == original  # the verifier changed nothing


def test_a_tampered_report_file_fails_verification_and_the_ledger_is_untouched(
    month: tuple[Path, MonthTruth], signed: Path, tmp_path: Path
) -> None:
    directory, _ = month
    blocks = directory / "nodes" / "peer0.cityhc.example.com" / "ledgers" / "alliance" / "blocks"
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in blocks.iterdir()}
    document = read_report(signed)
    _figure(document)
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(document), encoding="utf-8")
    verdict = verify_report(tampered, directory)
    assert verdict.problem is not None
    assert "the ledger gives" in verdict.problem
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in blocks.iterdir()}
    assert after == before


def test_a_report_signed_by_a_hospital_user_is_refused(
    month: tuple[Path, MonthTruth], signed: Path, derivation: Derivation
) -> None:
    layout = NetworkLayout.load(month[0])
    doctor = load_signer(layout.user_msp_dir(TERTIARY_A, "User1"), TERTIARY_A)
    forged = sign_report(read_report(signed)["report"], doctor, NOW)
    problem = check_report(forged, derivation)
    assert problem is not None
    assert "TertiaryAMSP, a tertiary organisation" in problem


@pytest.mark.parametrize(
    ("user", "org"),
    [
        pytest.param("User1", "TertiaryHospitalA", id="a tertiary hospital's doctor may not make a report"),
        pytest.param("Clerk1", "SecondaryHospitalB", id="a secondary hospital's clerk may not make a report"),
    ],
)  # fmt: skip
def test_only_a_commission_makes_a_report(
    month: tuple[Path, MonthTruth], user: str, org: str
) -> None:
    with pytest.raises(PermissionDenied, match="signed by a health commission"):
        make_report(month[0], PERIOD, user, org, NOW)


@pytest.mark.parametrize(
    ("content", "named"),
    [
        pytest.param(b"\x00\xff not json", "not JSON", id="bytes that are not JSON are refused"),
        pytest.param(b"[]", "report, signer and signature", id="a JSON array is refused"),
        pytest.param(json.dumps({"report": {"schema": "x"}, "signer": {}, "signature": ""}).encode(), "schema", id="another schema is refused"),
        pytest.param(b'{"report": ' * 100_000, "not JSON", id="deeply nested input is refused"),
    ],
)  # fmt: skip
def test_a_malformed_report_file_is_refused(tmp_path: Path, content: bytes, named: str) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(content)
    with pytest.raises(InvalidArgument, match=named):
        read_report(path)
    assert path.read_bytes() == content


def test_the_csv_has_one_row_per_figure_with_its_sources(signed: Path) -> None:
    document = read_report(signed)
    lines = csv_bytes(document).decode("utf-8-sig").splitlines()
    assert lines[0] == "indicator,hospital,period,value,unit,sources"
    assert len(lines) == 1 + len(document["report"]["figures"])
    first = document["report"]["figures"][0]
    assert lines[1].endswith(" ".join(s["txId"] for s in first["sources"]))


def test_the_pdf_is_a_pdf_with_chinese_text_and_charts(signed: Path) -> None:
    document = read_report(signed)
    pdf = pdf_bytes(document, report_digest(document))
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert b"/STSong-Light" in pdf  # the CJK font the headings are set in
    assert pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") >= 2
    assert len(pdf) > 5_000
