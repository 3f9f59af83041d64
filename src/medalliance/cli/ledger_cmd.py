"""`medalliance ledger ...`: verify a ledger from genesis, rebuild a peer's world state;
snapshots (snapshot_cmd)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.progress import Progress, TaskID
from rich.table import Table

from medalliance.audit.verify import LedgerReport, find_ledgers, verify_ledger
from medalliance.cli import snapshot_cmd
from medalliance.cli.output import emit_json, output_state, stderr, stdout
from medalliance.database_url import DatabaseUrl, parse_database_url
from medalliance.node.channel import namespace_policy, rebuild_state

app = typer.Typer(help="Inspect and repair ledgers on disk.", no_args_is_help=True)
app.add_typer(snapshot_cmd.app, name="snapshot", no_args_is_help=True)

# A peer whose state is on PostgreSQL records the URL without its password in the ledger folder;
# libpq's PGPASSWORD or ~/.pgpass supply it, or this option (an env var keeps it out of history).
StateDatabase = Annotated[
    str | None,
    typer.Option(
        "--state-database",
        envvar="MEDALLIANCE_STATE_DATABASE",
        help="postgresql:// URL replacing the one a PostgreSQL-state peer recorded (schema kept).",
        show_default=False,
    ),
]


def _state_database(text: str | None) -> DatabaseUrl | None:
    return parse_database_url(text) if text else None


class LedgerVerdict(BaseModel):
    path: str
    channel: str
    blocks: int
    transactions: int
    valid_transactions: int
    state_hash: str
    node_state_matches: bool | None
    intact: bool
    bad_block: int | None
    reason: str | None
    first_block: int  # > 0 for a ledger joined from a snapshot: verified from there on


class VerifyOutput(BaseModel):
    intact: bool
    ledgers: list[LedgerVerdict]


class RebuildOutput(BaseModel):
    path: str
    channel: str
    blocks_replayed: int
    state_hash: str


@app.command("verify")
def verify(
    directory: Annotated[
        Path, typer.Argument(help="A ledger directory, or a data directory holding several.")
    ],
    state_database: StateDatabase = None,
) -> None:
    """Verify ledgers from their genesis block: hashes, signatures, re-validation, world state.

    Exits 0 when every ledger is intact, 1 naming the first bad block otherwise. A peer's
    PostgreSQL state is found where the peer recorded it (password from PGPASSWORD/~/.pgpass).

    Example: medalliance ledger verify demo-data
    """
    node_state = _state_database(state_database)
    ledgers = find_ledgers(directory)
    reports: list[LedgerReport] = []
    with Progress(console=stderr(), transient=True) as progress:
        for path in ledgers:
            task = progress.add_task(f"verifying {path}", total=None)
            reports.append(
                verify_ledger(path, namespace_policy, _progress(progress, task), node_state)
            )
    verdicts = [_verdict(r, directory) for r in reports]
    intact = all(v.intact for v in verdicts)
    if output_state.json:
        emit_json(VerifyOutput(intact=intact, ledgers=verdicts))
    else:
        _render(verdicts)
    if not intact:
        raise typer.Exit(1)


@app.command("rebuild-state")
def rebuild(
    directory: Annotated[Path, typer.Argument(help="A ledger directory (holding blocks/).")],
    state_database: StateDatabase = None,
) -> None:
    """Drop a ledger's world state (SQLite or the peer's PostgreSQL schema) and re-derive it
    from its blocks. Stop the peer first.

    Example: medalliance ledger rebuild-state demo-data/nodes/peer0.hospa.example.com/ledgers/alliance
    """
    result = rebuild_state(directory, _state_database(state_database))
    out = RebuildOutput(
        path=str(directory),
        channel=result.channel_id,
        blocks_replayed=result.blocks_replayed,
        state_hash=result.state_hash,
    )
    if output_state.json:
        emit_json(out)
    else:
        stdout().print(
            f"rebuilt the world state of channel {out.channel} from {out.blocks_replayed} blocks "
            f"(state hash {out.state_hash[:16]}…)"
        )


def _progress(progress: Progress, task: TaskID) -> Callable[[int], None]:
    return lambda number: progress.update(task, completed=number)


def _verdict(report: LedgerReport, root: Path) -> LedgerVerdict:
    return LedgerVerdict(
        path=str(report.path.relative_to(root)) if report.path != root else str(root),
        channel=report.channel_id,
        blocks=report.blocks,
        transactions=report.txs,
        valid_transactions=report.valid_txs,
        state_hash=report.state_hash,
        node_state_matches=report.node_state_matches,
        intact=report.intact,
        first_block=report.first_block,
        bad_block=report.bad.number if report.bad else None,
        reason=report.bad.reason
        if report.bad
        else (
            "the node's world state differs from the one its blocks produce"
            if report.node_state_matches is False
            else None
        ),
    )


def _render(verdicts: list[LedgerVerdict]) -> None:
    table = Table(title="ledger verification")
    for column in ("ledger", "channel", "blocks", "txs (valid)", "verdict"):
        table.add_column(column)
    for v in verdicts:
        if v.intact:
            verdict = "[green]intact[/green]"
        elif v.bad_block is not None:
            verdict = f"[red]block {v.bad_block}: {v.reason}[/red]"
        else:
            verdict = f"[red]{v.reason}[/red]"
        table.add_row(
            v.path, v.channel, str(v.blocks), f"{v.transactions} ({v.valid_transactions})", verdict
        )
    stdout().print(table)
