"""`medalliance consultation ...`: remote consultation (远程会诊) between two hospitals.

The requesting doctor asks another hospital's department about a visit and grants it the visit's
records for the consultation's duration; the consultant accepts or declines, schedules and
returns a signed, sealed report; the requester verifies it and closes the consultation (grants
revoked, settlement charged). docs/alliance.md, "consultation".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from medalliance.app import consultations
from medalliance.app.consultations import ConsultationRequest
from medalliance.cli.alliance_cmd import (
    As,
    Dir,
    read_json_argument,
    record_table,
    rows_table,
    session,
    show_committed,
    show_result,
)

app = typer.Typer(
    help="Request, answer and close remote consultations (consultation contract).",
    no_args_is_help=True,
)

ConsultationId = Annotated[str, typer.Argument(help="The consultation id.", show_default=False)]


@app.command("request")
def request(
    consultation_id: ConsultationId,
    as_: As,
    visit: Annotated[
        str, typer.Option("--visit", help="The visit number (就诊号).", show_default=False)
    ],
    consultant: Annotated[
        str,
        typer.Option(
            "--consultant", help="The consultant hospital (name or MSP id).", show_default=False
        ),
    ],
    record: Annotated[
        list[str],
        typer.Option(
            "--record",
            help="A record of the visit to grant (repeat for several).",
            show_default=False,
        ),
    ],
    question: Annotated[
        str,
        typer.Option(
            "--question",
            help="The question, inline or @FILE (only its digest goes on the chain).",
            metavar="TEXT_OR_@FILE",
            show_default=False,
        ),
    ],
    department: Annotated[
        str, typer.Option("--department", help="The consultant's department code.")
    ] = "03",
    hours: Annotated[
        int, typer.Option("--hours", min=1, max=24 * 30, help="Hours until the deadline.")
    ] = 48,
    directory: Dir = Path("."),
) -> None:
    """Ask another hospital about a visit of yours, granting it the named records until the end.

    Example: medalliance consultation request C-1 --visit V-1 --consultant TertiaryHospitalA --record R-1 --question 'Is surgery indicated?' --as User1@SecondaryHospitalA -d demo
    """  # fmt: skip
    with session(directory, as_) as s:
        draft = ConsultationRequest(
            consultation_id, visit, consultant, department, tuple(record),
            consultations.deadline_in(hours), question=read_json_argument(question, "--question"),
        )  # fmt: skip
        done = consultations.request(s.network, s.caller.msp_id, s.caller.user, draft)
    show_committed(done, _line)


@app.command("accept")
def accept(consultation_id: ConsultationId, as_: As, directory: Dir = Path(".")) -> None:
    """Accept a consultation asked of your hospital (a doctor of the consultant).

    Example: medalliance consultation accept C-1 --as User1@TertiaryHospitalA -d demo
    """
    _submit(directory, as_, "AcceptConsultation", consultation_id)


@app.command("decline")
def decline(
    consultation_id: ConsultationId,
    as_: As,
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            help="NO_CAPACITY, OUT_OF_SCOPE, INSUFFICIENT_DATA or OTHER.",
            show_default=False,
        ),
    ],
    directory: Dir = Path("."),
) -> None:
    """Decline a consultation with a coded reason; its grants are revoked.

    Example: medalliance consultation decline C-1 --reason NO_CAPACITY --as User1@TertiaryHospitalA -d demo
    """  # fmt: skip
    _submit(directory, as_, "DeclineConsultation", consultation_id, reason)


@app.command("schedule")
def schedule(
    consultation_id: ConsultationId,
    as_: As,
    at: Annotated[
        str, typer.Option("--at", help="When, ISO 8601 with a zone.", show_default=False)
    ],
    directory: Dir = Path("."),
) -> None:
    """Schedule (or reschedule) an accepted consultation, by its deadline.

    Example: medalliance consultation schedule C-1 --at 2026-12-05T09:00:00Z --as User1@TertiaryHospitalA -d demo
    """  # fmt: skip
    _submit(directory, as_, "ScheduleConsultation", consultation_id, at)


@app.command("report")
def report(
    consultation_id: ConsultationId,
    as_: As,
    text: Annotated[
        str,
        typer.Option(
            "--text",
            help="The report, inline or @FILE.",
            metavar="TEXT_OR_@FILE",
            show_default=False,
        ),
    ],
    directory: Dir = Path("."),
) -> None:
    """Seal the report for the requester and the regulators, sign its digest and submit it.

    Example: medalliance consultation report C-1 --text @report.txt --as User1@TertiaryHospitalA -d demo
    """  # fmt: skip
    body = read_json_argument(text, "--text")
    with session(directory, as_) as s:
        done = consultations.submit_report(
            s.network, s.caller.msp_id, s.caller.user, consultation_id, body
        )
    show_committed(done, _line)


@app.command("close")
def close(consultation_id: ConsultationId, as_: As, directory: Dir = Path(".")) -> None:
    """Close a reported consultation (the requester): grants revoked, settlement charged.

    Example: medalliance consultation close C-1 --as User1@SecondaryHospitalA -d demo
    """
    _submit(directory, as_, "CloseConsultation", consultation_id)


@app.command("expire")
def expire(consultation_id: ConsultationId, as_: As, directory: Dir = Path(".")) -> None:
    """End an open consultation past its deadline (a party or its regulator); grants revoked.

    Example: medalliance consultation expire C-1 --as User1@SecondaryHospitalA -d demo
    """
    _submit(directory, as_, "ExpireConsultation", consultation_id)


@app.command("show")
def show(
    consultation_id: ConsultationId,
    as_: As,
    open_report: Annotated[
        bool,
        typer.Option("--report", help="Open the report and verify the consultant's signature."),
    ] = False,
    directory: Dir = Path("."),
) -> None:
    """A consultation; with --report, its verified report (the access is logged).

    Example: medalliance consultation show C-1 --report --as User1@SecondaryHospitalA -d demo
    """  # fmt: skip
    with session(directory, as_) as s:
        found = consultations.get(s.network, s.caller.msp_id, s.caller.user, consultation_id)
        if open_report:
            verified = consultations.verify_report(
                s.network, s.caller.msp_id, s.caller.user, consultation_id
            )
            found = {**found, "report": verified.text, "reportVerified": True}
    show_result(found, lambda c: record_table(f"consultation {consultation_id}", c))


@app.command("list")
def list_(
    as_: As,
    hospital: Annotated[
        str | None,
        typer.Option("--hospital", help="The hospital (default: your own).", show_default=False),
    ] = None,
    directory: Dir = Path("."),
) -> None:
    """The consultations a hospital requested or was asked for, newest first.

    Example: medalliance consultation list --as User1@TertiaryHospitalA -d demo
    """  # fmt: skip
    with session(directory, as_) as s:
        found = consultations.listed(
            s.network, s.caller.msp_id, s.caller.user, hospital or s.caller.msp_id
        )
    show_result(found, _table)


def _submit(directory: Path, as_: str, function: str, *args: str) -> None:
    with session(directory, as_) as s:
        done = s.submit(consultations.CONTRACT, function, *args)
    show_committed(done, _line)


def _line(c: dict[str, Any]) -> str:
    settled = c.get("settlement")
    note = ""
    if settled is not None:
        note = (
            f", settled {settled['amountCents'] / 100:.2f} by {settled['payer']}"
            if settled.get("executed")
            else f", not settled: {settled.get('reason', '')}"
        )
    return (
        f"consultation {c['consultationId']} {c['status']} ({c['requester']} → "
        f"{c['consultant']}){note}"
    )


def _table(found: list[dict[str, Any]]) -> Any:
    rows = [
        (c["consultationId"], c["visitNo"], c["requester"], c["consultant"], c["status"],
         c["deadline"], json.dumps(c.get("granted", [])))
        for c in found
    ]  # fmt: skip
    return rows_table(
        "consultations", ("id", "visit", "requester", "consultant", "status", "deadline", "granted"),
        rows, "no consultations",
    )  # fmt: skip
