"""MVCC at commit: reads must still hold, earlier writes of the block conflict, ranges re-run."""

from __future__ import annotations

from pathlib import Path

import pytest
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2

from medalliance.ledger.mvcc import (
    MVCC_READ_CONFLICT,
    PHANTOM_READ_CONFLICT,
    UNCHANGED,
    VALID,
    MvccTx,
    check_block,
)
from medalliance.ledger.sqlite_state import SqliteState
from medalliance.ledger.state import TxWrites, Write


@pytest.fixture
def state(tmp_path: Path) -> SqliteState:
    s = SqliteState.open(tmp_path / "s.db")
    s.apply_block(0, [])
    s.apply_block(1, [TxWrites(0, "t", 0, (Write("ns", "a", b"1"), Write("ns", "c", b"1")))])
    return s


def rw(
    reads: dict[str, tuple[int, int] | None] | None = None,
    writes: tuple[str, ...] = (),
    ranges: list[tuple[str, str, list[tuple[str, tuple[int, int]]], bool]] | None = None,
) -> MvccTx:
    kv = kv_rwset_pb2.KVRWSet()
    for key, version in (reads or {}).items():
        read = kv.reads.add(key=key)
        if version is not None:
            read.version.block_num, read.version.tx_num = version
    for start, end, found, exhausted in ranges or []:
        info = kv.range_queries_info.add(start_key=start, end_key=end, itr_exhausted=exhausted)
        info.raw_reads.SetInParent()
        for key, (b, t) in found:
            info.raw_reads.kv_reads.add(
                key=key, version=kv_rwset_pb2.Version(block_num=b, tx_num=t)
            )
    for key in writes:
        kv.writes.add(key=key, value=b"new")
    return MvccTx(0, (("ns", kv),), True)


@pytest.mark.parametrize(
    ("txs", "codes"),
    [
        pytest.param([rw({"a": (1, 0)}, ("a",))], [VALID], id="an unchanged read is valid"),
        pytest.param([rw({"a": (0, 5)})], [MVCC_READ_CONFLICT], id="a stale version conflicts"),
        pytest.param([rw({"zz": None}, ("zz",))], [VALID], id="absent read as absent is valid"),
        pytest.param(
            [rw({"a": None})], [MVCC_READ_CONFLICT], id="absent read of an existing key conflicts"
        ),
        pytest.param(
            [rw({"a": (1, 0)}, ("a",)), rw({"a": (1, 0)}, ("a",))],
            [VALID, MVCC_READ_CONFLICT],
            id="a key written earlier in the block conflicts",
        ),
        pytest.param(
            [rw(writes=("a",)), rw(writes=("a",))], [VALID, VALID], id="blind writes never conflict"
        ),
        pytest.param(
            [rw(ranges=[("a", "d", [("a", (1, 0)), ("c", (1, 0))], True)])],
            [VALID],
            id="an unchanged range is valid",
        ),
        pytest.param(
            [rw(writes=("b",)), rw(ranges=[("a", "d", [("a", (1, 0)), ("c", (1, 0))], True)])],
            [VALID, PHANTOM_READ_CONFLICT],
            id="an insert into a range is a phantom",
        ),
        pytest.param(
            [rw(ranges=[("a", "d", [("a", (1, 0))], True)])],
            [PHANTOM_READ_CONFLICT],
            id="a missing key in a range is a phantom",
        ),
        pytest.param(
            [rw(ranges=[("a", "d", [("a", (1, 0))], False)])],
            [VALID],
            id="an early-stopped range is checked up to its last key",
        ),
    ],
)
def test_mvcc_rules(state: SqliteState, txs: list[MvccTx], codes: list[int]) -> None:
    assert check_block(state, txs) == codes


def test_an_invalid_tx_keeps_its_code_and_its_writes_do_not_count(state: SqliteState) -> None:
    bad = MvccTx(0, rw(writes=("a",)).ns_rwsets, False)
    assert check_block(state, [bad, rw({"a": (1, 0)})]) == [UNCHANGED, VALID]
