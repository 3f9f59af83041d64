"""`medalliance referral ...`: applications (上报申请), their review, and two-way referrals.

Applications live in the `report` contract (a hospital's doctor applies, its supervising
regulator's reviewer decides), referrals in the `referral` contract (the origin's doctor refers,
the target's doctor accepts, rejects or completes). The contracts check roles and organisations
from the caller's certificate; these commands only name the caller with `--as`. No clinical text
is an argument (docs/privacy.md §5): reasons are codes, and notes, the reason for a referral and
the outcome are sealed records (`privacy share`) named by their ids.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from medalliance.alliance.referral import REJECTION_REASONS
from medalliance.alliance.report import REVIEW_REASONS
from medalliance.cli import referral_hold_cmd, referral_package_cmd
from medalliance.cli.alliance_cmd import (
    As,
    Dir,
    exactly_one,
    record_table,
    rows_table,
    session,
    show_committed,
    show_result,
)

app = typer.Typer(
    help="Apply for, review and carry out two-way referrals (report and referral contracts).",
    no_args_is_help=True,
)
app.command("package")(referral_package_cmd.package)
app.command("feedback")(referral_package_cmd.feedback)
app.command("hold")(referral_hold_cmd.hold)
app.command("cancel-hold")(referral_hold_cmd.cancel_hold)
app.command("no-show")(referral_hold_cmd.no_show)
app.command("sweep-holds")(referral_hold_cmd.sweep)


class Direction(StrEnum):
    UP = "UP"
    DOWN = "DOWN"


class Side(StrEnum):
    incoming = "incoming"
    outgoing = "outgoing"


ReferralId = Annotated[str, typer.Argument(help="The referral id.", show_default=False)]
ApplicationId = Annotated[str, typer.Argument(help="The application id.", show_default=False)]
VisitNo = Annotated[str, typer.Argument(help="The visit number (就诊号).", show_default=False)]
Visit = Annotated[str, typer.Option("--visit", help="The visit number.", show_default=False)]
To = Annotated[
    str, typer.Option("--to", help="The target hospital (name or MSP id).", show_default=False)
]
Note = Annotated[
    str,
    typer.Option(
        "--note",
        help="A sealed note's record id (`privacy share`), shared with the origin hospital and "
        "its regulator; needed with reason code OTHER.",
    ),
]


@app.command("apply")
def apply(
    application_id: ApplicationId,
    as_: As,
    visit: Visit,
    to: To,
    summary: Annotated[
        str,
        typer.Option(
            "--summary",
            help="The clinical summary's record id (`privacy share`), shared with your "
            "regulator; the reason for the referral is written in it, never on the ledger.",
            show_default=False,
        ),
    ],
    directory: Dir = Path("."),
) -> None:
    """Apply to your supervising regulator to refer a patient (a doctor of the hospital
    holding the visit).

    Example: medalliance referral apply APP-1 --visit V-1001 --to TertiaryHospitalB --summary R-1 --as User1@SecondaryHospitalA -d demo
    """
    with session(directory, as_) as s:
        done = s.submit("report", "SubmitApplication", application_id, visit, s.msp_id(to), summary)
    show_committed(
        done,
        lambda a: f"application {a['applicationId']} submitted to {a['regulator']}: {a['status']}",
    )


@app.command("review")
def review(
    application_id: ApplicationId,
    as_: As,
    approve: Annotated[bool, typer.Option("--approve", help="Approve it.")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Reject it.")] = False,
    reason_code: Annotated[
        str,
        typer.Option("--reason-code", help=f"Why it is rejected: {', '.join(REVIEW_REASONS)}."),
    ] = "",
    note: Annotated[
        str,
        typer.Option(
            "--note",
            help="A sealed note's record id (`privacy share`), shared with the applicant "
            "hospital; needed with reason code OTHER.",
        ),
    ] = "",
    directory: Dir = Path("."),
) -> None:
    """Approve or reject an application (a reviewer of the hospital's supervising regulator).

    Example: medalliance referral review APP-1 --reject --reason-code TARGET_NO_CAPACITY --note R-3 --as Reviewer1@DistrictHC -d demo
    """
    flag = exactly_one({"--approve": approve, "--reject": reject})
    decision = "APPROVED" if flag == "--approve" else "REJECTED"
    with session(directory, as_) as s:
        done = s.submit("report", "ReviewApplication", application_id, decision, reason_code, note)
    show_committed(done, lambda a: f"application {a['applicationId']} {a['status']}")


@app.command("refer")
def refer(
    referral_id: ReferralId,
    as_: As,
    visit: Visit,
    to: To,
    direction: Annotated[
        Direction,
        typer.Option("--direction", help="UP or DOWN.", case_sensitive=False, show_default=False),
    ],
    clinical: Annotated[
        str,
        typer.Option(
            "--clinical",
            help="The clinical package's record id, shared with the target.",
            show_default=False,
        ),
    ],
    application: Annotated[
        str,
        typer.Option(
            "--application", help="The approved application (UP always needs one).", metavar="ID"
        ),
    ] = "",
    hold_slot: Annotated[
        str,
        typer.Option(
            "--hold-slot",
            help="Hold this slot of the target's resource with the referral (both or neither).",
            metavar="RESOURCE:SLOT",
        ),
    ] = "",
    directory: Dir = Path("."),
) -> None:
    """Refer a patient from your hospital to another (a doctor); the visit moves to the target.

    Example: medalliance referral refer REF-1 --visit V-1001 --to TertiaryHospitalB --direction UP --clinical R-1 --application APP-1 --hold-slot CT-1:2026-12-01T09:00 --as User1@SecondaryHospitalA -d demo
    """
    held = referral_hold_cmd.parse_hold_slot(hold_slot) if hold_slot else ()
    with session(directory, as_) as s:
        done = s.submit(
            "referral", "ReferWithHold" if held else "Refer", referral_id, application, visit,
            s.caller.msp_id, s.msp_id(to), direction.value, clinical, *held,
        )  # fmt: skip
    show_committed(
        done,
        lambda r: (
            f"referral {r['referralId']} {r['direction']} {r['fromHospital']} → "
            f"{r['toHospital']}: {r['status']}"
        ),
    )


@app.command("accept")
def accept(referral_id: ReferralId, as_: As, directory: Dir = Path(".")) -> None:
    """Accept a referral to your hospital (a doctor of the target).

    Example: medalliance referral accept REF-1 --as User1@TertiaryHospitalB -d demo
    """
    with session(directory, as_) as s:
        done = s.submit("referral", "AcceptReferral", referral_id)
    show_committed(done, _status_line)


@app.command("reject")
def reject(
    referral_id: ReferralId,
    as_: As,
    reason_code: Annotated[
        str,
        typer.Option(
            "--reason-code", help=f"Why: {', '.join(REJECTION_REASONS)}.", show_default=False
        ),
    ],
    note: Note = "",
    directory: Dir = Path("."),
) -> None:
    """Refuse a referral to your hospital; the patient returns to the origin hospital.

    Example: medalliance referral reject REF-1 --reason-code NO_BED --as User1@TertiaryHospitalB -d demo
    """
    with session(directory, as_) as s:
        done = s.submit("referral", "RejectReferral", referral_id, reason_code, note)
    show_committed(done, _status_line)


@app.command("complete")
def complete(
    referral_id: ReferralId,
    as_: As,
    feedback: Annotated[
        str,
        typer.Option(
            "--feedback",
            help="The sealed feedback/discharge document's record id (`privacy share`), shared "
            "with the origin hospital and its regulator: the outcome is written in it.",
            show_default=False,
        ),
    ],
    directory: Dir = Path("."),
) -> None:
    """Complete an accepted referral; the hospitals' benefit-sharing agreement settles it.

    Example: medalliance referral complete REF-1 --feedback R-2 --as User1@TertiaryHospitalB -d demo
    """
    with session(directory, as_) as s:
        done = s.submit("referral", "CompleteReferral", referral_id, feedback)
    show_committed(done, _completed_line)


@app.command("show")
def show(referral_id: ReferralId, as_: As, directory: Dir = Path(".")) -> None:
    """A referral, for its two hospitals and their regulators.

    Example: medalliance referral show REF-1 --as User1@TertiaryHospitalB -d demo
    """
    with session(directory, as_) as s:
        referral = s.evaluate("referral", "GetReferral", referral_id)
    show_result(referral, lambda r: record_table(f"referral {referral_id}", _flat(r)))


@app.command("history")
def history(visit_no: VisitNo, as_: As, directory: Dir = Path(".")) -> None:
    """Every referral of a visit you may see, oldest first, with its status trail.

    Example: medalliance referral history V-1001 --as Auditor1@CityHC -d demo
    """
    with session(directory, as_) as s:
        found = s.evaluate("referral", "ReferralHistory", visit_no)
    show_result(
        found,
        lambda rows: rows_table(
            f"referrals of visit {visit_no}",
            ("referral", "direction", "from", "to", "status trail"),
            [
                (r["referralId"], r["direction"], r["fromHospital"], r["toHospital"], _trail(r))
                for r in rows
            ],
            f"no referrals of visit {visit_no}",
        ),
    )


@app.command("list")
def list_referrals(
    as_: As,
    hospital: Annotated[
        str, typer.Option("--hospital", help="The hospital (name or MSP id).", show_default=False)
    ],
    side: Annotated[
        Side | None, typer.Option("--side", help="incoming or outgoing (default: both).")
    ] = None,
    status: Annotated[
        str, typer.Option("--status", help="Only this status, e.g. REFERRED.", metavar="S")
    ] = "",
    directory: Dir = Path("."),
) -> None:
    """A hospital's referrals (for the hospital and its regulators).

    Example: medalliance referral list --hospital TertiaryHospitalB --side incoming --status REFERRED --as User1@TertiaryHospitalB -d demo
    """
    sides = [side.value] if side else [s.value for s in Side]
    found: list[Any] = []
    with session(directory, as_) as s:
        msp_id = s.msp_id(hospital)
        for one in sides:
            rows = s.evaluate("referral", "ReferralsByHospital", msp_id, one, status.upper())
            found.extend({"side": one, **r} for r in rows)
    show_result(
        found,
        lambda rows: rows_table(
            f"referrals of {msp_id}",
            ("referral", "side", "visit", "direction", "from", "to", "status"),
            [
                (
                    r["referralId"],
                    r["side"],
                    r["visitNo"],
                    r["direction"],
                    r["fromHospital"],
                    r["toHospital"],
                    r["status"],
                )
                for r in rows
            ],
            f"no referrals of {msp_id}",
        ),
    )


@app.command("applications")
def applications(visit_no: VisitNo, as_: As, directory: Dir = Path(".")) -> None:
    """A visit's referral applications you may see, oldest first.

    Example: medalliance referral applications V-1001 --as Reviewer1@DistrictHC -d demo
    """
    with session(directory, as_) as s:
        found = s.evaluate("report", "ApplicationsForVisit", visit_no)
    show_result(
        found,
        lambda rows: rows_table(
            f"applications of visit {visit_no}",
            ("application", "from", "to", "regulator", "status", "reason code"),
            [
                (
                    a["applicationId"],
                    a["hospital"],
                    a["targetHospital"],
                    a["regulator"],
                    a["status"],
                    a.get("reasonCode", ""),
                )
                for a in rows
            ],
            f"no applications for visit {visit_no}",
        ),
    )


@app.command("downward-rule")
def downward_rule(
    as_: As,
    require_approval: Annotated[
        bool,
        typer.Option("--require-approval", help="Downward referrals need an application."),
    ] = False,
    no_approval: Annotated[
        bool, typer.Option("--no-approval", help="Downward referrals need none.")
    ] = False,
    directory: Dir = Path("."),
) -> None:
    """Set whether your hospitals' downward referrals need an approved application (a
    regulator's reviewer; upward ones always do).

    Example: medalliance referral downward-rule --require-approval --as Reviewer1@DistrictHC -d demo
    """
    flag = exactly_one({"--require-approval": require_approval, "--no-approval": no_approval})
    rule = "APPROVAL_REQUIRED" if flag == "--require-approval" else "NO_APPROVAL"
    with session(directory, as_) as s:
        done = s.submit("report", "SetDownwardRule", rule)
    show_committed(done, lambda r: f"downward referral rule of {r['regulator']}: {r['rule']}")


def _status_line(referral: dict[str, Any]) -> str:
    return f"referral {referral['referralId']}: {referral['status']}"


def _completed_line(referral: dict[str, Any]) -> str:
    settlement = referral.get("settlement") or {}
    if not settlement.get("executed"):
        reason = settlement.get("reason", "no settlement")
        return f"{_status_line(referral)}; not settled: {reason}"
    return (
        f"{_status_line(referral)}; settled under {settlement['agreementId']}: "
        f"{settlement['payer']} pays {settlement['payee']} "
        f"{settlement['amountCents'] / 100:.2f} for {settlement['period']}"
    )


def _trail(referral: dict[str, Any]) -> str:
    return " → ".join(step["status"] for step in referral["history"])


def _flat(referral: dict[str, Any]) -> dict[str, Any]:
    """A referral for display: its history as the status trail."""
    return {**{k: v for k, v in referral.items() if k != "history"}, "history": _trail(referral)}
