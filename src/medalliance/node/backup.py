"""Online backup of a node's folder, and restoring it (docs/backup.md).

A backup is taken while the node runs. Each SQLite database (world state, block index, private
package store) is copied with SQLite's online backup API, which reads one consistent snapshot of
it; the append-only files (block files, documents, logs) are copied after the databases. The
order makes the copy one the node could have left after a crash, which it repairs on start:
a world state is copied before its block index (blocks are stored before their writes reach the
state), so the restored state is never ahead of the restored blocks, and the peer replays the
blocks it lacks; a block file is copied after its index, so it holds every indexed block (a
block being written at that moment is a torn tail the store cuts off on open).

The copy is then cut back to the copied world state's block: blocks after it are pulled from
the ordering service again after a restore, through the commit path and its listeners.

A world state on PostgreSQL is not in the folder: restoring clears the peer's schema so that the
peer rebuilds it from the restored blocks (for a ledger joined from a snapshot that is impossible:
use `pg_dump`/`pg_restore` of the schema, taken after the folder's backup).

An ordering node's backup can be taken but is not restored: its consensus hard state from the
backup would let it vote again in views it voted in after the backup (equivocation, breaking
BFT safety); replace a lost ordering node by a new one (`network add-orderer`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import shutil
import sqlite3
import tarfile
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from medalliance.database_url import DatabaseUrl
from medalliance.errors import NotFound, PreconditionFailed, SnapshotInvalid
from medalliance.ledger.world_state import LOCATION_FILE, open_ledger_state, recorded_location
from medalliance.node.config import load_node_file

MANIFEST = "backup.json"
_SKIPPED_SUFFIXES = ("-wal", "-shm", "-journal", ".tmp")
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")


class LedgerEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str
    state: str  # "sqlite" (in the backup) or "postgresql" (rebuilt from blocks on restore)


class BackupManifest(BaseModel):
    """`backup.json`: what the backup holds and each file's SHA-256."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node: str
    role: str
    created_at: str
    ledgers: list[LedgerEntry]
    files: dict[str, str]


def backup_node(config: Path, out: Path) -> BackupManifest:
    """Back up the node of `config` (its `nodes/<host>/node.yaml`) into `out`: a new folder, or
    an archive when `out` ends in .tar.gz or .tgz. Safe while the node runs.

    Raises `PreconditionFailed` when `out` exists, `ConfigError` for a bad node file.
    """
    spec, _ = load_node_file(config)
    node_dir = config.resolve().parent
    if out.exists():
        raise PreconditionFailed(f"{out} exists; name a new file or folder for the backup")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        files = _copy_node(node_dir, work)
        ledgers = [
            LedgerEntry(
                channel=d.name, state="postgresql" if (d / LOCATION_FILE).exists() else "sqlite"
            )
            for d in sorted((work / "ledgers").glob("*"))
            if d.is_dir()
        ]
        manifest = BackupManifest(
            node=node_dir.name,
            role=spec.role,
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            ledgers=ledgers,
            files=files,
        )
        (work / MANIFEST).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
        if out.name.endswith(_ARCHIVE_SUFFIXES):
            # It holds the private package store: readable by the node's user only.
            out.touch(mode=0o600)
            with tarfile.open(out, "w:gz") as archive:
                for path in sorted(work.rglob("*")):
                    archive.add(path, arcname=str(path.relative_to(work)), recursive=False)
            shutil.rmtree(work)
        else:
            work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if out.is_file():  # a half-written archive (`out` did not exist before)
            out.unlink()
        raise
    return manifest


def restore_node(
    backup: Path, config: Path, *, state_database: DatabaseUrl | None = None
) -> BackupManifest:
    """Restore a peer's backup into the folder of `config` (its node.yaml), whose node must be
    stopped and whose ledgers/ must be gone (moved away by the operator). A ledger whose state
    is on PostgreSQL has its schema cleared, to be rebuilt from the blocks: `state_database`
    replaces the URL the ledger recorded (which has no password).

    Raises `SnapshotInvalid` (nothing written) for a backup whose files do not match its
    manifest or that belongs to another node, `PreconditionFailed` for an ordering node's
    backup or a folder that still holds ledgers.
    """
    node_dir = config.resolve().parent
    load_node_file(config)
    with tempfile.TemporaryDirectory(prefix=".restore.", dir=node_dir.parent) as scratch:
        source = _unpacked(backup, Path(scratch))
        manifest = _checked_manifest(source)
        if manifest.node != node_dir.name:
            raise SnapshotInvalid(
                f"{backup} is a backup of {manifest.node}, not of {node_dir.name}"
            )
        if manifest.role != "peer":
            raise PreconditionFailed(
                "an ordering node is not restored from a backup: it could vote again in views "
                "it voted in after the backup; add a new ordering node instead "
                "(`medalliance network add-orderer`, docs/backup.md)"
            )
        ledgers = node_dir / "ledgers"
        if ledgers.exists() and any(ledgers.iterdir()):
            raise PreconditionFailed(
                f"{ledgers} still holds ledgers; stop the node and move the folder away first"
            )
        for name in sorted(manifest.files):
            target = node_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            for journal in _SKIPPED_SUFFIXES[:3]:  # a killed node's WAL belongs to the old file
                target.with_name(target.name + journal).unlink(missing_ok=True)
            shutil.copy2(source / name, target)
    for entry in manifest.ledgers:
        if entry.state == "postgresql":
            _clear_postgres_state(ledgers / entry.channel, state_database)
    return manifest


