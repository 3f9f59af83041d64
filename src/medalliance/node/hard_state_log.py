"""The consensus hard state on disk: an append-only log of records, the last one current.

Each record is `length (4 bytes) ‖ CRC-32 (4 bytes) ‖ data`, appended and fsync'd before the
`Ready` that produced it sends anything (consensus-design §2.8). Appending in place costs one
fsync; a write-and-rename would cost two plus the folder's. When the log grows past
`COMPACT_BYTES` it is rewritten with only its last record (write, fsync, rename, fsync folder).

On opening, a torn tail — a record cut short or failing its CRC at the end of the file, as a
crash in the middle of a write leaves it — is cut off. Damage before the tail is not a crash
artefact: the node refuses to start rather than fall back to an older state (amnesia).
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

from medalliance.consensus.hard_state import ConsensusHalted
from medalliance.ledger.block_store import fsync_directory

HEADER = 8
COMPACT_BYTES = 4 * 1024 * 1024


class CorruptLog(ConsensusHalted):
    def __init__(self, path: Path, offset: int) -> None:
        super().__init__(
            f"{path} is damaged at byte {offset}, before its last record; the node stops "
            "rather than use an older consensus state; restore the node's folder from a backup "
            "or remove the node and let it rejoin"
        )


class HardStateLog:
    def __init__(self, path: Path) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._latest, end = _scan(path)
        self._file = path.open("ab")
        self.appends = 0  # fsync'd appends since opening, and their bytes: for /status
        self.bytes_written = 0
        if self._file.tell() != end:  # cut the torn tail, durably
            self._file.truncate(end)
            self._file.seek(end)
            os.fsync(self._file.fileno())

    @property
    def latest(self) -> bytes | None:
        """The last complete record, or None for a new log."""
        return self._latest

    def append(self, data: bytes) -> None:
        record = len(data).to_bytes(4, "big") + zlib.crc32(data).to_bytes(4, "big") + data
        self._file.write(record)
        self._file.flush()
        os.fsync(self._file.fileno())
        self.appends += 1
        self.bytes_written += len(record)
        self._latest = data
        if self._file.tell() > COMPACT_BYTES:
            self._compact(record)

    def close(self) -> None:
        self._file.close()

    def _compact(self, record: bytes) -> None:
        tmp = self._path.with_suffix(".compact")
        with tmp.open("wb") as f:
            f.write(record)
            f.flush()
            os.fsync(f.fileno())
        self._file.close()
        tmp.replace(self._path)
        fsync_directory(self._path.parent)
        self._file = self._path.open("ab")


def _scan(path: Path) -> tuple[bytes | None, int]:
    """(the last good record, the offset where good records end)."""
    if not path.exists():
        return None, 0
    raw = path.read_bytes()
    latest, offset = None, 0
    while offset < len(raw):
        size = int.from_bytes(raw[offset : offset + 4], "big")
        end = offset + HEADER + size
        data = raw[offset + HEADER : end]
        good = (
            offset + HEADER <= len(raw)
            and end <= len(raw)
            and zlib.crc32(data) == int.from_bytes(raw[offset + 4 : offset + 8], "big")
        )
        if not good:
            if end < len(raw) and offset + HEADER <= len(raw):
                raise CorruptLog(path, offset)  # good bytes follow: not a torn tail
            return latest, offset
        latest, offset = data, end
    return latest, offset
