"""`medalliance report submit|aggregate|show|list`: monthly statistics up the regulators.

A hospital's clerk submits counts (never patient data) to its supervising regulator; a
regulator's reviewer sums what was addressed to it and reports to its parent (the `reporting`
contract).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from medalliance.cli.alliance_cmd import (
    As,
    Dir,
    exactly_one,
    read_json_argument,
    record_table,
    rows_table,
    session,
    show_committed,
    show_result,
)
from medalliance.errors import InvalidArgument

app = typer.Typer(
    help="Submit and aggregate periodic statistics (reporting contract).", no_args_is_help=True
)

ReportId = Annotated[str, typer.Argument(help="The report id.", show_default=False)]
Period = Annotated[
    str, typer.Option("--period", help="The month, YYYY-MM.", metavar="YYYY-MM", show_default=False)
]


@app.command("submit")
def submit(
    report_id: ReportId,
    as_: As,
    period: Period,
    metrics: Annotated[
        str,
        typer.Option(
            "--metrics",
            help="Counts as a JSON object, inline or @FILE, e.g. '{\"referralsOut\": 12}'.",
            metavar="JSON_OR_@FILE",
            show_default=False,
        ),
    ],
    directory: Dir = Path("."),
) -> None:
    """Report your hospital's counts for a month to its supervising regulator (a clerk).

    Example: medalliance report submit RPT-A-2026-11 --period 2026-11 --metrics '{"referralsOut": 12}' --as Clerk1@SecondaryHospitalA -d demo
    """
    text = read_json_argument(metrics, "--metrics")
    with session(directory, as_) as s:
        done = s.submit("reporting", "SubmitReport", report_id, period, text)
    show_committed(
        done, lambda r: f"report {r['reportId']} for {r['period']} submitted to {r['recipient']}"
    )


@app.command("aggregate")
def aggregate(report_id: ReportId, as_: As, period: Period, directory: Dir = Path(".")) -> None:
    """Sum the month's reports addressed to your regulator and report to its parent (a
    reviewer).

    Example: medalliance report aggregate RPT-D-2026-11 --period 2026-11 --as Reviewer1@DistrictHC -d demo
    """
    with session(directory, as_) as s:
        done = s.submit("reporting", "AggregateReports", report_id, period)
    show_committed(
        done,
        lambda r: (
            f"report {r['reportId']} sums {', '.join(r['sources'])} for {r['recipient']}: "
            f"{_metrics(r['metrics'])}"
        ),
    )


@app.command("show")
def show(report_id: ReportId, as_: As, directory: Dir = Path(".")) -> None:
    """A report, for its submitter, its recipient and the regulators above.

    Example: medalliance report show RPT-A-2026-11 --as Reviewer1@DistrictHC -d demo
    """
    with session(directory, as_) as s:
        report = s.evaluate("reporting", "GetReport", report_id)
    show_result(report, lambda r: record_table(f"report {report_id}", r))


@app.command("list")
def list_reports(
    as_: As,
    to: Annotated[
        str | None,
        typer.Option("--to", help="Reports addressed to this regulator (needs --period)."),
    ] = None,
    of: Annotated[str | None, typer.Option("--of", help="Reports this organisation made.")] = None,
    period: Annotated[str, typer.Option("--period", help="The month, YYYY-MM.", metavar="P")] = "",
    directory: Dir = Path("."),
) -> None:
    """Reports addressed to a regulator in a month, or an organisation's reports.

    Example: medalliance report list --to DistrictHC --period 2026-11 --as Reviewer1@DistrictHC -d demo
    """
    flag = exactly_one({"--to": to is not None, "--of": of is not None})
    if flag == "--to" and not period:
        raise InvalidArgument("report list --to needs --period YYYY-MM")
    with session(directory, as_) as s:
        if to is not None:
            found = s.evaluate("reporting", "ReportsTo", s.msp_id(to), period)
        else:
            assert of is not None  # exactly_one
            found = s.evaluate("reporting", "ReportsOf", s.msp_id(of), period)
    show_result(found, _table)


def _table(rows: list[Any]) -> Any:
    return rows_table(
        "reports",
        ("report", "period", "submitter", "to", "level", "metrics"),
        [
            (
                r["reportId"],
                r["period"],
                r["submitter"],
                r["recipient"],
                r["level"],
                _metrics(r["metrics"]),
            )
            for r in rows
        ],
        "no reports",
    )


def _metrics(metrics: dict[str, int]) -> str:
    return ", ".join(f"{name}={value}" for name, value in metrics.items())
