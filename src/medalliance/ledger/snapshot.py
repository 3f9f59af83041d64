"""Ledger snapshots: a channel's public world state, tx ids and chain tip at one block, as files.

After Fabric 2.x's `peer snapshot`: a snapshot folder holds

- `public_state.data` — every (namespace, key, value, version) of the world state, one JSON
  line each in the state hash's order; `public_state_metadata.data` — key metadata (key-level
  endorsement policies);
- `txids.data` — every tx id committed up to the block, with its block, position and validation
  code (a peer joined from the snapshot still refuses a replayed transaction);
- `config.block` — the channel's configuration block in force at the block (Fabric protobuf);
- `_snapshot_signable_metadata.json` — channel, last block number, its header hash and previous
  hash, the state hash, and the SHA-256 of each file above;
- `_snapshot_additional_metadata.json` — the SHA-256 of the signable metadata file (the
  snapshot's hash, which organisations compare out of band, as with Fabric) and who took it.

Private data (the privacy module's package store) and key history are not in a snapshot
(docs/backup.md). This module owns the format, writing one from a ledger folder (consistently
while its peer commits: one read transaction of the state, blocks up to its savepoint only) and
verifying one; `snapshot_join` builds a ledger from it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medalliance.database_url import DatabaseUrl
from medalliance.errors import MalformedMessage, NotFound, PreconditionFailed, SnapshotInvalid
from medalliance.ledger.block import parse_block, transactions_filter
from medalliance.ledger.block_store import BlockStore, TxLocation
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.config_update import is_config_block
from medalliance.ledger.state_rules import MetadataRow, StateExport, StateRow
from medalliance.ledger.validation import VALID
from medalliance.ledger.world_state import open_ledger_state, recorded_location

SIGNABLE = "_snapshot_signable_metadata.json"
ADDITIONAL = "_snapshot_additional_metadata.json"
STATE_FILE = "public_state.data"
METADATA_FILE = "public_state_metadata.data"
TXIDS_FILE = "txids.data"
CONFIG_FILE = "config.block"
DATA_FILES = (STATE_FILE, METADATA_FILE, TXIDS_FILE, CONFIG_FILE)
# A ledger joined from a snapshot keeps a copy of it here: `ledger verify` starts from it.
SNAPSHOT_FOLDER = "snapshot"
_T = TypeVar("_T")
_SHA256_HEX = "^[0-9a-f]{64}$"
_SHA256_HEX_OR_NONE = "^([0-9a-f]{64})?$"


class SignableMetadata(BaseModel):
    """What a snapshot asserts; its file's SHA-256 is the snapshot hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel_name: str
    last_block_number: int = Field(ge=0)
    last_block_hash: str = Field(pattern=_SHA256_HEX)
    previous_block_hash: str = Field(pattern=_SHA256_HEX_OR_NONE)  # none for block 0
    state_hash: str = Field(pattern=_SHA256_HEX)  # state_rules.state_digest
    state_db_type: str  # the backend it was taken from: SQLite or PostgreSQL
    snapshot_files_raw_hashes: dict[str, str]


class AdditionalMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    snapshot_hash: str
    created_at: str
    created_by: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A verified snapshot, read into memory."""

    metadata: SignableMetadata
    snapshot_hash: str
    state: StateExport = field(repr=False)
    txs: tuple[tuple[str, TxLocation], ...] = field(repr=False)
    config_block: bytes = field(repr=False)


def write_snapshot(
    ledger_dir: Path,
    out_dir: Path,
    *,
    created_by: str = "",
    state_database: DatabaseUrl | None = None,
) -> SignableMetadata:
    """Write a snapshot of the ledger at `ledger_dir` at its world state's savepoint into the new
    folder `out_dir` (written aside and renamed: never half there). Safe while the peer runs.

    Raises `NotFound` for a folder holding no ledger, `PreconditionFailed` when `out_dir` exists.
    """
    if out_dir.exists():
        raise PreconditionFailed(f"{out_dir} exists; name a new folder for the snapshot")
    if not (ledger_dir / "blocks" / "index.db").is_file():
        raise NotFound(f"{ledger_dir} is not a ledger directory (it holds no blocks/)")
    location = recorded_location(ledger_dir, state_database)
    state = open_ledger_state(ledger_dir, location)
    try:
        # The state first: its savepoint N is then a block the store already holds (blocks are
        # stored before their writes reach the state), and blocks up to N never change.
        export = state.export_rows()
    finally:
        state.close()
    if export.savepoint < 0:
        raise PreconditionFailed(f"{ledger_dir} holds no committed block yet")
    with BlockStore.open_reader(ledger_dir / "blocks") as store:
        last_hash, previous_hash = store.header_hashes(export.savepoint)
        config_block = config_block_at(store, export.savepoint)
        txs = store.tx_locations(export.savepoint)
    channel = ChannelConfig.from_block(parse_block(config_block)).channel_id
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        _write_lines(work / STATE_FILE, (_state_line(r) for r in export.values))
        _write_lines(work / METADATA_FILE, (_metadata_line(r) for r in export.metadata))
        _write_lines(work / TXIDS_FILE, (_tx_line(tx_id, t) for tx_id, t in txs))
        (work / CONFIG_FILE).write_bytes(config_block)
        signable = SignableMetadata(
            channel_name=channel,
            last_block_number=export.savepoint,
            last_block_hash=last_hash.hex(),
            previous_block_hash=previous_hash.hex(),
            state_hash=export.digest().hex(),
            state_db_type="PostgreSQL" if location.url and location.url.is_postgres else "SQLite",
            snapshot_files_raw_hashes={name: _sha256(work / name) for name in DATA_FILES},
        )
        signable_bytes = signable.model_dump_json(indent=2).encode()
        (work / SIGNABLE).write_bytes(signable_bytes)
        additional = AdditionalMetadata(
            snapshot_hash=hashlib.sha256(signable_bytes).hexdigest(),
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            created_by=created_by,
        )
        (work / ADDITIONAL).write_text(additional.model_dump_json(indent=2), encoding="utf-8")
        work.rename(out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return signable


def snapshot_hash(directory: Path) -> str:
    """The SHA-256 of a snapshot's signable metadata file (what organisations compare)."""
    return _sha256(directory / SIGNABLE)


def snapshot_channel(directory: Path) -> str:
    """The channel a snapshot names, read without verifying it (`read_snapshot` verifies).

    Raises `NotFound` when `directory` is not a snapshot, `SnapshotInvalid` when its metadata
    does not parse."""
    signable = directory / SIGNABLE
    if not signable.is_file():
        raise NotFound(f"{directory} is not a ledger snapshot (no {SIGNABLE})")
    try:
        return SignableMetadata.model_validate_json(signable.read_bytes()).channel_name
    except ValidationError:
        raise SnapshotInvalid(f"{directory}: {SIGNABLE} does not parse") from None


def config_block_at(store: BlockStore, number: int) -> bytes:
    """The bytes of the config block in force after block `number`: the newest valid one at or
    before it, or the snapshot's the ledger began from."""
    base = store.snapshot_base
    first = 0 if base is None else base.first_block
    for n in range(number, first - 1, -1):
        block = store.get_block(n)
        if is_config_block(block) and (n == 0 or transactions_filter(block)[:1] == bytes([VALID])):
            return store.get_block_bytes(n)
    if base is None:
        raise MalformedMessage("ledger", "it holds no config block")
    return base.config_block


def read_snapshot(directory: Path, *, ledger_dir: Path | None = None) -> Snapshot:
    """Read and verify a snapshot: every file's hash, the snapshot hash, the state hash
    recomputed from the rows, the config block's channel; with `ledger_dir`, that the ledger
    holds the snapshot's last block (same header hash and previous hash).

    Raises `SnapshotInvalid` naming the first mismatch (a damaged or forged snapshot), or
    `NotFound` when `directory` is not a snapshot.
    """
    signable_path = directory / SIGNABLE
    if not signable_path.is_file():
        raise NotFound(f"{directory} is not a ledger snapshot (no {SIGNABLE})")
    signable_bytes = signable_path.read_bytes()
    try:
        metadata = SignableMetadata.model_validate_json(signable_bytes)
        additional = AdditionalMetadata.model_validate_json((directory / ADDITIONAL).read_bytes())
    except (ValidationError, OSError) as exc:
        raise SnapshotInvalid(f"{directory}: its metadata files do not parse ({exc})") from None
    snapshot_hash = hashlib.sha256(signable_bytes).hexdigest()
    if additional.snapshot_hash != snapshot_hash:
        raise SnapshotInvalid(f"{directory}: {SIGNABLE} does not match the recorded snapshot hash")
    _check_files(directory, metadata)
    state = StateExport(
        metadata.last_block_number,
        tuple(_rows(directory / STATE_FILE, _parse_state_row)),
        tuple(_rows(directory / METADATA_FILE, _parse_metadata_row)),
    )
    if _unsorted([(r[0], r[1]) for r in state.values]) or _unsorted(
        [(r[0], r[1], r[2]) for r in state.metadata]
    ):
        raise SnapshotInvalid(f"{directory}: its state rows are out of order or repeated")
    if state.digest().hex() != metadata.state_hash:
        raise SnapshotInvalid(f"{directory}: its state rows do not give the recorded state hash")
    config_block = (directory / CONFIG_FILE).read_bytes()
    try:
        block = parse_block(config_block)
        channel = ChannelConfig.from_block(block).channel_id if is_config_block(block) else None
    except MalformedMessage:
        channel = None
    if channel != metadata.channel_name:
        raise SnapshotInvalid(
            f"{directory}: {CONFIG_FILE} is not channel {metadata.channel_name}'s"
        )
    txs = tuple(_rows(directory / TXIDS_FILE, _parse_tx_row))
    if ledger_dir is not None:
        _check_against_ledger(metadata, ledger_dir)
    return Snapshot(metadata, snapshot_hash, state, txs, config_block)