def _copy_node(node_dir: Path, work: Path) -> dict[str, str]:
    """Copy a node folder into `work` in the order the module docstring explains; returns
    each copied file's SHA-256 by relative path."""
    paths = sorted(
        p
        for p in node_dir.rglob("*")
        if p.is_file() and not p.name.endswith(_SKIPPED_SUFFIXES) and not _is_scratch(p, node_dir)
    )
    states = [p for p in paths if p.name == "state.db"]
    databases = [p for p in paths if p.suffix == ".db" and p.name != "state.db"]
    others = [p for p in paths if p.suffix != ".db"]
    for path in [*states, *databases]:
        _backup_database(path, work / path.relative_to(node_dir))
    for path in others:
        target = work / path.relative_to(node_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    for state in states:
        _trim_to_state(work / state.relative_to(node_dir).parent)
    return {str(p.relative_to(work)): _sha256(p) for p in sorted(work.rglob("*")) if p.is_file()}


def _trim_to_state(ledger: Path) -> None:
    """Cut a copied ledger's blocks back to its copied world state's savepoint N.

    The restored peer then pulls blocks N + 1... from the ordering service and commits them
    with its commit listeners, rather than replaying them from its own store without them: a
    private-data erasure in one of those blocks deletes the package again (docs/backup.md).
    """
    blocks = ledger / "blocks"
    if not (blocks / "index.db").is_file():
        return
    with contextlib.closing(sqlite3.connect(ledger / "state.db")) as db:
        row = db.execute("SELECT block_num FROM savepoint WHERE id = 0").fetchone()
    if row is None:
        return
    savepoint = int(row[0])
    with contextlib.closing(sqlite3.connect(blocks / "index.db")) as db, db:
        tip = db.execute(
            "SELECT file, offset + length FROM blocks WHERE number = ?", (savepoint,)
        ).fetchone()
        db.execute("DELETE FROM blocks WHERE number > ?", (savepoint,))
        db.execute("DELETE FROM txs WHERE block > ?", (savepoint,))
    # No row for N: a ledger joined from a snapshot at N that stored no block since.
    tip_file, tip_end = (-1, 0) if tip is None else (int(tip[0]), int(tip[1]))
    for path in sorted(blocks.glob("blockfile_*")):
        number = int(path.name.removeprefix("blockfile_"))
        if number > tip_file:
            path.unlink()
        elif number == tip_file:
            with path.open("r+b") as f:
                f.truncate(tip_end)


def _is_scratch(path: Path, node_dir: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(node_dir).parts)


def _backup_database(path: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(path)  # only read; a read-only open of a WAL file can fail
    try:
        source.execute("PRAGMA busy_timeout = 10000")
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)  # all pages in one step: one read transaction, one snapshot
        finally:
            copy.close()
    finally:
        source.close()


def _unpacked(backup: Path, scratch: Path) -> Path:
    if backup.is_dir():
        return backup
    if not backup.is_file():
        raise NotFound(f"no backup at {backup}")
    try:
        with tarfile.open(backup) as archive:
            archive.extractall(scratch, filter="data")  # no paths outside, no devices or links
    except (tarfile.TarError, OSError) as exc:
        raise SnapshotInvalid(f"{backup} is not a readable backup archive ({exc})") from None
    return scratch


def _checked_manifest(source: Path) -> BackupManifest:
    try:
        manifest = BackupManifest.model_validate_json((source / MANIFEST).read_bytes())
    except (OSError, ValidationError):
        raise SnapshotInvalid(f"the backup has no readable {MANIFEST}") from None
    present = {str(p.relative_to(source)) for p in source.rglob("*") if p.is_file()} - {MANIFEST}
    if present != set(manifest.files):
        raise SnapshotInvalid(
            f"the backup holds {sorted(present - set(manifest.files))[:5]} and lacks "
            f"{sorted(set(manifest.files) - present)[:5]} against its manifest"
        )
    for name, recorded in sorted(manifest.files.items()):
        if _sha256(source / name) != recorded:
            raise SnapshotInvalid(f"the backup's {name} does not match its SHA-256 in {MANIFEST}")
    return manifest


def _clear_postgres_state(ledger_dir: Path, override: DatabaseUrl | None) -> None:
    """Empty a restored ledger's PostgreSQL state: the peer rebuilds it from the blocks."""
    state = open_ledger_state(ledger_dir, recorded_location(ledger_dir, override))
    try:
        state.clear()
    finally:
        state.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
