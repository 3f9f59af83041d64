"""`medalliance audit report | verify-report | generate-month`: the commission's signed report.

`register` adds the commands to the `audit` command group (cli/audit_cmd.py). Each parses its
options, calls one function of app/audit_report.py (or the month generator) and renders the
result; errors reach main.py's mapping (2 bad input, 1 a difference, 4 permission denied).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel

from medalliance.app.activity_generator import generate_month
from medalliance.app.audit_export import csv_bytes, pdf_bytes
from medalliance.app.audit_report import (
    make_report,
    report_digest,
    verify_report,
    write_atomically,
    write_report,
)
from medalliance.app.demo import default_config_path
from medalliance.cli.alliance_cmd import As, Dir, parse_as
from medalliance.cli.output import emit_json, output_state, stderr, stdout
from medalliance.node.embedded import utc_now


class Format(StrEnum):
    json = "json"
    csv = "csv"
    pdf = "pdf"


class ReportOutput(BaseModel):
    path: str
    format: str
    period: str
    figures: int
    facts: int
    signer: str
    fingerprint: str
    derivation_seconds: float


class VerifyReportOutput(BaseModel):
    ok: bool
    ledger: str
    period: str
    figures: int
    cited_transactions: int
    signer: str
    problem: str | None


class MonthOutput(BaseModel):
    data_dir: str
    period: str
    seed: int
    transactions: int
    referrals: int
    applications: int
    counts: dict[str, int]


Period = Annotated[
    str, typer.Option("--period", help="The month, YYYY-MM.", metavar="YYYY-MM", show_default=False)
]


def report(
    period: Period,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the report.")],
    as_: As,
    directory: Dir = Path("."),
    format_: Annotated[
        Format, typer.Option("--format", help="json: the signed report; csv, pdf: exports.")
    ] = Format.json,
) -> None:
    """Derive every indicator of a month from the commission's peer ledger, cite each figure's
    transactions and sign the report as a commission auditor or reviewer.

    Example: medalliance audit report --period 2026-11 -o report.json --dir demo --as Auditor1@DistrictHC
    """
    user, org = parse_as(as_)
    made = make_report(directory, period, user, org, utc_now())
    fingerprint = report_digest(made.document)
    match format_:
        case Format.json:
            write_report(made.document, output)
        case Format.csv:
            write_atomically(output, csv_bytes(made.document))
        case Format.pdf:
            write_atomically(output, pdf_bytes(made.document, fingerprint))
    out = ReportOutput(
        path=str(output), format=format_.value, period=period, figures=made.figures,
        facts=made.facts, signer=f"{user}@{made.document['signer']['mspId']}",
        fingerprint=fingerprint, derivation_seconds=round(made.seconds, 3),
    )  # fmt: skip
    if output_state.json:
        emit_json(out)
    else:
        stdout().print(
            f"report of {period}: {out.figures} figures from {out.facts} facts, signed by "
            f"{out.signer}, written to {output} ({format_.value}; fingerprint {fingerprint[:16]}…)"
        )


def verify_report_command(
    report_file: Annotated[Path, typer.Argument(help="The signed report (JSON).")],
    ledger: Annotated[
        Path, typer.Option("--ledger", help="A network folder or one node's ledger folder.")
    ],
) -> None:
    """Re-derive every figure of a signed report from the raw blocks, check every cited
    transaction is on the ledger and VALID, and check the commission's signature.

    Exits 0 when everything matches, 1 naming the first difference.

    Example: medalliance audit verify-report report.json --ledger demo
    """
    with stderr().status("verifying the ledger and re-deriving the report"):
        verdict = verify_report(report_file, ledger)
    out = VerifyReportOutput(
        ok=verdict.ok, ledger=str(verdict.ledger), period=verdict.period,
        figures=verdict.figures, cited_transactions=verdict.cited, signer=verdict.signer,
        problem=verdict.problem,
    )  # fmt: skip
    if output_state.json:
        emit_json(out)
    elif verdict.ok:
        stdout().print(
            f"[green]report verified[/green]: {out.figures} figures of {out.period} re-derived "
            f"from {out.ledger}, {out.cited_transactions} cited transactions VALID, signed by "
            f"{out.signer}"
        )
    else:
        stdout().print(f"[red]report does not match the ledger[/red]: {verdict.problem}")
    if not verdict.ok:
        raise typer.Exit(1)


def generate_month_command(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="A new folder for the network.")],
    period: Period = "2026-11",
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same month.")] = 14,
    episodes: Annotated[int, typer.Option("--episodes", help="Patients treated.")] = 160,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Network config (default: networks/demo-alliance.yaml)."),
    ] = None,
) -> None:
    """Create the demo alliance in a new folder and commit a seeded month of activity:
    referrals up and down, rejections, late reviews, a ping-pong patient, an unauthorised
    access attempt, shared results, settlements. Prints the ground truth's counts.

    Example: medalliance audit generate-month --data-dir month --period 2026-11 --seed 14
    """
    truth = generate_month(
        config or default_config_path(), data_dir, period=period, seed=seed, episodes=episodes,
        on_progress=lambda text: stderr().print(text),
    )  # fmt: skip
    counts = {f"{k}@{h or 'region'}": v for (k, h), v in sorted(truth.counts().items())}
    out = MonthOutput(
        data_dir=str(data_dir), period=period, seed=seed, transactions=len(truth.tx_ids),
        referrals=len(truth.referrals), applications=len(truth.applications), counts=counts,
    )  # fmt: skip
    if output_state.json:
        emit_json(out)
    else:
        stdout().print(
            f"{out.transactions} transactions in {period}: {out.referrals} referrals, "
            f"{out.applications} applications; the network is in {data_dir}"
        )


def register(app: typer.Typer) -> None:
    """Add the report commands to the `audit` group."""
    app.command("report")(report)
    app.command("verify-report")(verify_report_command)
    app.command("generate-month")(generate_month_command)
