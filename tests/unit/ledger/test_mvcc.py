"""MVCC at commit: reads must still hold, earlier writes of the block conflict, ranges re-run."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2

from medalliance.ledger.mvcc import (
    MVCC_READ_CONFLICT,
    PHANTOM_READ_CONFLICT,
    UNCHANGED,
    VALID,
    MvccTx,
    check_block,
    writes_of,
)
from medalliance.ledger.sqlite_state import SqliteState
from medalliance.ledger.state import (
    KeyModification,
    QueryPage,
    TxWrites,
    Version,
    VersionedValue,
    Write,
)

# Committed state of every test: a@(1,0), c@(1,0), gone deleted at (2,0), e@(2,1).
Range = tuple[str, str, list[tuple[str, tuple[int, int]]], bool]


@pytest.fixture
def state(tmp_path: Path) -> Iterator[SqliteState]:
    s = SqliteState.open(tmp_path / "s.db")
    s.apply_block(0, [])
    s.apply_block(
        1,
        [
            TxWrites(
                0,
                "t1",
                0,
                (Write("ns", "a", b"1"), Write("ns", "c", b"1"), Write("ns", "gone", b"1")),
            )
        ],
    )
    s.apply_block(
        2,
        [
            TxWrites(0, "t2", 0, (Write("ns", "gone", None),)),
            TxWrites(1, "t3", 0, (Write("ns", "e", b"1"),)),
        ],
    )
    yield s
    s.close()


def rw(
    reads: Mapping[str, tuple[int, int] | None] | None = None,
    writes: Sequence[str] = (),
    ranges: Sequence[Range] = (),
    deletes: Sequence[str] = (),
    valid: bool = True,
) -> MvccTx:
    """A tx in namespace "ns". Ranges are recorded as Fabric's simulator does: while the iterator
    is not exhausted, `end_key` is the last key returned."""
    kv = kv_rwset_pb2.KVRWSet()
    for key, version in (reads or {}).items():
        read = kv.reads.add(key=key)
        if version is not None:
            read.version.block_num, read.version.tx_num = version
    for start, end, found, exhausted in ranges:
        end_key = end if exhausted or not found else found[-1][0]
        info = kv.range_queries_info.add(start_key=start, end_key=end_key, itr_exhausted=exhausted)
        info.raw_reads.SetInParent()
        for key, (b, t) in found:
            info.raw_reads.kv_reads.add(
                key=key, version=kv_rwset_pb2.Version(block_num=b, tx_num=t)
            )
    for key in writes:
        kv.writes.add(key=key, value=b"new")
    for key in deletes:
        kv.writes.add(key=key, is_delete=True)
    return MvccTx(0, (("ns", kv),), valid)


FULL = ("a", "d", [("a", (1, 0)), ("c", (1, 0))], True)


@pytest.mark.parametrize(
    ("txs", "codes"),
    [
        pytest.param([rw({"a": (1, 0)}, ["a"])], [VALID], id="an unchanged read is valid"),
        pytest.param([rw({"a": (0, 5)})], [MVCC_READ_CONFLICT], id="a stale version conflicts"),
        pytest.param(
            [rw({"a": (1, 1)})], [MVCC_READ_CONFLICT], id="a version differing in tx num conflicts"
        ),
        pytest.param([rw({"zz": None}, ["zz"])], [VALID], id="absent read as absent is valid"),
        pytest.param([rw({"gone": None})], [VALID], id="a deleted key reads as absent"),
        pytest.param(
            [rw({"gone": (1, 0)})],
            [MVCC_READ_CONFLICT],
            id="a read of a since-deleted key conflicts",
        ),
        pytest.param(
            [rw({"a": None})], [MVCC_READ_CONFLICT], id="absent read of an existing key conflicts"
        ),
        pytest.param(
            [rw({"a": (1, 0)}, ["a"]), rw({"a": (1, 0)}, ["a"])],
            [VALID, MVCC_READ_CONFLICT],
            id="a key written earlier in the block conflicts",
        ),
        pytest.param(
            [rw(deletes=["a"]), rw({"a": (1, 0)})],
            [VALID, MVCC_READ_CONFLICT],
            id="a key deleted earlier in the block conflicts",
        ),
        pytest.param(
            [rw(writes=["a"]), rw(writes=["a"])], [VALID, VALID], id="blind writes never conflict"
        ),
        pytest.param(
            [rw({"a": (0, 0)}, ["b"]), rw({"b": None})],
            [MVCC_READ_CONFLICT, VALID],
            id="writes of a conflicting tx do not count",
        ),
        pytest.param([rw(ranges=[FULL])], [VALID], id="an unchanged range is valid"),
        pytest.param(
            [rw(writes=["b"]), rw(ranges=[FULL])],
            [VALID, PHANTOM_READ_CONFLICT],
            id="an insert into a range earlier in the block is a phantom",
        ),
        pytest.param(
            [rw(deletes=["c"]), rw(ranges=[FULL])],
            [VALID, PHANTOM_READ_CONFLICT],
            id="a delete in a range earlier in the block is a phantom",
        ),
        pytest.param(
            [rw(writes=["d"]), rw(ranges=[FULL])],
            [VALID, VALID],
            id="a write at an exhausted range's end key is outside it",
        ),
        pytest.param(
            [rw(ranges=[("a", "d", [("a", (1, 0))], True)])],
            [PHANTOM_READ_CONFLICT],
            id="a committed key missing from a range is a phantom",
        ),
        pytest.param(
            [rw(ranges=[("a", "d", [("a", (1, 0)), ("b", (1, 0)), ("c", (1, 0))], True)])],
            [PHANTOM_READ_CONFLICT],
            id="a recorded key since deleted is a phantom",
        ),
        pytest.param(
            [rw(ranges=[("a", "d", [("a", (0, 9)), ("c", (1, 0))], True)])],
            [PHANTOM_READ_CONFLICT],
            id="a version mismatch inside a range is a phantom",
        ),
        pytest.param(
            [rw(ranges=[("a", "d", [("a", (1, 0))], False)])],
            [VALID],
            id="an early-stopped range is checked up to its last key",
        ),
        pytest.param(
            [rw(writes=["c"]), rw(ranges=[("a", "d", [("a", (1, 0))], False)])],
            [VALID, VALID],
            id="a write after an early-stopped range's last key is outside it",
        ),
        pytest.param(
            [rw(writes=["a"]), rw(ranges=[("a", "d", [("a", (1, 0))], False)])],
            [VALID, PHANTOM_READ_CONFLICT],
            id="a write at an early-stopped range's last key is inside it",
        ),
        pytest.param(
            [rw(ranges=[("", "", [("a", (1, 0)), ("c", (1, 0)), ("e", (2, 1))], True)])],
            [VALID],
            id="an open range covers every key",
        ),
        pytest.param(
            [
                rw(writes=["zzz"]),
                rw(ranges=[("", "", [("a", (1, 0)), ("c", (1, 0)), ("e", (2, 1))], True)]),
            ],
            [VALID, PHANTOM_READ_CONFLICT],
            id="an insert anywhere is a phantom for an open range",
        ),
        pytest.param(
            [rw({"a": (1, 0)}, valid=False), rw({"a": (0, 0)}, valid=False)],
            [UNCHANGED, UNCHANGED],
            id="already invalid txs keep their codes",
        ),
    ],
)
def test_mvcc_rules(state: SqliteState, txs: list[MvccTx], codes: list[int]) -> None:
    assert check_block(state, txs) == codes


def test_an_invalid_tx_keeps_its_code_and_its_writes_do_not_count(state: SqliteState) -> None:
    bad = rw(writes=["a"], valid=False)
    assert check_block(state, [bad, rw({"a": (1, 0)})]) == [UNCHANGED, VALID]


def test_a_merkle_summary_range_is_a_phantom(state: SqliteState) -> None:
    tx = rw()
    info = tx.ns_rwsets[0][1].range_queries_info.add(start_key="a", end_key="d")
    info.reads_merkle_hashes.max_degree = 2
    assert check_block(state, [tx]) == [PHANTOM_READ_CONFLICT]


def test_namespaces_are_separate(state: SqliteState) -> None:
    other = kv_rwset_pb2.KVRWSet()
    other.writes.add(key="a", value=b"x")
    writer = MvccTx(0, (("other", other),), True)
    assert check_block(state, [writer, rw({"a": (1, 0)}, ranges=[FULL])]) == [VALID, VALID]


class PlainReader:
    """A `StateReader` without `get_many`: MVCC must fall back to one `get` per key."""

    def __init__(self, inner: SqliteState) -> None:
        self.inner = inner
        self.gets = 0

    def get(self, namespace: str, key: str) -> VersionedValue | None:
        self.gets += 1
        return self.inner.get(namespace, key)

    def range(
        self, namespace: str, start_key: str, end_key: str
    ) -> Iterator[tuple[str, VersionedValue]]:
        return self.inner.range(namespace, start_key, end_key)

    def query(
        self, namespace: str, query: Mapping[str, Any], page_size: int = 0, bookmark: str = ""
    ) -> QueryPage:
        return self.inner.query(namespace, query, page_size, bookmark)

    def history(self, namespace: str, key: str) -> Sequence[KeyModification]:
        return self.inner.history(namespace, key)


def test_a_reader_without_batches_gives_the_same_codes(state: SqliteState) -> None:
    txs = [
        rw({"a": (1, 0)}, ["a"]),
        rw({"a": (1, 0), "c": (1, 0)}),
        rw({"gone": None, "c": (1, 0)}),
    ]
    plain = PlainReader(state)
    assert check_block(plain, txs) == check_block(state, txs) == [VALID, MVCC_READ_CONFLICT, VALID]
    assert plain.gets == 3  # each distinct key once


def test_writes_of_turns_deletes_into_none() -> None:
    tx = rw(writes=["a"], deletes=["b"])
    assert writes_of(tx.ns_rwsets) == (Write("ns", "a", b"new"), Write("ns", "b", None))
    assert Version(1, 0) < Version(1, 1)


@pytest.mark.parametrize(
    ("order", "code"),
    [
        pytest.param(("phantom", "stale"), PHANTOM_READ_CONFLICT, id="a range first: phantom"),
        pytest.param(("stale", "phantom"), MVCC_READ_CONFLICT, id="a stale read first: read"),
    ],
)
def test_the_first_namespace_that_conflicts_names_the_code(
    state: SqliteState, order: tuple[str, str], code: int
) -> None:
    """Namespaces are checked in rwset order, each its reads then its ranges: a tx whose first
    namespace has a phantom and whose second a stale read is a phantom, and the other way round."""
    parts = {
        "phantom": rw(ranges=[("a", "d", [("a", (1, 0))], True)]).ns_rwsets[0][1],
        "stale": rw({"a": (0, 5)}).ns_rwsets[0][1],
    }
    tx = MvccTx(0, tuple(("ns", parts[name]) for name in order), True)
    assert check_block(state, [tx]) == [code]
