"""`medalliance audit ...`: the health commission's audit index and region-wide queries.

`audit index` feeds the index (app/audit_index.py) from the commission's own peer over Deliver;
the queries (app/audit_queries.py) read the index and answer only a proven auditor or reviewer
of the supervising commission chain (docs/audit.md §3). `report` and `verify-report`
(cli/audit_report_cmd.py) and `alarms` (cli/audit_alarm_cmd.py) are registered on this same `app`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from prometheus_client import start_http_server
from pydantic import BaseModel
from rich.table import Table

from medalliance.app.alliance_network import GatewayAlliance
from medalliance.app.audit_index import AuditIndex, CatchUp, default_index_path
from medalliance.app.audit_queries import (
    Auditor,
    AuditQueries,
    authenticate,
    require_auditor,
)
from medalliance.cli.alliance_cmd import (
    CHANNEL,
    As,
    Dir,
    ThroughBlock,
    last_block,
    one_pass_only,
    parse_as,
)
from medalliance.cli.output import emit_json, output_state, stdout
from medalliance.database_url import parse_database_url
from medalliance.errors import InvalidArgument, Unavailable
from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.metrics import NodeMetrics

app = typer.Typer(
    help="The health commission's audit: the index of the ledger and region-wide queries.",
    no_args_is_help=True,
)

Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="The audit index: a file path (SQLite) or postgresql://... "
        "(default: DIR/audit/<MSP>.db).",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")]
Period = Annotated[str, typer.Option("--period", help="A month, YYYY-MM.")]


class IndexOutput(BaseModel):
    blocks_added: int
    facts_added: int
    next_block: int  # the next block the index will read
    facts: int  # facts the index holds


class QueryOutput(BaseModel):
    """A query's answer: its rows, and how far the index has read."""

    caller: str
    indexed_blocks: int
    rows: list[dict[str, Any]]


@app.command("index")
def index(
    as_: As,
    directory: Dir = Path("."),
    db: Db = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Empty the index first and read from genesis.")
    ] = False,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep indexing new blocks until Ctrl-C.")
    ] = False,
    through_block: ThroughBlock = None,
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics",
            help="With --follow: serve Prometheus metrics (the index's lag behind your peer) "
            "at http://HOST:PORT/metrics, e.g. 127.0.0.1:9446.",
            show_default=False,
        ),
    ] = None,
    json_output: Json = False,
) -> None:
    """Bring the audit index up to your commission's peer, from the last indexed block.

    One database transaction per block with its checkpoint: a crash never skips or doubles a
    block. The index is fed from the peer over Deliver and answers the other audit commands.
    With --through-block N it first waits for your peer to commit block N (e.g. the block a
    hospital's transaction printed); with --follow --metrics it serves
    `medalliance_audit_index_lag_blocks` for Prometheus.

    Example: medalliance audit index --dir demo --as Auditor1@DistrictHC
    """
    _json(json_output)
    one_pass_only(follow, through_block)
    if metrics and not follow:
        raise InvalidArgument("--metrics serves the lag of a follower: add --follow")
    layout, caller = _caller(directory, as_)
    require_auditor(layout.config, caller)
    with _open_index(layout, caller, db) as audit_index:
        if rebuild:
            audit_index.rebuild()
        network = GatewayAlliance(directory, CHANNEL)
        try:
            if follow:
                lag = _lag_metric(layout, caller.msp_id, metrics) if metrics else None
                done = _follow(audit_index, network, caller, lag)
            else:
                until = last_block(layout, caller.msp_id, through_block)
                start = audit_index.next_block()
                done = audit_index.catch_up(network.blocks(caller.msp_id, start, until))
        finally:
            network.close()
        result = IndexOutput(
            blocks_added=done.blocks,
            facts_added=done.facts,
            next_block=done.next_block,
            facts=audit_index.count(),
        )
    if output_state.json:
        emit_json(result)
    else:
        stdout().print(
            f"indexed {result.blocks_added} blocks ({result.facts_added} facts); the index holds "
            f"{result.facts} facts of blocks 0-{result.next_block - 1}"
        )
    if follow:
        raise typer.Exit(130)  # interrupted, as style.md §7 counts it


