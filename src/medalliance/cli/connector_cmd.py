"""`medalliance connector sync`: run a hospital's connector (chain → the hospital's database).

The connector (`medalliance.app.connector`) reads committed blocks from the organisation's own
peer, imports referrals addressed to the hospital (fetching and opening their clinical packages)
and follows the status of its referrals, exactly once across runs. A referral whose package has a
fault of its own is quarantined (`connector failures` lists them, `connector retry` tries one).
"""

from __future__ import annotations

from contextlib import closing, suppress
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel

from medalliance.app.connector import Connector, SyncReport
from medalliance.app.hospital_book import HospitalBook
from medalliance.app.hospital_store import open_store_of
from medalliance.app.pseudonyms import PseudonymClient, pseudonym_client
from medalliance.cli.alliance_cmd import (
    As,
    Dir,
    Session,
    ThroughBlock,
    last_block,
    one_pass_only,
    session,
)
from medalliance.cli.output import emit_json, output_state, stdout
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.node.config import HOSPITAL_TYPES

app = typer.Typer(
    help="Sync a hospital's own database from the chain (the hospital connector).",
    no_args_is_help=True,
)


class StatusChange(BaseModel):
    referral_id: str
    status: str


class SyncOutput(BaseModel):
    imported: list[str]  # incoming referrals written into the database
    noted: list[str]  # own outgoing referrals noted
    updated: list[StatusChange]
    quarantined: list[str]  # incoming referrals whose package was refused (`connector failures`)
    last_block: int  # the last block the connector has finished (-1: none yet)


class Failure(BaseModel):
    """A quarantined referral: the chain's ids and the reason, no patient data."""

    referral_id: str
    record_id: str
    tx_id: str
    block: int
    reason: str
    first_attempt: str
    last_attempt: str


class FailuresOutput(BaseModel):
    failures: list[Failure]


class RetryOutput(BaseModel):
    referral_id: str
    imported: bool


Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="The hospital's clinical store: a file path or postgresql://... (created if "
        "absent; default DIR/hospitals/<MSP>.db).",
        show_default=False,
    ),
]


@app.command("sync")
def sync(
    as_: As,
    db: Db = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep following new blocks until Ctrl-C.")
    ] = False,
    through_block: ThroughBlock = None,
    directory: Dir = Path("."),
) -> None:
    """Import the referrals to your hospital and follow its referrals' status, from the block
    after the last one the database has finished.

    Without --follow, one pass up to the current height: the connector reads through the last
    block your organisation's peer reports on its operations endpoint (`/status`, as `network
    status` does), so it stops exactly there rather than guessing from an idle stream; with
    --through-block N it first waits for your peer to commit block N. With
    --follow it keeps reading new blocks and prints one line per import or status change until
    Ctrl-C (under --json, the one document comes at the end). At a hospital, the pseudonym
    service checks that each clinical package is the referred patient's (cached in the store).
    A package at fault (malformed, not sealed for you, another patient's) is quarantined and the
    sync goes on; a peer that cannot be reached stops it (exit 3) where a later run resumes.

    Example: medalliance connector sync --db hospitals/TertiaryB.db --as User1@TertiaryHospitalB -d demo
    """
    one_pass_only(follow, through_block)
    with (
        session(directory, as_) as s,
        closing(open_store_of(s.network.layout, s.caller.msp_id, db)) as store,
        closing(_pseudonyms(s, store)) as pseudonyms,
    ):
        connector = Connector(s.network, s.caller.msp_id, s.caller.user, store, pseudonyms.client)
        if follow:
            report = _follow(connector, SyncReport(last_block=HospitalBook(store).last_block()))
        else:
            layout, msp_id = s.network.layout, s.caller.msp_id
            report = connector.sync(until=last_block(layout, msp_id, through_block))
    _show(report)
    if follow:
        raise typer.Exit(130)  # interrupted, as style.md §7 counts it


