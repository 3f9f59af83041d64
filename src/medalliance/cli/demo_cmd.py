"""`medalliance demo`: run the demo alliance on an embedded network."""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.table import Table

from medalliance.app.demo import DemoResult, Step, default_config_path, run_smoke
from medalliance.cli.output import emit_json, output_state, stderr, stdout


class Scenario(StrEnum):
    smoke = "smoke"


class StepOut(BaseModel):
    title: str
    outcome: str
    ok: bool


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
        Path, typer.Option("--data-dir", help="Where the network's material and ledgers live.")
    ] = Path("demo-data"),
    scenario: Annotated[Scenario, typer.Option("--scenario", help="What to run.")] = Scenario.smoke,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Network config (default: networks/demo-alliance.yaml)."),
    ] = None,
) -> None:
    """Run the demo alliance of the paper on an embedded network, non-interactively.

    Creates the network in --data-dir the first time and reuses it after, so each run adds
    blocks to the same ledger. Afterwards, `medalliance ledger verify DATA_DIR` checks it.

    Example: medalliance demo --scenario smoke --data-dir demo-data
    """
    del scenario  # one scenario so far; later issues add the referral workflow
    notes = stderr()
    config_path = config or default_config_path()
    show = (lambda step: None) if output_state.json else _print_step
    with notes.status("starting the alliance…") as status:
        result = run_smoke(
            config_path, data_dir, on_step=show, on_progress=lambda msg: status.update(msg)
        )
    ok = all(step.ok for step in result.steps)
    if output_state.json:
        emit_json(_output(result, ok))
    else:
        _print_blocks(result)
        stdout().print(
            f"\nledger in {data_dir}; check it with: medalliance ledger verify {data_dir}"
        )
    if not ok:
        raise typer.Exit(1)


def _print_step(step: Step) -> None:
    mark = "[green]✓[/green]" if step.ok else "[red]✗[/red]"
    stdout().print(f"{mark} {step.title}: {step.outcome}")


def _print_blocks(result: DemoResult) -> None:
    table = Table(title="blocks on channel alliance")
    for column in ("block", "time", "txs", "validation codes", "header hash"):
        table.add_column(column)
    for b in result.blocks:
        counts = Counter(b.codes)
        codes = ", ".join(f"{n} {code}" for code, n in counts.items())
        table.add_row(str(b.number), b.time, str(b.txs), codes, b.header_hash[:16] + "…")
    stdout().print(table)


def _output(result: DemoResult, ok: bool) -> DemoOutput:
    return DemoOutput(
        data_dir=str(result.data_dir),
        ok=ok,
        steps=[StepOut(title=s.title, outcome=s.outcome, ok=s.ok) for s in result.steps],
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