@app.command("pending")
def pending(as_: As, directory: Dir = Path("."), db: Db = None, json_output: Json = False) -> None:
    """Applications of the hospitals you supervise waiting for review, oldest first, with age.

    Example: medalliance audit pending --dir demo --as Reviewer1@DistrictHC
    """
    _json(json_output)
    with _queries(directory, as_, db) as (queries, indexed):
        rows = queries.pending(dt.datetime.now(dt.UTC))
        _show(queries.caller, indexed, [asdict(r) for r in rows], "Applications pending review")


@app.command("referrals")
def referrals(
    as_: As,
    directory: Dir = Path("."),
    db: Db = None,
    status: Annotated[str, typer.Option("--status", help="REFERRED, ACCEPTED, ...")] = "",
    direction: Annotated[str, typer.Option("--direction", help="UP or DOWN.")] = "",
    from_org: Annotated[str, typer.Option("--from", help="The origin hospital.")] = "",
    to_org: Annotated[str, typer.Option("--to", help="The target hospital.")] = "",
    period: Period = "",
    json_output: Json = False,
) -> None:
    """Referrals of the hospitals you supervise by status, direction, hospital pair and month.

    Example: medalliance audit referrals --status REJECTED --period 2026-11 --dir demo --as Auditor1@DistrictHC
    """
    _json(json_output)
    with _queries(directory, as_, db) as (queries, indexed):
        rows = queries.referrals(
            status=status,
            direction=direction,
            from_org=_msp(directory, from_org),
            to_org=_msp(directory, to_org),
            period=period,
        )
        _show(queries.caller, indexed, [asdict(r) for r in rows], "Referrals")


@app.command("rejections")
def rejections(
    as_: As, directory: Dir = Path("."), db: Db = None, period: Period = "",
    json_output: Json = False,
) -> None:  # fmt: skip
    """Rejected applications and referrals of the hospitals you supervise, by reason code.

    Example: medalliance audit rejections --period 2026-11 --dir demo --as Auditor1@DistrictHC
    """
    _json(json_output)
    with _queries(directory, as_, db) as (queries, indexed):
        rows = queries.rejections(period=period)
        _show(queries.caller, indexed, [asdict(r) for r in rows], "Rejections by reason")


@app.command("access")
def access(
    as_: As,
    directory: Dir = Path("."),
    db: Db = None,
    org: Annotated[str, typer.Option("--org", help="The accessing organisation.")] = "",
    record: Annotated[str, typer.Option("--record", help="One record id.")] = "",
    json_output: Json = False,
) -> None:
    """Grants, revocations, fetches and decrypts of your hospitals' records, or by them.

    Example: medalliance audit access --org TertiaryHospitalA --dir demo --as Auditor1@DistrictHC
    """
    _json(json_output)
    with _queries(directory, as_, db) as (queries, indexed):
        rows = queries.access(org=_msp(directory, org), record=record)
        _show(queries.caller, indexed, [asdict(r) for r in rows], "Record access events")


@app.command("indicators")
def indicators(
    as_: As,
    period: Annotated[str, typer.Option("--period", help="A month, YYYY-MM.", show_default=False)],
    directory: Dir = Path("."),
    db: Db = None,
    json_output: Json = False,
) -> None:
    """Tiered-care indicators of a month, per hospital you supervise and over them all.

    Each figure cites the transactions it was derived from (docs/audit.md §2).

    Example: medalliance audit indicators --period 2026-11 --dir demo --as Auditor1@CityHC
    """
    _json(json_output)
    with _queries(directory, as_, db) as (queries, indexed):
        rows = [asdict(f) for f in queries.indicators(period)]
        _show(queries.caller, indexed, rows, f"Indicators {period}")


