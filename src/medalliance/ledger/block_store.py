"""Append-only block files with a SQLite index; crash safe.

Each block is a record `varint(length) ‖ block bytes` in `blockfile_NNNNNN` (a new file once the
next record would pass 64 MiB). A block is written and fsynced before its index rows commit, so
after a crash the file may be ahead of the index (the trailing complete blocks are indexed again
on open) or end in a torn record (it is cut off, with a warning). Only the tail of the last file
is ever cut: damage anywhere else makes `open` raise `MalformedMessage` rather than lose blocks.
The index is written without an fsync per commit (`synchronous=NORMAL`): it is derivable from
the fsynced files, so a commit a power failure loses only leaves trailing blocks to index again
on open, and the index is never ahead of the files. Only a snapshot's base and tx ids, which no
block file holds, are committed with an fsync.

The index maps block numbers to file positions and every tx id to (block, position, validation
code); for a repeated tx id it keeps the first, as Fabric does (later ones are DUPLICATE_TXID).

A store joined from a ledger snapshot (docs/backup.md) begins at block `first_block` = N + 1:
its `snapshot_base` row holds block N's header hash (which block N + 1 must name as its
previous hash), the channel's config block as of N, and its tx index holds the snapshot's tx ids
(duplicate detection); earlier blocks are not here and reads of them raise `BlockBeforeSnapshot`.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fabric_protos.common import common_pb2

from medalliance.errors import (
    BlockBeforeSnapshot,
    InvalidArgument,
    MalformedMessage,
    NotFound,
    PreconditionFailed,
    UnknownBlock,
)
from medalliance.ledger.block import (
    data_hash,
    envelope_tx_id,
    header_hash,
    parse_block,
    transactions_filter,
)
from medalliance.ledger.block_encoding import block_bytes, varint

log = logging.getLogger(__name__)

FILE_SIZE_MAX = 64 * 1024 * 1024
NOT_VALIDATED = 254  # TxValidationCode for a block stored without a transactions filter
_FILE_NAME = re.compile(r"blockfile_(\d{6})")
_VARINT_MAX_BYTES = 10  # a uint64
_IN_BATCH = 500  # tx ids per `IN (...)`: well under SQLite's limit on bound parameters
_SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, file INTEGER NOT NULL,
    offset INTEGER NOT NULL, length INTEGER NOT NULL, header_hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS txs (tx_id TEXT PRIMARY KEY, block INTEGER NOT NULL,
    tx_num INTEGER NOT NULL, code INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot_base (id INTEGER PRIMARY KEY CHECK (id = 0),
    first_block INTEGER NOT NULL, last_hash BLOB NOT NULL, previous_hash BLOB NOT NULL,
    config_block BLOB NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class TxLocation:
    block_num: int
    tx_num: int
    validation_code: int


@dataclass(frozen=True, slots=True)
class SnapshotBase:
    """Where a ledger joined from a snapshot begins: block `first_block - 1` is the snapshot's."""

    first_block: int
    last_hash: bytes  # the header hash of block first_block - 1
    previous_hash: bytes  # that block's previous hash, as the snapshot recorded it
    config_block: bytes = field(repr=False)  # the channel's config block as of the snapshot


@dataclass(frozen=True, slots=True)
class _Record:
    """One framed record of a block file: `body` None when its framing is broken (`problem`)."""

    offset: int
    length: int  # the whole record, length prefix included
    body: bytes | None
    problem: str = ""


def _read_varint(data: bytes, pos: int) -> tuple[int, int] | str:
    """(value, position after it), or what is wrong with the bytes at `pos`."""
    value = 0
    for i in range(_VARINT_MAX_BYTES):
        if pos + i >= len(data):
            return "the length prefix is cut off"
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            return value, pos + i + 1
    return "the length prefix is longer than ten bytes"


def _scan(data: bytes, pos: int = 0) -> Iterator[_Record]:
    """The records of a block file from `pos`; a broken one ends the scan (it reaches the end)."""
    while pos < len(data):
        decoded = _read_varint(data, pos)
        if isinstance(decoded, str):
            yield _Record(pos, len(data) - pos, None, decoded)
            return
        length, start = decoded
        if start + length > len(data):
            yield _Record(pos, len(data) - pos, None, "the record runs past the end of the file")
            return
        yield _Record(pos, start + length - pos, data[start : start + length])
        pos = start + length


def _file_name(index: int) -> str:
    return f"blockfile_{index:06d}"


def _block_files(directory: Path) -> list[tuple[int, Path]]:
    found = (
        (int(m.group(1)), p)
        for p in directory.glob("blockfile_*")
        if (m := _FILE_NAME.fullmatch(p.name))
    )
    return sorted(found)