@app.command("failures")
def failures(as_: As, db: Db = None, directory: Dir = Path(".")) -> None:
    """List the quarantined referrals: referral, record, block, reason and attempt times (no
    patient data). Fix the cause, then `connector retry REF`.

    Example: medalliance connector failures --db hospitals/TertiaryB.db --as User1@TertiaryHospitalB -d demo
    """
    with (
        session(directory, as_) as s,
        closing(open_store_of(s.network.layout, s.caller.msp_id, db)) as store,
    ):
        entries = HospitalBook(store).quarantined()
    result = FailuresOutput(
        failures=[
            Failure(
                referral_id=e.referral_id,
                record_id=e.record_id,
                tx_id=e.tx_id,
                block=e.block,
                reason=e.reason,
                first_attempt=e.first_attempt,
                last_attempt=e.last_attempt,
            )
            for e in entries
        ]
    )
    if output_state.json:
        emit_json(result)
        return
    console = stdout()
    if not entries:
        console.print("no quarantined referrals")
    for f in result.failures:
        console.print(f"{f.referral_id}  block {f.block}  record {f.record_id}  {f.reason}")
        console.print(f"    first tried {f.first_attempt}, last tried {f.last_attempt}")


@app.command("retry")
def retry(
    referral: Annotated[str, typer.Argument(help="The quarantined referral's id.")],
    as_: As,
    db: Db = None,
    directory: Dir = Path("."),
) -> None:
    """Fetch, open and import one quarantined referral again. On success it leaves the
    quarantine; if its package is still at fault it stays, with this attempt's time, and the
    command exits 1 with the reason.

    Example: medalliance connector retry REF-1 --db hospitals/TertiaryB.db --as User1@TertiaryHospitalB -d demo
    """
    with (
        session(directory, as_) as s,
        closing(open_store_of(s.network.layout, s.caller.msp_id, db)) as store,
        closing(_pseudonyms(s, store)) as pseudonyms,
    ):
        connector = Connector(s.network, s.caller.msp_id, s.caller.user, store, pseudonyms.client)
        connector.retry(referral)
    if output_state.json:
        emit_json(RetryOutput(referral_id=referral, imported=True))
        return
    stdout().print(f"imported referral {referral}; it left the quarantine")


def _follow(connector: Connector, latest: SyncReport) -> SyncReport:
    """Sync forever, a line per change, until Ctrl-C; what was done by then (`latest` if
    no block came)."""
    printed = {"imported": 0, "noted": 0, "updated": 0, "quarantined": 0}

    def on_change(report: SyncReport) -> None:
        nonlocal latest
        latest = report
        if output_state.json:
            return
        console = stdout()
        for referral_id in report.imported[printed["imported"] :]:
            console.print(f"block {report.last_block}: imported referral {referral_id}")
        for referral_id in report.noted[printed["noted"] :]:
            console.print(f"block {report.last_block}: noted outgoing referral {referral_id}")
        for referral_id, status in report.updated[printed["updated"] :]:
            console.print(f"block {report.last_block}: referral {referral_id} is {status}")
        for referral_id in report.quarantined[printed["quarantined"] :]:
            console.print(f"block {report.last_block}: quarantined referral {referral_id}")
        printed.update(
            imported=len(report.imported),
            noted=len(report.noted),
            updated=len(report.updated),
            quarantined=len(report.quarantined),
        )

    # Ctrl-C is the way to stop following; every finished block is already stored.
    with suppress(KeyboardInterrupt):
        connector.sync(until=None, on_change=on_change)
    return latest


def _show(report: SyncReport) -> None:
    result = SyncOutput(
        imported=report.imported,
        noted=report.noted,
        updated=[StatusChange(referral_id=r, status=s) for r, s in report.updated],
        quarantined=report.quarantined,
        last_block=report.last_block,
    )
    if output_state.json:
        emit_json(result)
        return
    console = stdout()
    console.print(f"imported: {', '.join(result.imported) or 'nothing'}")
    if result.noted:
        console.print(f"noted outgoing: {', '.join(result.noted)}")
    changes = ", ".join(f"{c.referral_id} {c.status}" for c in result.updated)
    console.print(f"status changes: {changes or 'none'}")
    if result.quarantined:
        console.print(
            f"quarantined: {', '.join(result.quarantined)} (see `medalliance connector failures`)"
        )
    console.print(f"last block: {result.last_block}")


class _Pseudonyms:
    """A hospital's pseudonym client (None for a regulator, which registers no patient)."""

    def __init__(self, client: PseudonymClient | None) -> None:
        self.client = client

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def _pseudonyms(s: Session, store: ClinicalStore) -> _Pseudonyms:
    org = s.network.layout.config.organization(s.caller.msp_id)
    if org.type not in HOSPITAL_TYPES:
        return _Pseudonyms(None)
    return _Pseudonyms(pseudonym_client(s.network, s.caller.msp_id, s.caller.user, store))
