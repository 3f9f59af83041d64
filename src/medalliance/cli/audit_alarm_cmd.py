"""`medalliance audit alarms run [--follow]` and `audit alarms list|show|ack|close`: a
commission's alarms.

`run` (also the group without a subcommand, as before) is the commission's alarm runner
(`medalliance.app.alarm_runner`): it reads its peer's blocks through the rules (audit/rules.py)
and its peer's integrity monitor, and raises each new finding on the chain once. `list` answers
from the audit index (app/audit_queries.py, like the other audit queries); `show`, `ack` and
`close` read and handle one alarm with the `alarm` contract. `app` is the `alarms` group;
`register` adds it to the `audit` group (cli/audit_cmd.py), as cli/main.py does.
"""

from __future__ import annotations

import datetime as dt
from contextlib import closing, suppress
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel

from medalliance.app.alarm_checkpoint import AlarmCheckpoint
from medalliance.app.alarm_runner import AlarmRunner, IntegritySource, RaisedAlarm, RunReport
from medalliance.app.audit_queries import ALARM_STATES
from medalliance.app.integrity_status import monitor_findings
from medalliance.cli.alliance_cmd import (
    CHANNEL,
    As,
    Dir,
    last_block,
    record_table,
    session,
    show_committed,
    show_result,
)
from medalliance.cli.audit_cmd import Db, Json, _json, _queries
from medalliance.cli.audit_cmd import _show as _show_rows
from medalliance.cli.output import emit_json, output_state, stdout
from medalliance.database_url import parse_database_url
from medalliance.errors import InvalidArgument
from medalliance.node.bootstrap import NetworkLayout

app = typer.Typer()  # its help is the callback's docstring, with the example

AlarmId = Annotated[str, typer.Argument(help="The alarm id (ALM-...).", show_default=False)]
Note = Annotated[
    str,
    typer.Option(
        "--note",
        help="A sealed note's record id (seal the text with `privacy seal` first).",
        metavar="RECORD_ID",
    ),
]


def register(audit: typer.Typer) -> None:
    """Add `alarms` to an `audit` command group."""
    audit.add_typer(app, name="alarms")


class RaisedOut(BaseModel):
    alarm_id: str
    rule_id: str
    subjects: list[str]
    transaction_id: str
    block: int


class RunOutput(BaseModel):
    raised: list[RaisedOut]
    already_raised: int  # findings whose alarm was on the chain before this run
    outside_jurisdiction: int
    last_block: int


RunAs = Annotated[
    str,
    typer.Option(
        "--as",
        help="A commission's auditor or reviewer, e.g. Auditor1@DistrictHC.",
        show_default=False,
    ),
]
Follow = Annotated[bool, typer.Option("--follow", help="Keep following new blocks until Ctrl-C.")]
Checkpoint = Annotated[
    str,
    typer.Option(
        "--checkpoint",
        help="Where the runner remembers what it raised: a file (SQLite) or "
        "postgresql://... (default: DIR/audit/alarms-<MSP>.db).",
        show_default=False,
    ),
]


@app.callback(invoke_without_command=True)
def alarms(
    ctx: typer.Context,
    as_: RunAs = "",
    follow: Follow = False,
    checkpoint: Checkpoint = "",
    directory: Dir = Path("."),
) -> None:
    """Your commission's alarms: raise them (`run`), list them, show, acknowledge and close one.

    Without a subcommand: `run` (kept for scripts written before `run` existed).

    Example: medalliance audit alarms run --as Auditor1@DistrictHC -d demo
    """
    if ctx.invoked_subcommand is not None:
        return
    _run(as_, follow, checkpoint, directory)


@app.command("run")
def run(
    as_: RunAs = "", follow: Follow = False, checkpoint: Checkpoint = "", directory: Dir = Path(".")
) -> None:
    """Raise the alarms the rules find in the ledger, each once, as your commission.

    Reads your organisation's peer from the genesis block through the current height (with
    --follow, forever) and raises every new finding about your commission or the hospitals it
    supervises; overdue referrals are escalated to your parent commission. Also reads your
    peer's integrity monitor and raises `integrity.divergence` for each peer it names, and frees
    the slots held by referrals left unanswered past their acceptance deadline.

    Example: medalliance audit alarms run --as Auditor1@DistrictHC -d demo
    """
    _run(as_, follow, checkpoint, directory)


def _run(as_: str, follow: bool, checkpoint: str, directory: Path) -> None:
    if not as_:
        raise InvalidArgument("give --as USER@ORG, e.g. --as Auditor1@DistrictHC")
    with session(directory, as_) as s:
        msp_id = s.caller.msp_id
        url = parse_database_url(
            checkpoint or str(Path("audit") / f"alarms-{msp_id}.db"), base=directory
        )
        with closing(AlarmCheckpoint(url, CHANNEL)) as store:
            runner = AlarmRunner(s.network, msp_id, s.caller.user, store,
                                 integrity=_integrity_source(s.network.layout, msp_id),
                                 hold_sweep=True)  # fmt: skip
            if follow:
                report = RunReport(last_block=store.last_block())
                with suppress(KeyboardInterrupt):  # every finished block is stored
                    report = runner.run(until=None, on_raise=_print_raised)
            else:
                report = runner.run(until=last_block(s.network.layout, msp_id))
    _show(report)
    if follow:
        raise typer.Exit(130)


