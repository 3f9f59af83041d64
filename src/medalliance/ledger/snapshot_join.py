"""Starting a channel ledger from a snapshot instead of replaying it from genesis.

A joined ledger's world state is the snapshot's, at its block N; its block store begins at
block N + 1, with the snapshot's tx ids indexed (duplicate detection) and its config block in
force. The peer then pulls blocks N + 1... from the ordering service; block N + 1 must name the
snapshot's block N as its predecessor (node.channel checks), which is what ties a snapshot to
the real chain: a forged snapshot with self-consistent hashes is refused there. A copy of the
snapshot stays in the ledger folder (`snapshot/`), where `ledger verify` starts from it.

Order of writes: the state first, the block store's base last, so a folder whose store has a
base is complete; a join that fails clears the state it imported.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from medalliance.errors import PermissionDenied, PreconditionFailed
from medalliance.ledger.block import parse_block
from medalliance.ledger.block_store import BlockStore, SnapshotBase
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.snapshot import SNAPSHOT_FOLDER, Snapshot, read_snapshot
from medalliance.ledger.world_state import StateLocation, open_ledger_state

log = logging.getLogger(__name__)


def join_snapshot(
    snapshot_dir: Path,
    ledger_dir: Path,
    state_at: StateLocation | None = None,
    *,
    msp_id: str | None = None,
) -> Snapshot:
    """Build a new channel ledger at `ledger_dir` from a verified snapshot; returns it.

    `ledger_dir` must not hold a ledger (`PreconditionFailed` otherwise). Raises
    `SnapshotInvalid` (nothing written) for a snapshot whose hashes do not match, and
    `PermissionDenied` when `msp_id` (the joining peer's organisation) is not a member of the
    channel in the snapshot's configuration.
    """
    snapshot = read_snapshot(snapshot_dir)
    config = ChannelConfig.from_block(parse_block(snapshot.config_block))
    if msp_id is not None and msp_id not in config.application_msp_ids:
        raise PermissionDenied(
            f"{msp_id} is not a member of channel {config.channel_id} in the snapshot's "
            "configuration; only member organisations' peers can join"
        )
    blocks = ledger_dir / "blocks"
    if blocks.exists() and any(blocks.iterdir()):
        raise PreconditionFailed(
            f"{ledger_dir} already holds a ledger; stop its peer and move the folder away first"
        )
    kept = ledger_dir / SNAPSHOT_FOLDER
    shutil.rmtree(kept, ignore_errors=True)  # left by an earlier join that failed
    shutil.copytree(snapshot_dir, kept)
    state = open_ledger_state(ledger_dir, state_at or StateLocation(None, ""))
    try:
        state.import_rows(snapshot.state)
        try:
            with BlockStore.open(blocks) as store:
                store.start_from_snapshot(
                    SnapshotBase(
                        first_block=snapshot.metadata.last_block_number + 1,
                        last_hash=bytes.fromhex(snapshot.metadata.last_block_hash),
                        previous_hash=bytes.fromhex(snapshot.metadata.previous_block_hash),
                        config_block=snapshot.config_block,
                    ),
                    snapshot.txs,
                )
        except BaseException:
            state.clear()
            raise
    finally:
        state.close()
    log.info(
        "ledger joined from a snapshot",
        extra={
            "channel": snapshot.metadata.channel_name,
            "block": snapshot.metadata.last_block_number,
            "snapshot_hash": snapshot.snapshot_hash,
        },
    )
    return snapshot
