"""A block store that begins at a snapshot: where it starts, what it refuses, crash recovery."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.ledger.test_block_store import FIRST_FILE, chain

from medalliance.errors import BlockBeforeSnapshot, InvalidArgument, PreconditionFailed
from medalliance.ledger.block import header_hash
from medalliance.ledger.block_store import BlockStore, SnapshotBase, TxLocation


def _base(blocks: list, at: int) -> SnapshotBase:  # type: ignore[type-arg]
    return SnapshotBase(
        first_block=at + 1,
        last_hash=header_hash(blocks[at].header),
        previous_hash=bytes(blocks[at].header.previous_hash),
        config_block=b"config",
    )


def test_a_store_joined_at_a_snapshot_begins_after_it_and_survives_reopening(
    tmp_path: Path,
) -> None:
    blocks = chain(6)
    with BlockStore.open(tmp_path) as store:
        store.start_from_snapshot(_base(blocks, 3), [("tx-1", TxLocation(1, 0, 0))])
        assert (store.first_block, store.height) == (4, 4)
        store.append(blocks[4])
    with BlockStore.open(tmp_path) as store:
        assert (store.first_block, store.height) == (4, 5)
        assert store.header_hashes(3) == (
            header_hash(blocks[3].header),
            bytes(blocks[3].header.previous_hash),
        )
        assert store.contains_tx("tx-1")
        assert store.contains_tx("tx-4")
        assert [int(b.header.number) for b in store.iter_blocks(4)] == [4]
        with pytest.raises(BlockBeforeSnapshot, match="begins at block 4"):
            store.get_block(2)


def test_a_block_not_following_the_snapshot_is_refused_and_nothing_is_stored(
    tmp_path: Path,
) -> None:
    blocks, other = chain(6), chain(6, [["x"]] * 6)
    with BlockStore.open(tmp_path) as store:
        store.start_from_snapshot(_base(blocks, 3), [])
        with pytest.raises(InvalidArgument, match="previous hash"):
            store.append(other[4])
        assert store.height == 4
    assert list(tmp_path.glob("blockfile_*")) == []


@pytest.mark.parametrize(
    "fill",
    [
        pytest.param(lambda s, b: s.append(b[0]), id="a store holding blocks is not joined"),
        pytest.param(
            lambda s, b: s.start_from_snapshot(_base(b, 1), []),
            id="a store already joined is not joined again",
        ),
    ],
)
def test_a_snapshot_is_only_joined_into_an_empty_store(tmp_path: Path, fill: object) -> None:
    blocks = chain(4)
    with BlockStore.open(tmp_path) as store:
        fill(store, blocks)  # type: ignore[operator]
        height = store.height
        with pytest.raises(PreconditionFailed, match="already holds a ledger"):
            store.start_from_snapshot(_base(blocks, 2), [("tx-9", TxLocation(2, 0, 0))])
        assert store.height == height
        assert not store.contains_tx("tx-9")


def test_a_torn_block_after_a_snapshot_is_cut_off_on_reopening(tmp_path: Path) -> None:
    blocks = chain(6)
    with BlockStore.open(tmp_path) as store:
        store.start_from_snapshot(_base(blocks, 3), [])
        store.append(blocks[4])
    size = (tmp_path / FIRST_FILE).stat().st_size
    with (tmp_path / FIRST_FILE).open("ab") as f:
        f.write(b"\x80\x80")  # a crash in the middle of the next record
    with BlockStore.open(tmp_path) as store:
        assert store.height == 5
    assert (tmp_path / FIRST_FILE).stat().st_size == size


def test_only_the_snapshot_base_is_committed_with_an_fsync(tmp_path: Path) -> None:
    """Blocks' index rows are rebuilt from the fsynced files after a lost commit, so they are
    committed without an fsync; the snapshot's base, in no block file, is committed with one."""
    blocks = chain(6)
    with BlockStore.open(tmp_path) as store:
        db = store._db
        assert db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
        seen: list[str] = []
        db.set_trace_callback(seen.append)
        store.start_from_snapshot(_base(blocks, 3), [])
        db.set_trace_callback(None)
        full, commit = seen.index("PRAGMA synchronous=FULL"), seen.index("COMMIT")
        assert full < commit < seen.index("PRAGMA synchronous=NORMAL")
        assert db.execute("PRAGMA synchronous").fetchone() == (1,)
        store.append(blocks[4])