# --- helpers -------------------------------------------------------------------------------------


def _json(flag: bool) -> None:
    if flag:
        output_state.json = True


def _caller(directory: Path, as_: str) -> tuple[NetworkLayout, Auditor]:
    user, org = parse_as(as_)
    layout = NetworkLayout.load(directory)
    return layout, authenticate(layout, org, user)


@contextmanager
def _open_index(layout: NetworkLayout, caller: Auditor, db: str | None) -> Iterator[AuditIndex]:
    text = db or str(default_index_path(layout.directory, caller.msp_id))
    with closing(AuditIndex(parse_database_url(text, base=Path.cwd()), CHANNEL)) as opened:
        yield opened


@contextmanager
def _queries(directory: Path, as_: str, db: str | None) -> Iterator[tuple[AuditQueries, int]]:
    layout, caller = _caller(directory, as_)
    require_auditor(layout.config, caller)  # before the index is even opened
    with _open_index(layout, caller, db) as audit_index:
        yield AuditQueries(audit_index, layout.config, caller), audit_index.next_block()


def _msp(directory: Path, org: str) -> str:
    """An organisation given by name or MSP id, as its MSP id ("" stays "")."""
    if not org:
        return ""
    return NetworkLayout.load(directory).config.organization(org).msp_id


def _show(caller: Auditor, indexed: int, rows: list[dict[str, Any]], title: str) -> None:
    if output_state.json:
        emit_json(QueryOutput(caller=f"{caller.user}@{caller.msp_id}", indexed_blocks=indexed,
                              rows=rows))  # fmt: skip
        return
    console = stdout()
    if not rows:
        console.print(f"{title}: none (index through block {indexed - 1})")
        return
    table = Table(*rows[0].keys(), title=f"{title} (index through block {indexed - 1})",
                  title_justify="left")  # fmt: skip
    for row in rows:
        table.add_row(*(_cell(v) for v in row.values()))
    console.print(table)


def _cell(value: object) -> str:
    if isinstance(value, tuple | list):
        return ", ".join(str(v)[:12] for v in value)
    return str(value)


def _follow(
    audit_index: AuditIndex,
    network: GatewayAlliance,
    caller: Auditor,
    on_indexed: Callable[[int], None] | None,
) -> CatchUp:
    """Index new blocks as they commit, a line per block, until Ctrl-C."""
    blocks = facts = 0
    # Ctrl-C is the way to stop following; every finished block is already stored.
    with suppress(KeyboardInterrupt):
        for block in network.blocks(caller.msp_id, audit_index.next_block(), None):
            added = audit_index.add_block(block)
            blocks, facts = blocks + 1, facts + added
            if on_indexed is not None:
                on_indexed(int(block.header.number))
            if not output_state.json:
                stdout().print(f"block {block.header.number}: {added} facts")
    return CatchUp(blocks, facts, audit_index.next_block())


def _lag_metric(layout: NetworkLayout, msp_id: str, address: str) -> Callable[[int], None]:
    """Serve the index's metrics at `address` (HOST:PORT); returns what to call after each
    indexed block: it sets the lag to the peer's last block minus that block."""
    host, _, port = address.rpartition(":")
    if not (port.isascii() and port.isdigit()) or not host:
        raise InvalidArgument(f"--metrics takes HOST:PORT, e.g. 127.0.0.1:9446, not {address!r}")
    metrics = NodeMetrics()
    try:
        start_http_server(int(port), addr=host, registry=metrics.registry)
    except OSError as exc:
        raise Unavailable(f"cannot serve metrics on {address}: {exc.strerror}") from None

    def indexed(number: int) -> None:
        metrics.set_audit_index_lag(CHANNEL, max(0, last_block(layout, msp_id) - number))

    return indexed
