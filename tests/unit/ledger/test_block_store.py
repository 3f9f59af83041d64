"""The block store survives crashes between its two writes and never serves a torn block."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from medalliance.errors import InvalidArgument, PreconditionFailed, UnknownBlock
from medalliance.ledger.block import header_hash, new_block
from medalliance.ledger.block_store import BlockStore, read_block_records


def chain(n: int) -> list:  # type: ignore[type-arg]
    blocks, previous = [], b""
    for i in range(n):
        block = new_block(i, previous, [f"envelope {i}".encode()])
        previous = header_hash(block.header)
        blocks.append(block)
    return blocks


def test_append_read_and_refuse_what_does_not_follow(tmp_path: Path) -> None:
    blocks = chain(3)
    with BlockStore.open(tmp_path) as store:
        for b in blocks[:2]:
            store.append(b)
        with pytest.raises(PreconditionFailed):
            store.append(blocks[0])
        forged = new_block(2, b"\0" * 32, [b"x"])
        with pytest.raises(InvalidArgument, match="previous hash"):
            store.append(forged)
        assert store.height == 2
        assert store.get_block(1) == blocks[1]
        with pytest.raises(UnknownBlock, match="no block 7"):
            store.get_block(7)


def test_a_crash_before_the_index_commit_is_reindexed(tmp_path: Path) -> None:
    blocks = chain(3)
    with BlockStore.open(tmp_path) as store:
        for b in blocks:
            store.append(b)
    db = sqlite3.connect(tmp_path / "index.db")
    db.execute("DELETE FROM blocks WHERE number = 2")
    db.commit()
    db.close()
    with BlockStore.open(tmp_path) as store:
        assert store.height == 3
        assert store.last_header_hash == header_hash(blocks[2].header)


def test_a_torn_tail_is_cut_off(tmp_path: Path) -> None:
    blocks = chain(2)
    with BlockStore.open(tmp_path) as store:
        store.append(blocks[0])
    data = blocks[1].SerializeToString()
    with (tmp_path / "blockfile_000000").open("ab") as f:
        f.write(bytes([len(data)]) + data[: len(data) // 2])  # the crash hit mid-write
    with BlockStore.open(tmp_path) as store:
        assert store.height == 1
        store.append(blocks[1])
        assert store.height == 2
    assert len(list(read_block_records(tmp_path))) == 2
