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

SHOWN_BLOCKS = 12


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
) -> None:
    """Run the paper's referral workflow (fig. 5) on the demo alliance, non-interactively.

    Secondary hospital A registers a visit and applies; the district commission rejects one
    application and approves another; A refers the patient; tertiary hospital B's connector
    imports the encrypted clinical package into B's own database; the agreement settles the
    referral; a downward referral returns the patient; the city commission traces it all.

    By default on an embedded network created in --data-dir the first time and reused after;
    afterwards `medalliance ledger verify DATA_DIR` checks it. With --network DIR it runs against
    a network started with `medalliance network up DIR`.

    Example: medalliance demo --scenario referral --data-dir demo-data
    """
    del scenario  # the referral workflow is the demo's one scenario
    notes = stderr()
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
