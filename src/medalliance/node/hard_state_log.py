"""The consensus hard state on disk: an append-only log of records, the last state current.

Each record is `length (4 bytes) ‖ CRC-32 (4 bytes) ‖ data`; its data's first byte says what
it is: `S` a hard state, `B` a block body (`B ‖ id length (1 byte) ‖ value id ‖ body`), `{` a
JSON hard state of the previous release (read, never written). A hard state names its values
by id: a body is written once, with the first state that refers to it, and later states of the
height refer to it without writing it again. One `append` writes the new bodies and the state
and fsyncs once, before the `Ready` that produced it sends anything (consensus-design §2.8).
Appending in place costs one fsync; a write-and-rename would cost two plus the folder's. When
the log grows past `COMPACT_BYTES` it is rewritten with only the last state and the bodies it
refers to (write, fsync, rename, fsync folder).

On opening, a torn tail — a record cut short or failing its CRC at the end of the file, or
only zero bytes where the file grew, as a crash in the middle of a write leaves it — is cut
off: the state before it, whose bodies were fsync'd with or before it, is current. Damage
before the tail is not a crash artefact: the node refuses to start rather than fall back to an
older state (amnesia).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from medalliance.consensus.hard_state import ConsensusHalted
from medalliance.ledger.block_store import fsync_directory

HEADER = 8
COMPACT_BYTES = 4 * 1024 * 1024
STATE, BODY, LEGACY_STATE = b"S", b"B", b"{"
MAX_ID = 255  # a value id's length fits one byte


class CorruptLog(ConsensusHalted):
    def __init__(self, path: Path, offset: int, problem: str = "") -> None:
        super().__init__(
            problem
            or f"{path} is damaged at byte {offset}, before its last record; the node stops "
            "rather than use an older consensus state; restore the node's folder from a backup "
            "or remove the node and let it rejoin"
        )


class UnknownRecord(CorruptLog):
    """An intact record this release cannot read: a newer release wrote the log."""

    def __init__(self, path: Path, offset: int) -> None:
        super().__init__(
            path,
            offset,
            f"{path} holds a record at byte {offset} that this release does not know, written "
            "by a newer release; run that release again (downgrading a node in place is not "
            "supported)",
        )


@dataclass(frozen=True, slots=True)
class Stored:
    """The current hard state's bytes and block bodies by id (those it refers to, maybe more)."""

    state: bytes
    bodies: Mapping[bytes, bytes]


class HardStateLog:
    def __init__(self, path: Path) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._latest, end = _scan(path)
        # bodies in the file since the last compaction: not written again
        self._written: set[bytes] = set(self._latest.bodies) if self._latest else set()
        self._file = path.open("ab")
        self.appends = 0  # fsync'd appends since opening, and their bytes: for /status
        self.bytes_written = 0
        if self._file.tell() != end:  # cut the torn tail, durably
            self._file.truncate(end)
            self._file.seek(end)
            os.fsync(self._file.fileno())

    @property
    def latest(self) -> Stored | None:
        """The last complete state with its bodies, or None for a new log."""
        return self._latest

    def append(self, state: bytes, bodies: Mapping[bytes, bytes] | None = None) -> None:
        """Make `state` current, durably; `bodies` are all the block bodies it refers to."""
        bodies = dict(bodies or {})
        new = [_record(BODY + _body(i, b)) for i, b in bodies.items() if i not in self._written]
        data = b"".join([*new, _record(STATE + state)])
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())
        self.appends += 1
        self.bytes_written += len(data)
        self._written.update(bodies)
        self._latest = Stored(state, bodies)
        if self._file.tell() > COMPACT_BYTES:
            self._compact(self._latest)

    def close(self) -> None:
        self._file.close()

    def _compact(self, latest: Stored) -> None:
        tmp = self._path.with_suffix(".compact")
        bodies = [_record(BODY + _body(i, b)) for i, b in latest.bodies.items()]
        with tmp.open("wb") as f:
            f.write(b"".join([*bodies, _record(STATE + latest.state)]))
            f.flush()
            os.fsync(f.fileno())
        self._file.close()
        tmp.replace(self._path)
        fsync_directory(self._path.parent)
        self._file = self._path.open("ab")
        self._written = set(latest.bodies)


def _record(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + zlib.crc32(data).to_bytes(4, "big") + data


def _body(value_id: bytes, body: bytes) -> bytes:
    if not 0 < len(value_id) <= MAX_ID:
        raise ValueError(f"a value id of {len(value_id)} bytes")
    return bytes((len(value_id),)) + value_id + body


def _scan(path: Path) -> tuple[Stored | None, int]:
    """(the last good state with the bodies before it, the offset where good records end)."""
    if not path.exists():
        return None, 0
    raw = path.read_bytes()
    state: bytes | None = None
    bodies: dict[bytes, bytes] = {}
    offset = 0
    while offset < len(raw):
        size = int.from_bytes(raw[offset : offset + 4], "big")
        end = offset + HEADER + size
        data = raw[offset + HEADER : end]
        good = (
            size > 0  # never written: zeros a crash left where the file grew are no record
            and offset + HEADER <= len(raw)
            and end <= len(raw)
            and zlib.crc32(data) == int.from_bytes(raw[offset + 4 : offset + 8], "big")
        )
        if good and not _known(data):
            raise UnknownRecord(path, offset)  # intact: cutting it could forget a vote
        if not good:
            torn = not raw[offset:].strip(b"\0")  # only zeros from here: a torn tail too
            if not torn and end < len(raw) and offset + HEADER <= len(raw):
                raise CorruptLog(path, offset)  # good bytes follow: not a torn tail
            break
        if data[:1] == BODY:
            id_end = 2 + data[1]
            bodies[data[2:id_end]] = data[id_end:]
        else:
            state = data[1:] if data[:1] == STATE else data
        offset = end
    return (None if state is None else Stored(state, bodies)), offset


def _known(data: bytes) -> bool:
    """A record this release reads (its CRC already matched)."""
    tag = data[:1]
    if tag == BODY:
        return len(data) >= 2 and data[1] > 0 and 2 + data[1] <= len(data)
    return tag in (STATE, LEGACY_STATE)
