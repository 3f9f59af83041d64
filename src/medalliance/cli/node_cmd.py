"""`medalliance node start|backup|restore`: run one node in this process; back its folder up
while it runs, restore it (node.backup)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel

from medalliance.cli.output import emit_json, output_state, stdout
from medalliance.database_url import parse_database_url
from medalliance.node.backup import BackupManifest, backup_node, restore_node
from medalliance.node.process import configure_logging, run

app = typer.Typer(help="Run a single node.", no_args_is_help=True)


@app.command("start")
def start(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The node's node.yaml (under nodes/<host>/).")
    ],
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run the node until SIGTERM or Ctrl-C; logs are JSON lines on stderr.

    Example: medalliance node start --config test-network/nodes/peer0.org1.example.com/node.yaml
    """
    configure_logging(log_level.upper())
    run(config)


class BackupOutput(BaseModel):
    path: str
    node: str
    role: str
    channels: list[str]
    files: int


def _emit(path: Path, manifest: BackupManifest, verb: str) -> None:
    out = BackupOutput(
        path=str(path),
        node=manifest.node,
        role=manifest.role,
        channels=[entry.channel for entry in manifest.ledgers],
        files=len(manifest.files),
    )
    if output_state.json:
        emit_json(out)
    else:
        stdout().print(
            f"{verb} {out.node} ({out.files} files, channels {', '.join(out.channels) or 'none'})"
        )


@app.command("backup")
def backup(
    config: Annotated[Path, typer.Option("--config", "-c", help="The node's node.yaml.")],
    out: Annotated[
        Path,
        typer.Option("--output", "-o", help="A new folder, or an archive ending in .tar.gz."),
    ],
) -> None:
    """Back up a node's ledgers and stores while it runs (docs/backup.md).

    Example: medalliance node backup --config net/nodes/peer0.org1.example.com/node.yaml -o peer0.tar.gz
    """
    _emit(out, backup_node(config, out), "backed up")


@app.command("restore")
def restore(
    backup: Annotated[Path, typer.Argument(help="A backup folder or .tar.gz archive.")],
    config: Annotated[Path, typer.Option("--config", "-c", help="The peer's node.yaml.")],
    state_database: Annotated[
        str | None,
        typer.Option(
            "--state-database",
            envvar="MEDALLIANCE_STATE_DATABASE",
            help="postgresql:// URL of a PostgreSQL-state peer's database (else as recorded).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Restore a peer's backup into its folder (stopped, its ledgers/ moved away).

    Started again, the peer pulls the blocks it lacks from the ordering service. An ordering
    node's backup is refused: it could vote twice (docs/backup.md).

    Example: medalliance node restore peer0.tar.gz --config net/nodes/peer0.org1.example.com/node.yaml
    """
    url = parse_database_url(state_database) if state_database else None
    _emit(backup, restore_node(backup, config, state_database=url), "restored")
