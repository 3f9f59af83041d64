"""`medalliance ledger snapshot ...`: take, verify and join ledger snapshots (docs/backup.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel

from medalliance.cli.output import emit_json, output_state, stdout
from medalliance.database_url import DatabaseUrl, parse_database_url
from medalliance.errors import ConfigError
from medalliance.ledger.snapshot import (
    SignableMetadata,
    read_snapshot,
    snapshot_channel,
    snapshot_hash,
    write_snapshot,
)
from medalliance.ledger.snapshot_join import join_snapshot
from medalliance.ledger.world_state import StateLocation, state_schema
from medalliance.node.config import load_node_file

app = typer.Typer(help="Ledger snapshots: a channel's state and chain tip at one block.")

StateDatabase = Annotated[
    str | None,
    typer.Option(
        "--state-database",
        envvar="MEDALLIANCE_STATE_DATABASE",
        help="postgresql:// URL of the peer's world state (else where the ledger recorded it).",
        show_default=False,
    ),
]


class SnapshotOutput(BaseModel):
    path: str
    channel: str
    last_block_number: int
    last_block_hash: str
    state_hash: str
    snapshot_hash: str | None = None


def _url(text: str | None) -> DatabaseUrl | None:
    return parse_database_url(text) if text else None


def _emit(path: Path, metadata: SignableMetadata, snapshot_hash: str, verb: str) -> None:
    out = SnapshotOutput(
        path=str(path),
        channel=metadata.channel_name,
        last_block_number=metadata.last_block_number,
        last_block_hash=metadata.last_block_hash,
        state_hash=metadata.state_hash,
        snapshot_hash=snapshot_hash,
    )
    if output_state.json:
        emit_json(out)
    else:
        stdout().print(
            f"{verb} snapshot of channel {out.channel} at block {out.last_block_number} "
            f"(snapshot hash {snapshot_hash})"
        )


@app.command("create")
def create(
    ledger: Annotated[Path, typer.Argument(help="A peer's ledger folder (ledgers/<channel>).")],
    out: Annotated[Path, typer.Option("--output", "-o", help="The new snapshot folder.")],
    state_database: StateDatabase = None,
) -> None:
    """Snapshot a ledger at its world state's last block; safe while the peer runs.

    Example: medalliance ledger snapshot create net/nodes/peer0.org1.example.com/ledgers/mychannel -o snap
    """
    metadata = write_snapshot(
        ledger,
        out,
        created_by=ledger.resolve().parent.parent.name,  # nodes/<host>/ledgers/<channel>
        state_database=_url(state_database),
    )
    _emit(out, metadata, snapshot_hash(out), "took a")


@app.command("verify")
def verify(
    directory: Annotated[Path, typer.Argument(help="A snapshot folder.")],
    ledger: Annotated[
        Path | None,
        typer.Option("--ledger", help="Also check the last block's hashes against this ledger."),
    ] = None,
) -> None:
    """Check a snapshot: file hashes, snapshot hash, state hash, and its ledger's last block.

    Every file's SHA-256, the snapshot hash and the state hash recomputed from the rows; with
    --ledger, that the ledger holds the snapshot's last block. Exit 2 naming the first mismatch.

    Example: medalliance ledger snapshot verify snap --ledger net/nodes/peer0.org2.example.com/ledgers/mychannel
    """
    snapshot = read_snapshot(directory, ledger_dir=ledger)
    _emit(directory, snapshot.metadata, snapshot.snapshot_hash, "verified the")


@app.command("join")
def join(
    directory: Annotated[Path, typer.Argument(help="A snapshot folder.")],
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The joining peer's node.yaml (stopped).")
    ],
    state_database: StateDatabase = None,
) -> None:
    """Start a stopped peer's ledger of the snapshot's channel from the snapshot.

    The ledger then begins at the snapshot's next block; the peer pulls the rest from the
    ordering service when it starts. Refused for a peer that is not a channel member.

    Example: medalliance ledger snapshot join snap --config net/nodes/peer0.org2.example.com/node.yaml
    """
    channel = snapshot_channel(directory)  # join_snapshot verifies it
    node, _ = load_node_file(config)
    if node.role != "peer":
        raise ConfigError(f"{config} is an ordering node's; only a peer joins a snapshot")
    node_dir = config.resolve().parent
    url = _url(state_database)
    location = (
        StateLocation(url, state_schema(node_dir.name, channel))
        if url is not None and url.is_postgres
        else None
    )
    snapshot = join_snapshot(
        directory, node_dir / "ledgers" / channel, location, msp_id=node.organization
    )
    _emit(directory, snapshot.metadata, snapshot.snapshot_hash, "joined the")