@app.command("list")
def list_alarms(
    as_: As,
    state: Annotated[
        str, typer.Option("--state", help=f"Only alarms {'|'.join(ALARM_STATES)} (default: all).")
    ] = "all",
    since: Annotated[
        str, typer.Option("--since", help="Raised at or after (ISO 8601, e.g. 2026-11-01).")
    ] = "",
    until: Annotated[str, typer.Option("--until", help="Raised before (ISO 8601).")] = "",
    status: Annotated[str, typer.Option("--status", hidden=True)] = "",  # the former name
    directory: Dir = Path("."),
    db: Db = None,
    json_output: Json = False,
) -> None:
    """Alarms raised by your commission or those below it, or escalated to it, oldest first.

    Answered from the audit index (run `medalliance audit index` first, or keep `audit index
    --follow` running): each alarm's latest state, who acted last and every tx id.

    Example: medalliance audit alarms list --state open --as Auditor1@DistrictHC -d demo
    """
    _json(json_output)
    chosen = (status or state).lower()
    with _queries(directory, as_, db) as (queries, indexed):
        rows = queries.alarms(state=chosen, since=_instant(since, "--since"),
                              until=_instant(until, "--until"))  # fmt: skip
        _show_rows(queries.caller, indexed, [asdict(r) for r in rows], "Alarms")


def _instant(text: str, option: str) -> dt.datetime | None:
    """An ISO 8601 date or time (UTC when no offset is given); None for ""."""
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(
            f"{option} must be an ISO 8601 date or time, e.g. 2026-11-01"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


@app.command("show")
def show(alarm_id: AlarmId, as_: As, directory: Dir = Path(".")) -> None:
    """One alarm with its history.

    Example: medalliance audit alarms show ALM-3f2a... --as Auditor1@DistrictHC -d demo
    """
    with session(directory, as_) as s:
        alarm = s.evaluate("alarm", "GetAlarm", alarm_id)
    show_result(alarm, lambda a: record_table(f"alarm {alarm_id}", a))


@app.command("ack")
def acknowledge(alarm_id: AlarmId, as_: As, note: Note = "", directory: Dir = Path(".")) -> None:
    """Acknowledge an alarm: your commission is looking into it (optionally with a note).

    Example: medalliance audit alarms ack ALM-3f2a... --as Auditor1@DistrictHC -d demo
    """
    with session(directory, as_) as s:
        done = s.submit("alarm", "AcknowledgeAlarm", alarm_id, note)
    show_committed(done, lambda a: f"alarm {a['alarmId']} is {a['status']}")


@app.command("close")
def close(alarm_id: AlarmId, as_: As, note: Note, directory: Dir = Path(".")) -> None:
    """Close an alarm with a sealed note saying how it was handled.

    Example: medalliance audit alarms close ALM-3f2a... --note NOTE-17 --as Auditor1@DistrictHC -d demo
    """
    with session(directory, as_) as s:
        done = s.submit("alarm", "CloseAlarm", alarm_id, note)
    show_committed(done, lambda a: f"alarm {a['alarmId']} is {a['status']}")


def _integrity_source(layout: NetworkLayout, msp_id: str) -> IntegritySource | None:
    """Where the runner reads its integrity findings: the operations endpoint of the
    organisation's peer that runs the integrity monitor (None: it runs none)."""
    monitors = [p for p in layout.config.organization(msp_id).peers if p.integrity_monitor]
    if not monitors:
        return None
    endpoint = monitors[0].operations_endpoint
    return lambda: monitor_findings(endpoint)


def _print_raised(raised: RaisedAlarm) -> None:
    if not output_state.json:
        stdout().print(
            f"block {raised.block}: raised {raised.alarm_id} ({raised.rule_id}: "
            f"{', '.join(raised.subjects)})"
        )


def _show(report: RunReport) -> None:
    result = RunOutput(
        raised=[
            RaisedOut(alarm_id=r.alarm_id, rule_id=r.rule_id, subjects=list(r.subjects),
                      transaction_id=r.tx_id, block=r.block)
            for r in report.raised
        ],
        already_raised=report.already,
        outside_jurisdiction=report.ignored,
        last_block=report.last_block,
    )  # fmt: skip
    if output_state.json:
        emit_json(result)
        return
    console = stdout()
    for r in result.raised:
        console.print(f"raised {r.alarm_id} ({r.rule_id}: {', '.join(r.subjects)})")
    console.print(
        f"raised: {len(result.raised)}, already raised: {result.already_raised}, "
        f"last block: {result.last_block}"
    )
