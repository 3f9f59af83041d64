"""`medalliance demo`: the paper's referral workflow on the demo alliance."""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.table import Table

from medalliance.app.demo import DemoResult, default_config_path, run_demo, run_demo_on
from medalliance.app.referral_demo import Step
from medalliance.cli.output import emit_json, output_state, stderr, stdout
from medalliance.cli.serve_cmd import run_server
from medalliance.errors import InvalidArgument

SHOWN_BLOCKS = 12
LOGINS_FILE = "web-logins.json"


class Scenario(StrEnum):
    referral = "referral"


class StepOut(BaseModel):
    title: str
    outcome: str
    ok: bool
    detail: list[str]


class BlockOut(BaseModel):
    number: int
    transactions: int
    valid: int
    codes: list[str]
    header_hash: str


class DemoOutput(BaseModel):
    data_dir: str
    ok: bool
    steps: list[StepOut]
    blocks: list[BlockOut]


def demo(
    data_dir: Annotated[
        Path,
        typer.Option("--data-dir", help="Where the embedded network's material and ledgers live."),
    ] = Path("demo-data"),
    scenario: Annotated[
        Scenario, typer.Option("--scenario", help="What to run.")
    ] = Scenario.referral,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Network config (default: networks/demo-alliance.yaml)."),
    ] = None,
    network: Annotated[
        Path | None,
        typer.Option(
            "--network",
            help="Run against this running network of processes (`network up`) instead.",
        ),
    ] = None,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Then serve the web client for every demo organisation until Ctrl-C.",
        ),
    ] = False,
    port: Annotated[
        int, typer.Option("--port", help="The web client's port (with --serve).", min=1, max=65535)
    ] = 8000,
) -> None:
    """Run the paper's referral workflow (fig. 5) on the demo alliance, non-interactively.

    Secondary hospital A registers a visit and applies; the district commission rejects one
    application and approves another; A refers the patient; tertiary hospital B's connector
    imports the encrypted clinical package into B's own database; the agreement settles the
    referral; a downward referral returns the patient; the city commission traces it all.

    By default on an embedded network created in --data-dir the first time and reused after;
    afterwards `medalliance ledger verify DATA_DIR` checks it. With --network DIR it runs against
    a network started with `medalliance network up DIR`.

    With --serve it then serves the web client on http://127.0.0.1:PORT for every demo
    organisation, with one account per demo identity and fresh random passwords (printed, and
    kept in DATA_DIR/web-logins.json, readable by you only), until Ctrl-C. Run again on the same
    folder, it serves the alliance the first run left.

    Example: medalliance demo --scenario referral --data-dir demo-data

    Example: medalliance demo --serve --port 8000
    """
    del scenario  # the referral workflow is the demo's one scenario
    if serve and network is not None:
        raise InvalidArgument(
            "--serve runs on the embedded demo; for a network of processes run "
            "`medalliance serve --dir DIR --org ORG` beside each organisation's peer"
        )
    notes = stderr()
    if serve and (data_dir / LOGINS_FILE).exists():
        # A demo that already ran (and served) here: serve it again rather than run the
        # workflow a second time over the same hospitals' stores.
        stdout().print(
            f"the demo alliance in {data_dir} has run the referral workflow; serving it again "
            f"(delete {data_dir} to start over)",
            highlight=False,
        )
        _serve(config or default_config_path(), data_dir, port)
        return
    show = (lambda step: None) if output_state.json else _print_step
    if network is not None:
        result = run_demo_on(network, on_step=show)
    else:
        config_path = config or default_config_path()
        with notes.status("starting the alliance…") as status:
            result = run_demo(
                config_path, data_dir, on_step=show, on_progress=lambda msg: status.update(msg)
            )
    ok = all(step.ok for step in result.steps)
    if output_state.json:
        emit_json(_output(result, ok))
    elif network is None:
        _print_blocks(result)
        stdout().print(
            f"\nledger in {data_dir}; check it with: medalliance ledger verify {data_dir}"
        )
    if not ok:
        raise typer.Exit(1)
    if serve:
        _serve(config or default_config_path(), data_dir, port)


def _serve(config_path: Path, data_dir: Path, port: int) -> None:
    """Every demo organisation's web client on 127.0.0.1:PORT, with fresh demo logins."""
    from medalliance.web.backend import WebBackend  # the web stack only when serving
    from medalliance.web.demo_accounts import fresh_demo_accounts, write_logins
    from medalliance.web.security import WebSettings

    backend = WebBackend.embedded(data_dir, config_path)
    try:
        logins = fresh_demo_accounts(backend.accounts, backend.config, backend.organizations)
        write_logins(data_dir / LOGINS_FILE, logins)
        out = stdout()
        out.print(f"\ndemo logins (also in {data_dir / LOGINS_FILE}, readable by you only):")
        width = max(len(login.username) for login in logins)
        for login in logins:
            out.print(
                f"  {login.username:<{width}}  {login.password}  "
                f"{login.identity}@{login.organization} ({login.role})",
                highlight=False,
                soft_wrap=True,
            )
        run_server(backend, WebSettings(), "127.0.0.1", port)
    finally:
        backend.close()


def _print_step(step: Step) -> None:
    mark = "[green]✓[/green]" if step.ok else "[red]✗[/red]"
    out = stdout()
    out.print(f"{mark} {step.title}: {step.outcome}", highlight=False)
    for line in step.detail:
        out.print(f"    {line}", highlight=False)


def _print_blocks(result: DemoResult) -> None:
    shown = result.blocks[-SHOWN_BLOCKS:]
    earlier = len(result.blocks) - len(shown)
    title = "blocks on channel alliance" + (f" (the last {len(shown)})" if earlier else "")
    table = Table(title=title)
    for column in ("block", "time", "txs", "validation codes", "header hash"):
        table.add_column(column)
    for b in shown:
        counts = Counter(b.codes)
        codes = ", ".join(f"{n} {code}" for code, n in counts.items())
        table.add_row(str(b.number), b.time, str(b.txs), codes, b.header_hash[:16] + "…")
    stdout().print(table)


def _output(result: DemoResult, ok: bool) -> DemoOutput:
    return DemoOutput(
        data_dir=str(result.data_dir),
        ok=ok,
        steps=[
            StepOut(title=s.title, outcome=s.outcome, ok=s.ok, detail=list(s.detail))
            for s in result.steps
        ],
        blocks=[
            BlockOut(
                number=b.number,
                transactions=b.txs,
                valid=b.valid,
                codes=list(b.codes),
                header_hash=b.header_hash,
            )
            for b in result.blocks
        ],
    )