def _check_files(directory: Path, metadata: SignableMetadata) -> None:
    listed = set(metadata.snapshot_files_raw_hashes)
    if listed != set(DATA_FILES):
        raise SnapshotInvalid(f"{directory}: its metadata lists {sorted(listed)}")
    present = {p.name for p in directory.iterdir()} - {SIGNABLE, ADDITIONAL}
    if present != listed:
        raise SnapshotInvalid(
            f"{directory}: holds {sorted(present - listed)} and lacks {sorted(listed - present)}"
        )
    for name, recorded in sorted(metadata.snapshot_files_raw_hashes.items()):
        if _sha256(directory / name) != recorded:
            raise SnapshotInvalid(f"{directory}: {name} does not match its SHA-256 in {SIGNABLE}")


def _check_against_ledger(metadata: SignableMetadata, ledger_dir: Path) -> None:
    number = metadata.last_block_number
    with BlockStore.open_reader(ledger_dir / "blocks") as store:
        if number >= store.height:
            raise SnapshotInvalid(
                f"the snapshot is at block {number}; {ledger_dir} holds blocks up to "
                f"{store.height - 1} only"
            )
        last_hash, previous_hash = store.header_hashes(number)
    if (last_hash.hex(), previous_hash.hex()) != (
        metadata.last_block_hash,
        metadata.previous_block_hash,
    ):
        raise SnapshotInvalid(
            f"the snapshot's block {number} hashes differ from block {number} of {ledger_dir}"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_lines(path: Path, lines: Iterator[str]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _state_line(row: StateRow) -> str:
    ns, key, value, block_num, tx_num = row
    return json.dumps([ns, key, _b64(value), block_num, tx_num])


def _metadata_line(row: MetadataRow) -> str:
    ns, key, name, value = row
    return json.dumps([ns, key, name, _b64(value)])


def _tx_line(tx_id: str, location: TxLocation) -> str:
    return json.dumps([tx_id, location.block_num, location.tx_num, location.validation_code])


def _rows(path: Path, parse: Callable[[object], _T]) -> Iterator[_T]:
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            try:
                yield parse(json.loads(line))
            except (ValueError, TypeError, binascii.Error):
                raise SnapshotInvalid(f"{path.name} line {number} is not a valid row") from None


def _fields(row: object, count: int) -> list[object]:
    if not isinstance(row, list) or len(row) != count:
        raise ValueError
    return row


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError
    return value


def _bytes(value: object) -> bytes:
    return base64.b64decode(_text(value), validate=True)


def _parse_state_row(row: object) -> StateRow:
    ns, key, value, block_num, tx_num = _fields(row, 5)
    return _text(ns), _text(key), _bytes(value), _int(block_num), _int(tx_num)


def _parse_metadata_row(row: object) -> MetadataRow:
    ns, key, name, value = _fields(row, 4)
    return _text(ns), _text(key), _text(name), _bytes(value)


def _parse_tx_row(row: object) -> tuple[str, TxLocation]:
    tx_id, block_num, tx_num, code = _fields(row, 4)
    return _text(tx_id), TxLocation(_int(block_num), _int(tx_num), _int(code))


def _unsorted(keys: list[tuple[str, ...]]) -> bool:
    encoded = [tuple(part.encode() for part in key) for key in keys]
    return any(a >= b for a, b in itertools.pairwise(encoded))
