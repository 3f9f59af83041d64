"""The consensus hard-state log: the last complete record wins; a torn tail is cut, damage
before it stops the node."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from medalliance.node import hard_state_log
from medalliance.node.hard_state_log import CorruptLog, HardStateLog, UnknownRecord


def test_the_last_record_survives_reopening(tmp_path: Path) -> None:
    log = HardStateLog(tmp_path / "c.wal")
    assert log.latest is None
    for i in range(3):
        log.append(f"state {i}".encode())
    log.close()
    assert HardStateLog(tmp_path / "c.wal").latest.state == b"state 2"


@pytest.mark.parametrize(
    "cut", [1, 5, 9, 12], ids=["in the length", "in the CRC", "in the data", "all but one byte"]
)
def test_a_torn_tail_is_cut_and_the_previous_record_kept(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "c.wal"
    log = HardStateLog(path)
    log.append(b"first")
    log.append(b"second-record")
    log.close()
    size = path.stat().st_size
    tail = 8 + len(b"second-record")
    with path.open("r+b") as f:
        f.truncate(size - tail + min(cut, tail - 1))
    reopened = HardStateLog(path)
    assert reopened.latest.state == b"first"
    reopened.append(b"third")
    reopened.close()
    assert HardStateLog(path).latest.state == b"third"


def test_a_flipped_bit_in_the_last_record_falls_back_to_the_one_before(tmp_path: Path) -> None:
    path = tmp_path / "c.wal"
    log = HardStateLog(path)
    log.append(b"first")
    log.append(b"second")
    log.close()
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01
    path.write_bytes(bytes(raw))
    assert HardStateLog(path).latest.state == b"first"


def test_damage_before_the_tail_stops_the_node(tmp_path: Path) -> None:
    path = tmp_path / "c.wal"
    log = HardStateLog(path)
    for data in (b"first", b"second", b"third"):
        log.append(data)
    log.close()
    raw = bytearray(path.read_bytes())
    raw[8] ^= 0x01  # inside the first record's data
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptLog, match="before its last record"):
        HardStateLog(path)


def test_a_long_log_is_compacted_to_its_last_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hard_state_log, "COMPACT_BYTES", 100)
    path = tmp_path / "c.wal"
    log = HardStateLog(path)
    for i in range(20):
        log.append(f"state {i:03d}".encode())
    log.close()
    assert path.stat().st_size < 100 + 2 * (8 + 9)
    assert HardStateLog(path).latest.state == b"state 019"


def test_a_body_is_written_once_and_handed_back_with_the_state(tmp_path: Path) -> None:
    path = tmp_path / "c.wal"
    log = HardStateLog(path)
    block = b"B" * 10_000
    log.append(b"prevote", {b"id-1": block})
    size = path.stat().st_size
    log.append(b"precommit", {b"id-1": block})  # the same value: referred to, not re-written
    assert path.stat().st_size - size == 8 + 1 + len(b"precommit")
    log.close()
    stored = HardStateLog(path).latest
    assert stored is not None
    assert (stored.state, dict(stored.bodies)) == (b"precommit", {b"id-1": block})


def test_a_torn_state_falls_back_to_the_one_before_with_its_body(tmp_path: Path) -> None:
    path = tmp_path / "c.wal"
    log = HardStateLog(path)
    log.append(b"first", {b"id-1": b"body one"})
    log.append(b"second", {b"id-2": b"body two"})
    log.close()
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size - 3)  # the second state is torn, its body intact
    stored = HardStateLog(path).latest
    assert stored is not None
    assert stored.state == b"first"
    assert stored.bodies[b"id-1"] == b"body one"


def test_compaction_keeps_the_bodies_the_last_state_refers_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hard_state_log, "COMPACT_BYTES", 200)
    path = tmp_path / "c.wal"
    log = HardStateLog(path)
    for i in range(20):
        log.append(f"state {i:03d}".encode(), {f"id-{i // 3}".encode(): b"x" * 50})
    log.append(b"last", {b"id-6": b"x" * 50})  # the body was written before, maybe compacted
    log.close()
    assert path.stat().st_size < 200 + 2 * (8 + 60)
    stored = HardStateLog(path).latest
    assert stored is not None
    assert stored.state == b"last"
    assert stored.bodies[b"id-6"] == b"x" * 50


def test_a_record_of_a_newer_release_stops_the_node(tmp_path: Path) -> None:
    path = tmp_path / "c.wal"
    log = HardStateLog(path)
    log.append(b"first")
    log.close()
    data = b"Zfuture"
    path.write_bytes(
        path.read_bytes()
        + len(data).to_bytes(4, "big")
        + zlib.crc32(data).to_bytes(4, "big")
        + data
    )
    with pytest.raises(UnknownRecord, match="newer release"):
        HardStateLog(path)


def test_a_log_of_the_previous_release_is_read(tmp_path: Path) -> None:
    path = tmp_path / "c.wal"
    data = b'{"height": 3}'  # the previous release wrote bare JSON records
    path.write_bytes(len(data).to_bytes(4, "big") + zlib.crc32(data).to_bytes(4, "big") + data)
    log = HardStateLog(path)
    assert log.latest is not None
    assert log.latest.state == data
    log.append(b"binary", {b"id-1": b"body"})  # the upgraded node goes on in the same file
    log.close()
    stored = HardStateLog(path).latest
    assert stored is not None
    assert (stored.state, dict(stored.bodies)) == (b"binary", {b"id-1": b"body"})


def test_zeros_a_crash_left_at_the_end_are_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "c.wal"
    log = HardStateLog(path)
    log.append(b"first")
    log.close()
    size = path.stat().st_size
    path.write_bytes(path.read_bytes() + bytes(4096))  # the file grew, its data never came
    reopened = HardStateLog(path)
    assert reopened.latest is not None
    assert reopened.latest.state == b"first"
    reopened.close()
    assert path.stat().st_size == size
