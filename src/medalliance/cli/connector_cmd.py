"""`medalliance connector sync`: run a hospital's connector (chain → the hospital's database).

The connector (`medalliance.app.connector`) reads committed blocks from the organisation's own
peer, imports referrals addressed to the hospital (fetching and opening their clinical packages)
and follows the status of its referrals, exactly once across runs.
"""

from __future__ import annotations

from contextlib import closing, suppress
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel

from medalliance.app.connector import Connector, SyncReport
from medalliance.app.hospital_db import HospitalDatabase
from medalliance.app.pseudonyms import PseudonymClient, pseudonym_client
from medalliance.cli.alliance_cmd import CHANNEL, As, Dir, Session, session
from medalliance.cli.output import emit_json, output_state, stdout
from medalliance.errors import Unavailable
from medalliance.node import launcher
from medalliance.node.bootstrap import NetworkLayout
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
    last_block: int  # the last block the connector has finished (-1: none yet)


@app.command("sync")
def sync(
    as_: As,
    db: Annotated[
        Path,
        typer.Option(
            "--db", help="The hospital's SQLite database (created if absent).", show_default=False
        ),
    ],
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep following new blocks until Ctrl-C.")
    ] = False,
    directory: Dir = Path("."),
) -> None:
    """Import the referrals to your hospital and follow its referrals' status, from the block
    after the last one the database has finished.

    Without --follow, one pass up to the current height: the connector reads through the last
    block your organisation's peer reports on its operations endpoint (`/status`, as `network
    status` does), so it stops exactly there rather than guessing from an idle stream. With
    --follow it keeps reading new blocks and prints one line per import or status change until
    Ctrl-C (under --json, the one document comes at the end). At a hospital, the pseudonym
    service checks that each clinical package is the referred patient's (cached in the database).

    Example: medalliance connector sync --db hospitals/TertiaryB.db --as User1@TertiaryHospitalB -d demo
    """
    with (
        session(directory, as_) as s,
        closing(HospitalDatabase.open(db)) as database,
        closing(_pseudonyms(s, db)) as pseudonyms,
    ):
        connector = Connector(
            s.network, s.caller.msp_id, s.caller.user, database, pseudonyms.client
        )
        if follow:
            report = _follow(connector, SyncReport(last_block=database.last_block()))
        else:
            report = connector.sync(until=_last_block(s.network.layout, s.caller.msp_id))
    _show(report)
    if follow:
        raise typer.Exit(130)  # interrupted, as style.md §7 counts it


def _last_block(layout: NetworkLayout, msp_id: str) -> int:
    """The last block the organisation's own peer has committed on the channel."""
    peers = [n for n in launcher.nodes_of(layout) if n.organization == msp_id and n.role == "peer"]
    if not peers:
        raise Unavailable(f"{msp_id} runs no peer to sync from")
    answer = launcher.probe(peers[0], timeout=5.0)
    height = (answer or {}).get("channels", {}).get(CHANNEL)
    if not isinstance(height, int):
        raise Unavailable(
            f"peer {peers[0].name} does not report its height on channel {CHANNEL}; "
            "is the network up (`medalliance network status`)?"
        )
    return height - 1


def _follow(connector: Connector, latest: SyncReport) -> SyncReport:
    """Sync forever, a line per change, until Ctrl-C; what was done by then (`latest` if
    no block came)."""
    printed = {"imported": 0, "noted": 0, "updated": 0}

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
        printed.update(
            imported=len(report.imported), noted=len(report.noted), updated=len(report.updated)
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
    console.print(f"last block: {result.last_block}")


class _Pseudonyms:
    """A hospital's pseudonym client (None for a regulator, which registers no patient)."""

    def __init__(self, client: PseudonymClient | None) -> None:
        self.client = client

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def _pseudonyms(s: Session, db: Path) -> _Pseudonyms:
    org = s.network.layout.config.organization(s.caller.msp_id)
    if org.type not in HOSPITAL_TYPES:
        return _Pseudonyms(None)
    return _Pseudonyms(pseudonym_client(s.network, s.caller.msp_id, s.caller.user, db))
