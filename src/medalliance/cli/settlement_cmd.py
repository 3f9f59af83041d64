"""`medalliance settlement ...`: benefit-sharing agreements (利益分配) between two hospitals.

A hospital's clerk proposes terms to a partner, whose clerk accepts; completed referrals between
the two are then settled by the `settlement` contract, and statements and balances sum them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from medalliance.alliance.settlement_ledger import entry_subject
from medalliance.alliance.settlement_terms import parse_terms, terms_lines
from medalliance.cli.alliance_cmd import (
    As,
    Dir,
    money,
    read_json_argument,
    session,
    show_committed,
    show_result,
)
from medalliance.errors import InvalidArgument

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


@app.command("terms")
def terms(
    as_: As,
    agreement_id: Annotated[
        str | None,
        typer.Argument(help="The agreement whose terms to show.", show_default=False),
    ] = None,
    check: Annotated[
        str | None,
        typer.Option(
            "--check",
            help="Validate terms (inline or @FILE) as the contract would, without submitting.",
            metavar="JSON_OR_@FILE",
            show_default=False,
        ),
    ] = None,
    directory: Dir = Path("."),
) -> None:
    """Show an agreement's terms, or check terms (v1 flat or v2) before proposing them.

    Example: medalliance settlement terms AG-1 --as Clerk1@TertiaryHospitalB -d demo
    Example: medalliance settlement terms --check @terms.json --as Clerk1@SecondaryHospitalA
    """
    if check is not None:
        parsed = parse_terms(read_json_argument(check, "--check"))
        show_result(parsed, lambda t: "terms are valid:\n" + "\n".join(terms_lines(t)))
        return
    if agreement_id is None:
        raise InvalidArgument("name an agreement, or --check terms")
    with session(directory, as_) as s:
        found = s.evaluate("settlement", "GetAgreement", agreement_id)
    show_result(found, lambda a: "\n".join([_agreement_line(a), *terms_lines(a["terms"])]))


@app.command("declare")
def declare(
    agreement_id: AgreementId,
    as_: As,
    referral: Annotated[
        str, typer.Option("--referral", help="The completed referral.", show_default=False)
    ],
    amount_cents: Annotated[
        str,
        typer.Option(
            "--amount-cents",
            help="The declared amount (e.g. the treatment's settled cost) in whole cents.",
            show_default=False,
        ),
    ],
    directory: Dir = Path("."),
) -> None:
    """Declare a completed referral's amount; the agreement's share of it becomes an entry.

    The paying hospital's clerk declares (e.g. the treatment's settled cost), once per referral.

    Example: medalliance settlement declare AG-1 --referral REF-1 --amount-cents 1234567 --as Clerk1@TertiaryHospitalB -d demo
    """
    with session(directory, as_) as s:
        done = s.submit("settlement", "DeclareAmount", agreement_id, referral, amount_cents)
    show_committed(done, _entry_line)


@app.command("sign")
def sign(agreement_id: AgreementId, as_: As, period: Period, directory: Dir = Path(".")) -> None:
    """Sign a month's statement for your hospital; signed by both, the month is closed.

    A closed month takes no more entries; a signature counts only for the statement signed.

    Example: medalliance settlement sign AG-1 --period 2026-11 --as Clerk1@SecondaryHospitalA -d demo
    """
    with session(directory, as_) as s:
        done = s.submit("settlement", "SignStatement", agreement_id, period)
    show_committed(
        done,
        lambda st: (
            f"statement {st['agreementId']} {st['period']} signed by "
            f"{', '.join(sorted(st['signatures']))} (digest {st['digest'][:16]}): "
            + ("CLOSED" if st["closed"] else "open")
        ),
    )


@app.command("statement")
def statement(
    agreement_id: AgreementId, as_: As, period: Period, directory: Dir = Path(".")
) -> None:
    """An agreement's entries in a month (transaction, rule), totals, digest and signatures.

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


def _entry_line(entry: dict[str, Any]) -> str:
    capped = f" (capped from {money(entry['uncappedCents'])})" if "uncappedCents" in entry else ""
    return (
        f"{entry['rule']} entry for {entry_subject(entry)}: {entry['payer']} pays "
        f"{entry['payee']} {money(entry['amountCents'])}{capped}"
    )


def _statement(found: dict[str, Any]) -> Table:
    signed = ", ".join(sorted(found["signatures"])) or "nobody"
    table = Table(
        "for", "rule", "payer", "payee", "amount", "at", "tx",
        title=f"agreement {found['agreementId']}, {found['period']}"
        + (" (CLOSED)" if found["closed"] else ""),
        title_justify="left", caption_justify="left",
        caption="paid: " + ", ".join(f"{h} {money(c)}" for h, c in found["paidByPayerCents"].items())
        + "; net: " + ", ".join(f"{h} {money(c)}" for h, c in found["netCents"].items())
        + f"; digest {found['digest']}; signed by {signed}",
    )  # fmt: skip
    for e in found["entries"]:
        table.add_row(
            entry_subject(e), e["rule"], e["payer"], e["payee"], money(e["amountCents"]),
            e["at"], e["txId"],
        )  # fmt: skip
    return table