def read_block_records(directory: Path) -> Iterator[bytes]:
    """Every stored block's bytes in file order, for auditing a ledger without trusting its index.

    Read-only: no index, no recovery, nothing truncated. Raises `MalformedMessage` at the first
    record whose framing is broken (a torn tail included); the bytes are not parsed as blocks.
    """
    for _, path in _block_files(directory):
        for record in _scan(path.read_bytes()):
            if record.body is None:
                raise MalformedMessage(
                    "block file", f"{path.name} at byte {record.offset}: {record.problem}"
                )
            yield record.body


def _truncate(path: Path, size: int) -> None:
    with path.open("r+b") as f:
        f.truncate(size)
        os.fsync(f.fileno())


def fsync_directory(directory: Path) -> None:
    """Make a new file's directory entry durable, not only its contents."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlockStore:
    """The blocks of one channel ledger. Safe to share between threads (one lock serialises)."""

    def __init__(self, directory: Path, db: sqlite3.Connection) -> None:
        self._dir = directory
        self._db = db
        self._lock = threading.RLock()
        self._height = 0
        self._last_hash = b""
        self._file_index = 0
        self._base: SnapshotBase | None = None
        self._load_tip()

    @classmethod
    def open(cls, directory: Path) -> BlockStore:
        """Open (creating) a store; brings the index up to date with the files after a crash."""
        directory.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(directory / "index.db", isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # see the module's docstring
            db.executescript(_SCHEMA)
            store = cls(directory, db)
            store._recover()
        except BaseException:
            db.close()
            raise
        return store

    @classmethod
    def open_reader(cls, directory: Path) -> BlockStore:
        """Open another process's store to read the blocks its index holds, while it runs.

        No recovery: a block the owner is writing at this moment looks like a torn tail, and
        only the owner may cut one. Never `append` to a reader. Raises `NotFound` when there is
        no store at `directory`.
        """
        if not (directory / "index.db").is_file():
            raise NotFound(f"{directory} holds no block store (no index.db)")
        db = sqlite3.connect(directory / "index.db", isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA busy_timeout = 10000")
            has_base = db.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'snapshot_base'"
            ).fetchone()
            if has_base is None:  # a ledger older than snapshots: a write, so only then
                db.executescript(_SCHEMA)
            return cls(directory, db)
        except BaseException:
            db.close()
            raise

    @property
    def height(self) -> int:
        """The next block's number: the blocks stored (and those before a snapshot it began at)."""
        return self._height

    @property
    def first_block(self) -> int:
        """The first block this store holds: 0, or N + 1 for a ledger joined from a snapshot."""
        return 0 if self._base is None else self._base.first_block

    @property
    def snapshot_base(self) -> SnapshotBase | None:
        """Where the ledger begins when it was joined from a snapshot; None from genesis."""
        return self._base

    def start_from_snapshot(
        self, base: SnapshotBase, txs: Sequence[tuple[str, TxLocation]]
    ) -> None:
        """Make an empty store begin after a snapshot's block, holding the snapshot's tx ids.

        One database transaction: on any failure the store stays empty. Raises
        `PreconditionFailed` when the store already holds blocks or a snapshot base.
        """
        with self._lock:
            if self._height or self._base is not None or _block_files(self._dir):
                raise PreconditionFailed(
                    f"{self._dir} already holds a ledger; join a snapshot into an empty folder"
                )
            rows = [(tx_id, t.block_num, t.tx_num, t.validation_code) for tx_id, t in txs]
            # durable before any block follows it: no block file could rebuild it
            self._db.execute("PRAGMA synchronous=FULL")
            try:
                with self._db:
                    self._db.execute("BEGIN")
                    self._db.execute(
                        "INSERT INTO snapshot_base VALUES (0, ?, ?, ?, ?)",
                        (base.first_block, base.last_hash, base.previous_hash, base.config_block),
                    )
                    self._db.executemany("INSERT OR IGNORE INTO txs VALUES (?, ?, ?, ?)", rows)
            finally:
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._load_tip()

    def tx_locations(self, through_block: int) -> list[tuple[str, TxLocation]]:
        """Every indexed tx id of blocks up to `through_block` (a snapshot's tx id list)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT tx_id, block, tx_num, code FROM txs WHERE block <= ? ORDER BY tx_id",
                (through_block,),
            ).fetchall()
        return [(r[0], TxLocation(r[1], r[2], r[3])) for r in rows]

    def header_hashes(self, number: int) -> tuple[bytes, bytes]:
        """(header hash, previous hash) of block `number`, also for a snapshot's own block."""
        base = self._base
        if base is not None and number == base.first_block - 1:
            return base.last_hash, base.previous_hash
        header = self.get_block(number).header
        return header_hash(header), bytes(header.previous_hash)

    @property
    def last_header_hash(self) -> bytes:
        """The header hash of the last block, b"" when the store is empty."""
        return self._last_hash

    def append(
        self,
        block: common_pb2.Block,
        tx_ids: Sequence[str] | None = None,
        *,
        data_hash_checked: bool = False,
        envelopes: Sequence[bytes] | None = None,
    ) -> None:
        """Store the next block durably; raises and writes nothing if it does not follow.

        Raises `PreconditionFailed` for a number other than `height`, `InvalidArgument` for a
        wrong previous hash or data hash. `tx_ids` (one per envelope, "" where none) spares
        re-parsing the envelopes when the caller already has them; `data_hash_checked` spares
        hashing them again when the caller has just checked the data hash of this very block
        (the hash of a 500-transaction block is ≈ 1.5 MB of SHA-256). `envelopes`: the bytes of
        `block.data.data` in order, when the caller holds them; the record is then assembled
        around them rather than re-encoded (`block_encoding.block_bytes`).
        """
        with self._lock:
            number = int(block.header.number)
            if number != self._height:
                raise PreconditionFailed(f"block {number} cannot follow height {self._height}")
            if bytes(block.header.previous_hash) != self._last_hash:
                raise InvalidArgument(f"previous hash of block {number} does not match the ledger")
            if envelopes is None:
                envelopes = [bytes(d) for d in block.data.data]
            if not data_hash_checked and bytes(block.header.data_hash) != data_hash(envelopes):
                raise InvalidArgument(
                    f"data hash of block {number} does not match its transactions"
                )
            if tx_ids is not None and len(tx_ids) != len(block.data.data):
                raise InvalidArgument(
                    f"{len(tx_ids)} tx ids given for the {len(block.data.data)} transactions "
                    f"of block {number}"
                )
            data = block_bytes(block, envelopes)
            prefix = varint(len(data))
            record_size = len(prefix) + len(data)
            file_index = self._file_index
            path = self._dir / _file_name(file_index)
            size = path.stat().st_size if path.exists() else 0
            if size and size + record_size > FILE_SIZE_MAX:
                file_index, size = file_index + 1, 0
                path = self._dir / _file_name(file_index)
            created = not path.exists()
            try:
                with path.open("ab") as f:
                    f.write(prefix)  # two writes: not a 2.5 MB concatenation
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                if created:
                    fsync_directory(self._dir)
                self._index(block, file_index, size, record_size, tx_ids)
            except BaseException:
                # The caller is told the block was not stored: leave no record behind that a
                # later append would bury mid-file (rollback of a partial write or of the index).
                if path.exists():
                    _truncate(path, size)
                raise
            self._file_index = file_index

    def _index(
        self,
        block: common_pb2.Block,
        file: int,
        offset: int,
        length: int,
        tx_ids: Sequence[str] | None = None,
    ) -> None:
        number = int(block.header.number)
        codes = transactions_filter(block)
        ids = tx_ids if tx_ids is not None else [envelope_tx_id(bytes(e)) for e in block.data.data]
        rows = [
            (tx_id, number, tx_num, codes[tx_num] if tx_num < len(codes) else NOT_VALIDATED)
            for tx_num, tx_id in enumerate(ids)
            if tx_id
        ]
        hash_ = header_hash(block.header)
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO blocks VALUES (?, ?, ?, ?, ?)", (number, file, offset, length, hash_)
            )
            # OR IGNORE: a tx id seen before keeps its first location (Fabric's rule).
            self._db.executemany("INSERT OR IGNORE INTO txs VALUES (?, ?, ?, ?)", rows)
        self._height = number + 1
        self._last_hash = hash_

    def _load_tip(self) -> None:
        base = self._db.execute(
            "SELECT first_block, last_hash, previous_hash, config_block FROM snapshot_base"
        ).fetchone()
        if base is not None:
            self._base = SnapshotBase(base[0], bytes(base[1]), bytes(base[2]), bytes(base[3]))
            self._height, self._last_hash = self._base.first_block, self._base.last_hash
        row = self._db.execute(
            "SELECT number, file, header_hash FROM blocks ORDER BY number DESC LIMIT 1"
        ).fetchone()
        if row is not None:
            self._height, self._file_index, self._last_hash = row[0] + 1, row[1], bytes(row[2])

    def _recover(self) -> None:
        """Index complete blocks the index lacks; cut off a torn or unwritten tail."""
        row = self._db.execute(
            "SELECT file, offset + length FROM blocks ORDER BY number DESC LIMIT 1"
        ).fetchone()
        tip_file, tip_end = (0, 0) if row is None else (row[0], row[1])
        files = [(i, p) for i, p in _block_files(self._dir) if i >= tip_file]
        if row is not None and (not files or files[0][0] != tip_file):
            raise MalformedMessage(
                "block store", f"{_file_name(tip_file)} named by the index is missing"
            )
        reindexed = 0
        for position, (index, path) in enumerate(files):
            data = path.read_bytes()
            start = tip_end if index == tip_file else 0
            if len(data) < start:
                raise MalformedMessage(
                    "block store", f"{path.name} is shorter than its index says ({len(data)} bytes)"
                )
            for record in _scan(data, start):
                problem = record.problem or self._not_next(record.body)
                if not problem:
                    assert record.body is not None
                    self._index(parse_block(record.body), index, record.offset, record.length)
                    reindexed += 1
                    continue
                is_tail = position == len(files) - 1 and (
                    record.offset + record.length == len(data)
                    or not any(data[record.offset :])  # a tail the crash left as zeros
                )
                if not is_tail:
                    raise MalformedMessage(
                        "block store",
                        f"{path.name} at byte {record.offset}: {problem}; not a crash's torn tail, "
                        "so nothing was cut: restore the ledger from a peer",
                    )
                _truncate(path, record.offset)
                log.warning(
                    "cut off a torn record of %d bytes at the end of %s (%s)",
                    len(data) - record.offset,
                    path.name,
                    problem,
                )
                break
            self._file_index = index
        if reindexed:
            log.warning("indexed %d blocks the index lacked after a crash", reindexed)

    def _not_next(self, body: bytes | None) -> str:
        """Why a record found past the index is not the next block, or "" if it is."""
        assert body is not None
        try:
            block = parse_block(body)
        except MalformedMessage:
            return "the record is not a block"
        if int(block.header.number) != self._height:
            return f"block {block.header.number} where {self._height} was expected"
        if bytes(block.header.previous_hash) != self._last_hash:
            return f"block {self._height} does not link to the block before it"
        if bytes(block.header.data_hash) != data_hash([bytes(d) for d in block.data.data]):
            return f"the data hash of block {self._height} does not match its transactions"
        return ""

    def get_block_bytes(self, number: int) -> bytes:
        """The stored bytes of block `number`; `UnknownBlock` past the height.

        Raises `MalformedMessage` when the record on disk no longer has the framing it was
        written with (a damaged file).
        """
        with self._lock:
            row = self._db.execute(
                "SELECT file, offset, length FROM blocks WHERE number = ?", (number,)
            ).fetchone()
            if row is None:
                if number < self.first_block:
                    raise BlockBeforeSnapshot(number, self.first_block)
                raise UnknownBlock(number, self._height)
            file, offset, length = row
            with (self._dir / _file_name(file)).open("rb") as f:
                f.seek(offset)
                raw = f.read(length)
        decoded = _read_varint(raw, 0)
        if isinstance(decoded, str) or decoded[1] + decoded[0] != length or len(raw) != length:
            raise MalformedMessage("block", f"the stored record of block {number} is damaged")
        return raw[decoded[1] :]

    def get_block(self, number: int) -> common_pb2.Block:
        """Block `number`, parsed; `UnknownBlock` past the height, `MalformedMessage` if damaged."""
        return parse_block(self.get_block_bytes(number))

    def iter_blocks(self, start: int = 0) -> Iterator[common_pb2.Block]:
        """Blocks from `start` up to the height at each step (blocks appended meanwhile included)."""
        number = start
        while number < self._height:
            yield self.get_block(number)
            number += 1

    def tx_location(self, tx_id: str) -> TxLocation | None:
        """Where the first transaction with `tx_id` is, and its validation code; None if absent."""
        with self._lock:
            row = self._db.execute(
                "SELECT block, tx_num, code FROM txs WHERE tx_id = ?", (tx_id,)
            ).fetchone()
        return None if row is None else TxLocation(row[0], row[1], row[2])

    def contains_tx(self, tx_id: str) -> bool:
        """Whether any stored transaction, valid or not, carries `tx_id`."""
        with self._lock:
            found = self._db.execute("SELECT 1 FROM txs WHERE tx_id = ?", (tx_id,)).fetchone()
        return found is not None

    def committed_among(self, tx_ids: Sequence[str]) -> frozenset[str]:
        """Which of `tx_ids` any stored transaction carries: a block's duplicate check in a few
        statements instead of one per transaction."""
        distinct = list(dict.fromkeys(tx_ids))
        found: set[str] = set()
        with self._lock:
            for i in range(0, len(distinct), _IN_BATCH):
                chunk = distinct[i : i + _IN_BATCH]
                rows = self._db.execute(
                    f"SELECT tx_id FROM txs WHERE tx_id IN ({', '.join('?' * len(chunk))})",  # noqa: S608 - placeholders only
                    chunk,
                )
                found.update(str(row[0]) for row in rows)
        return frozenset(found)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> BlockStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
