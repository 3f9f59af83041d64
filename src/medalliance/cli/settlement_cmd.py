"""`medalliance settlement ...`: benefit-sharing agreements (利益分配) between two hospitals.

A hospital's clerk proposes terms to a partner, whose clerk accepts; completed referrals between
the two are then settled by the `settlement` contract, and statements and balances sum them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from medalliance.cli.alliance_cmd import (
    As,
    Dir,
    money,
    read_json_argument,
    session,
    show_committed,
    show_result,
)

app = typer.Typer(
    help="Agree on and settle benefit sharing between hospitals (settlement contract).",
    no_args_is_help=True,
)

AgreementId = Annotated[str, typer.Argument(help="The agreement id.", show_default=False)]
Period = Annotated[
    str, typer.Option("--period", help="The month, YYYY-MM.", metavar="P", show_default=False)
]


@app.command("propose")
def propose(
    agreement_id: AgreementId,
    as_: As,
    partner: Annotated[
        str,
        typer.Option("--partner", help="The other hospital (name or MSP id).", show_default=False),
    ],
    terms: Annotated[
        str,
        typer.Option(
            "--terms",
            help="Per direction, amount and payer, inline or @FILE, e.g. "
            '\'{"UP": {"amountCents": 5000, "payer": "target"}}\'.',
            metavar="JSON_OR_@FILE",
            show_default=False,
        ),
    ],
    directory: Dir = Path("."),
) -> None:
    """Propose an agreement to a partner hospital (a clerk); it takes effect when accepted.

    Example: medalliance settlement propose AG-1 --partner TertiaryHospitalB --terms '{"UP": {"amountCents": 5000, "payer": "target"}}' --as Clerk1@SecondaryHospitalA -d demo
    """
    text = read_json_argument(terms, "--terms")
    with session(directory, as_) as s:
        done = s.submit("settlement", "ProposeAgreement", agreement_id, s.msp_id(partner), text)
    show_committed(done, _agreement_line)


@app.command("accept")
def accept(agreement_id: AgreementId, as_: As, directory: Dir = Path(".")) -> None:
    """Accept an agreement proposed to your hospital (a clerk of the partner).

    Example: medalliance settlement accept AG-1 --as Clerk1@TertiaryHospitalB -d demo
    """
    with session(directory, as_) as s:
        done = s.submit("settlement", "AcceptAgreement", agreement_id)
    show_committed(done, _agreement_line)


@app.command("terminate")
def terminate(agreement_id: AgreementId, as_: As, directory: Dir = Path(".")) -> None:
    """End an agreement of your hospital; settled entries stay.

    Example: medalliance settlement terminate AG-1 --as Clerk1@SecondaryHospitalA -d demo
    """
    with session(directory, as_) as s:
        done = s.submit("settlement", "TerminateAgreement", agreement_id)
    show_committed(done, _agreement_line)


@app.command("statement")
def statement(
    agreement_id: AgreementId, as_: As, period: Period, directory: Dir = Path(".")
) -> None:
    """An agreement's settled referrals in a month and each hospital's net.

    Example: medalliance settlement statement AG-1 --period 2026-11 --as Clerk1@TertiaryHospitalB -d demo
    """
    with session(directory, as_) as s:
        found = s.evaluate("settlement", "Statement", agreement_id, period)
    show_result(found, _statement)


@app.command("balance")
def balance(
    as_: As,
    hospital: Annotated[
        str, typer.Option("--hospital", help="The hospital (name or MSP id).", show_default=False)
    ],
    period: Period,
    directory: Dir = Path("."),
) -> None:
    """A hospital's receivable, payable and net over all its agreements in a month.

    Example: medalliance settlement balance --hospital TertiaryHospitalB --period 2026-11 --as Clerk1@TertiaryHospitalB -d demo
    """
    with session(directory, as_) as s:
        found = s.evaluate("settlement", "Balance", s.msp_id(hospital), period)
    show_result(
        found,
        lambda b: (
            f"{b['hospital']}, {b['period']}: receivable {money(b['receivableCents'])}, "
            f"payable {money(b['payableCents'])}, net {money(b['netCents'])}"
        ),
    )


def _agreement_line(agreement: dict[str, Any]) -> str:
    return (
        f"agreement {agreement['agreementId']} between {' and '.join(agreement['hospitals'])}: "
        f"{agreement['status']}"
    )


def _statement(found: dict[str, Any]) -> Table:
    table = Table(
        "referral", "direction", "payer", "payee", "amount", "at",
        title=f"agreement {found['agreementId']}, {found['period']}", title_justify="left",
        caption="net: " + ", ".join(f"{h} {money(c)}" for h, c in found["netCents"].items()),
    )  # fmt: skip
    for e in found["entries"]:
        table.add_row(
            e["referralId"], e["direction"], e["payer"], e["payee"], money(e["amountCents"]),
            e["at"],
        )  # fmt: skip
    return table
