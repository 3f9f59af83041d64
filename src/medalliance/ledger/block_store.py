"""Append-only block files with a SQLite index; crash safe.

Each block is a record `varint(length) ‖ block bytes` in `blockfile_NNNNNN` (a new file every
64 MiB). A block is written and fsynced before its index rows commit, so after a crash the file
may be ahead of the index (the trailing complete records are indexed again on open) or end in a
torn record (it is cut off, with a warning). The index maps block numbers to file positions and
every tx id to (block, position, validation code); for a repeated tx id it keeps the first, as
Fabric does.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from fabric_protos.common import common_pb2
from google.protobuf.internal.decoder import _DecodeVarint
from google.protobuf.internal.encoder import _VarintBytes

from medalliance.errors import InvalidArgument, MalformedMessage, PreconditionFailed, UnknownBlock
from medalliance.ledger.block import data_hash, header_hash, parse_block, transactions_filter
from medalliance.ledger.tx import MalformedTransaction, parse_envelope

log = logging.getLogger(__name__)

FILE_SIZE_MAX = 64 * 1024 * 1024
_SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, file INTEGER NOT NULL,
    offset INTEGER NOT NULL, length INTEGER NOT NULL, header_hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS txs (tx_id TEXT PRIMARY KEY, block INTEGER NOT NULL,
    tx_num INTEGER NOT NULL, code INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class TxLocation:
    block_num: int
    tx_num: int
    validation_code: int


def _file_name(index: int) -> str:
    return f"blockfile_{index:06d}"


def _records(path: Path) -> Iterator[tuple[int, int, bytes | None]]:
    """(offset, total length, block bytes) per record; bytes None for a torn tail."""
    data = path.read_bytes()
    pos = 0
    while pos < len(data):
        try:
            length, start = _DecodeVarint(data, pos)
        except IndexError:
            yield pos, len(data) - pos, None
            return
        if start + length > len(data):
            yield pos, len(data) - pos, None
            return
        yield pos, start + length - pos, data[start : start + length]
        pos = start + length


def _tx_id(envelope: bytes) -> str:
    try:
        return parse_envelope(envelope).tx_id
    except MalformedTransaction:
        return ""


def read_block_records(directory: Path) -> Iterator[bytes]:
    """Every stored block's bytes in order, read-only; raises `MalformedMessage` on bad framing."""
    for path in sorted(directory.glob("blockfile_*")):
        for offset, _, record in _records(path):
            if record is None:
                raise MalformedMessage("block file", f"{path.name} is cut off at byte {offset}")
            yield record


class BlockStore:
    """The blocks of one channel ledger."""

    def __init__(self, directory: Path, db: sqlite3.Connection) -> None:
        self._dir = directory
        self._db = db
        row = db.execute(
            "SELECT number, file, offset, length, header_hash FROM blocks ORDER BY number DESC LIMIT 1"
        ).fetchone()
        self._height = 0 if row is None else row[0] + 1
        self._last_hash = b"" if row is None else bytes(row[4])
        self._file_index = 0 if row is None else row[1]

    @classmethod
    def open(cls, directory: Path) -> BlockStore:
        directory.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(directory / "index.db", isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        store = cls(directory, db)
        store._recover()
        return store

    @property
    def height(self) -> int:
        return self._height

    @property
    def last_header_hash(self) -> bytes:
        return self._last_hash

    def append(self, block: common_pb2.Block, tx_ids: Sequence[str] | None = None) -> None:
        """Store the next block durably; raises and writes nothing if it does not follow.

        `tx_ids` (one per envelope, "" where none) spares re-parsing when the caller has them.
        """
        number = int(block.header.number)
        if number != self._height:
            raise PreconditionFailed(f"block {number} cannot follow height {self._height}")
        if bytes(block.header.previous_hash) != self._last_hash:
            raise InvalidArgument(f"previous hash of block {number} does not match the ledger")
        if bytes(block.header.data_hash) != data_hash([bytes(d) for d in block.data.data]):
            raise InvalidArgument(f"data hash of block {number} does not match its transactions")
        data = bytes(block.SerializeToString())
        record = _VarintBytes(len(data)) + data
        path = self._dir / _file_name(self._file_index)
        if path.exists() and path.stat().st_size + len(record) > FILE_SIZE_MAX:
            self._file_index += 1
            path = self._dir / _file_name(self._file_index)
        offset = path.stat().st_size if path.exists() else 0
        with path.open("ab") as f:
            f.write(record)
            f.flush()
            os.fsync(f.fileno())
        self._index(block, self._file_index, offset, len(record), tx_ids)

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
        ids = tx_ids if tx_ids is not None else [_tx_id(bytes(e)) for e in block.data.data]
        rows = []
        for tx_num, tx_id in enumerate(ids):
            if tx_id:
                code = codes[tx_num] if tx_num < len(codes) else 254
                rows.append((tx_id, number, tx_num, code))
        hash_ = header_hash(block.header)
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO blocks VALUES (?, ?, ?, ?, ?)", (number, file, offset, length, hash_)
            )
            self._db.executemany("INSERT OR IGNORE INTO txs VALUES (?, ?, ?, ?)", rows)
        self._height = number + 1
        self._last_hash = hash_

    def _recover(self) -> None:
        """Index complete blocks the index lacks; cut off a torn last record."""
        row = self._db.execute(
            "SELECT file, offset, length FROM blocks ORDER BY number DESC LIMIT 1"
        ).fetchone()
        file, start = (0, 0) if row is None else (row[0], row[1] + row[2])
        indexed = 0
        for path in sorted(self._dir.glob("blockfile_*")):
            index = int(path.name.split("_")[1])
            if index < file:
                continue
            for offset, length, record in _records(path):
                if index == file and offset < start:
                    continue
                if record is None:
                    with path.open("r+b") as f:
                        f.truncate(offset)
                        os.fsync(f.fileno())
                    log.warning(
                        "torn block record cut off", extra={"file": path.name, "bytes": length}
                    )
                    break
                self._index(parse_block(record), index, offset, length)
                indexed += 1
            self._file_index = index
        if indexed:
            log.warning("blocks re-indexed after a crash", extra={"blocks": indexed})

    def get_block_bytes(self, number: int) -> bytes:
        row = self._db.execute(
            "SELECT file, offset, length FROM blocks WHERE number = ?", (number,)
        ).fetchone()
        if row is None:
            raise UnknownBlock(number, self._height)
        with (self._dir / _file_name(row[0])).open("rb") as f:
            f.seek(row[1])
            raw = f.read(row[2])
        _, start = _DecodeVarint(raw, 0)
        return raw[start:]

    def get_block(self, number: int) -> common_pb2.Block:
        return parse_block(self.get_block_bytes(number))

    def iter_blocks(self, start: int = 0) -> Iterator[common_pb2.Block]:
        for number in range(start, self._height):
            yield self.get_block(number)

    def tx_location(self, tx_id: str) -> TxLocation | None:
        row = self._db.execute(
            "SELECT block, tx_num, code FROM txs WHERE tx_id = ?", (tx_id,)
        ).fetchone()
        return None if row is None else TxLocation(row[0], row[1], row[2])

    def contains_tx(self, tx_id: str) -> bool:
        return (
            self._db.execute("SELECT 1 FROM txs WHERE tx_id = ?", (tx_id,)).fetchone() is not None
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> BlockStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
