"""The consensus hard-state log: the last complete record wins; a torn tail is cut, damage
before it stops the node."""

from __future__ import annotations

from pathlib import Path

import pytest

from medalliance.node import hard_state_log
from medalliance.node.hard_state_log import CorruptLog, HardStateLog


def test_the_last_record_survives_reopening(tmp_path: Path) -> None:
    log = HardStateLog(tmp_path / "c.wal")
    assert log.latest is None
    for i in range(3):
        log.append(f"state {i}".encode())
    log.close()
    assert HardStateLog(tmp_path / "c.wal").latest == b"state 2"


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
    assert reopened.latest == b"first"
    reopened.append(b"third")
    reopened.close()
    assert HardStateLog(path).latest == b"third"


def test_a_flipped_bit_in_the_last_record_falls_back_to_the_one_before(tmp_path: Path) -> None:
    path = tmp_path / "c.wal"
    log = HardStateLog(path)
    log.append(b"first")
    log.append(b"second")
    log.close()
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01
    path.write_bytes(bytes(raw))
    assert HardStateLog(path).latest == b"first"


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
    assert HardStateLog(path).latest == b"state 019"
