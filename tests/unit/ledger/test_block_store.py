"""The block store survives crashes between its two writes and never serves a torn block."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from fabric_protos.common import common_pb2

from medalliance.errors import InvalidArgument, MalformedMessage, PreconditionFailed, UnknownBlock
from medalliance.ledger import block_store
from medalliance.ledger.block import (
    header_hash,
    new_block,
    set_transactions_filter,
    verify_chain_link,
)
from medalliance.ledger.block_store import BlockStore, TxLocation, read_block_records

FIRST_FILE = "blockfile_000000"


def envelope(tx_id: str) -> bytes:
    channel_header = common_pb2.ChannelHeader(channel_id="alliance", tx_id=tx_id)
    payload = common_pb2.Payload(
        header=common_pb2.Header(channel_header=channel_header.SerializeToString())
    )
    return bytes(common_pb2.Envelope(payload=payload.SerializeToString()).SerializeToString())


def chain(n: int, tx_ids: Sequence[Sequence[str]] = ()) -> list[common_pb2.Block]:
    """`n` linked blocks; block i carries envelopes with `tx_ids[i]` (default: one, "tx-i")."""
    blocks, previous = [], b""
    for i in range(n):
        ids = tx_ids[i] if i < len(tx_ids) else [f"tx-{i}"]
        block = new_block(i, previous, [envelope(t) for t in ids])
        set_transactions_filter(block, [0] * len(ids))
        previous = header_hash(block.header)
        blocks.append(block)
    return blocks


def stored(directory: Path, blocks: Sequence[common_pb2.Block]) -> None:
    with BlockStore.open(directory) as store:
        for block in blocks:
            store.append(block)


def test_an_empty_store_has_no_height_and_no_hash(tmp_path: Path) -> None:
    with BlockStore.open(tmp_path / "new" / "blocks") as store:
        assert (store.height, store.last_header_hash) == (0, b"")
        assert list(store.iter_blocks()) == []
        with pytest.raises(UnknownBlock, match="no block 0"):
            store.get_block(0)


def test_append_read_and_refuse_what_does_not_follow(tmp_path: Path) -> None:
    blocks = chain(3)
    with BlockStore.open(tmp_path) as store:
        for b in blocks[:2]:
            store.append(b)
        with pytest.raises(PreconditionFailed, match="cannot follow height 2"):
            store.append(blocks[0])
        with pytest.raises(InvalidArgument, match="previous hash"):
            store.append(new_block(2, b"\0" * 32, [b"x"]))
        bad_data = new_block(2, header_hash(blocks[1].header), [b"x"])
        bad_data.data.data[0] = b"y"
        with pytest.raises(InvalidArgument, match="data hash"):
            store.append(bad_data)
        assert store.height == 2
        assert store.last_header_hash == header_hash(blocks[1].header)
        assert store.get_block(1) == blocks[1]
        assert store.get_block_bytes(1) == blocks[1].SerializeToString()
        assert list(store.iter_blocks(1)) == [blocks[1]]
        with pytest.raises(UnknownBlock, match="no block 7"):
            store.get_block(7)
    assert list(read_block_records(tmp_path)) == [b.SerializeToString() for b in blocks[:2]]


def test_a_refused_block_leaves_the_files_untouched(tmp_path: Path) -> None:
    stored(tmp_path, chain(1))
    before = (tmp_path / FIRST_FILE).read_bytes()
    with BlockStore.open(tmp_path) as store, pytest.raises(InvalidArgument):
        store.append(new_block(1, b"\1" * 32, [b"x"]))
    assert (tmp_path / FIRST_FILE).read_bytes() == before


def test_blocks_and_tx_ids_survive_a_reopen(tmp_path: Path) -> None:
    blocks = chain(3, [["a"], ["b", "c"], []])
    stored(tmp_path, blocks)
    with BlockStore.open(tmp_path) as store:
        assert store.height == 3
        assert list(store.iter_blocks()) == blocks
        assert store.tx_location("c") == TxLocation(block_num=1, tx_num=1, validation_code=0)
        assert store.contains_tx("a")
        assert not store.contains_tx("zzz")
        assert store.tx_location("zzz") is None


def test_a_repeated_tx_id_keeps_its_first_location(tmp_path: Path) -> None:
    blocks = chain(2, [["t1", "t1"], ["t1"]])
    set_transactions_filter(blocks[0], [0, 9])  # the second copy is DUPLICATE_TXID
    stored(tmp_path, blocks)
    with BlockStore.open(tmp_path) as store:
        assert store.tx_location("t1") == TxLocation(0, 0, 0)


def test_validation_codes_come_from_the_transactions_filter(tmp_path: Path) -> None:
    block = new_block(0, b"", [envelope("ok"), envelope("late"), b"\xff garbage"])
    set_transactions_filter(block, [0, 11, 1])
    stored(tmp_path, [block])
    with BlockStore.open(tmp_path) as store:
        assert store.tx_location("late") == TxLocation(0, 1, 11)
        assert store.get_block(0).data.data[2] == b"\xff garbage"  # stored, just not indexed


def test_a_block_without_a_filter_indexes_its_txs_as_not_validated(tmp_path: Path) -> None:
    block = new_block(0, b"", [envelope("g")])
    stored(tmp_path, [block])
    with BlockStore.open(tmp_path) as store:
        assert store.tx_location("g") == TxLocation(0, 0, block_store.NOT_VALIDATED)


def test_tx_ids_given_by_the_caller_are_indexed_as_given(tmp_path: Path) -> None:
    block = new_block(0, b"", [b"opaque"])
    with BlockStore.open(tmp_path) as store:
        with pytest.raises(InvalidArgument, match="2 tx ids"):
            store.append(block, ["a", "b"])
        store.append(block, ["known"])
        assert store.contains_tx("known")


def test_a_block_of_tx_ids_is_looked_up_at_once(tmp_path: Path) -> None:
    # More ids than one statement binds; a repeated id, stored ids among unknown ones, and a
    # hostile id that would match many rows if it were spliced into the SQL.
    stored_ids = [f"s{i}" for i in range(700)]
    stored(tmp_path, chain(2, [stored_ids[:400], stored_ids[400:]]))
    asked = [f"new{i}" for i in range(600)] + stored_ids[::7] + ["s3", "s3", "' OR 1=1 --", ""]
    with BlockStore.open(tmp_path) as store:
        assert store.committed_among(asked) == frozenset(stored_ids[::7]) | {"s3"}
        assert store.committed_among([]) == frozenset()


def test_files_roll_over_at_the_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = chain(5)
    record = max(len(b.SerializeToString()) for b in blocks) + 2  # with its length prefix
    monkeypatch.setattr(block_store, "FILE_SIZE_MAX", 2 * record)  # two blocks to a file
    stored(tmp_path, blocks[:3])
    stored(tmp_path, blocks[3:])
    assert sorted(p.name for p in tmp_path.glob("blockfile_*")) == [
        "blockfile_000000",
        "blockfile_000001",
        "blockfile_000002",
    ]
    with BlockStore.open(tmp_path) as store:
        assert list(store.iter_blocks()) == blocks
    assert len(list(read_block_records(tmp_path))) == 5


def drop_index_rows(directory: Path, from_block: int) -> None:
    db = sqlite3.connect(directory / "index.db")
    db.execute("DELETE FROM blocks WHERE number >= ?", (from_block,))
    db.execute("DELETE FROM txs WHERE block >= ?", (from_block,))
    db.commit()
    db.close()


@pytest.mark.parametrize("lagging", [1, 3], ids=["one block lags", "every block lags"])
def test_a_crash_before_the_index_commit_is_reindexed(
    tmp_path: Path, lagging: int, caplog: pytest.LogCaptureFixture
) -> None:
    blocks = chain(3)
    stored(tmp_path, blocks)
    drop_index_rows(tmp_path, 3 - lagging)
    with caplog.at_level(logging.WARNING), BlockStore.open(tmp_path) as store:
        assert store.height == 3
        assert store.last_header_hash == header_hash(blocks[2].header)
        assert store.tx_location("tx-2") == TxLocation(2, 0, 0)
        assert list(store.iter_blocks()) == blocks
    assert f"indexed {lagging} blocks" in caplog.text


def test_a_torn_tail_is_cut_off(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocks = chain(2)
    stored(tmp_path, blocks[:1])
    data = blocks[1].SerializeToString()
    with (tmp_path / FIRST_FILE).open("ab") as f:
        f.write(bytes([len(data)]) + data[: len(data) // 2])  # the crash hit mid-write
    with pytest.raises(MalformedMessage, match="runs past the end"):
        list(read_block_records(tmp_path))  # the reader never repairs
    with caplog.at_level(logging.WARNING), BlockStore.open(tmp_path) as store:
        assert store.height == 1
        store.append(blocks[1])
        assert store.height == 2
    assert "cut off a torn record" in caplog.text
    assert data[:16].hex() not in caplog.text  # counts only, never content
    assert len(list(read_block_records(tmp_path))) == 2


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(b"\x80", id="a length prefix cut off"),
        pytest.param(b"\0" * 300, id="a tail of zeros"),
        pytest.param(b"\x03abc", id="a complete record that is not a block"),
    ],
)
def test_any_unwritten_tail_after_the_index_is_cut_off(tmp_path: Path, tail: bytes) -> None:
    blocks = chain(3)
    stored(tmp_path, blocks[:2])
    drop_index_rows(tmp_path, 1)  # block 1 is complete but unindexed, then comes the tail
    with (tmp_path / FIRST_FILE).open("ab") as f:
        f.write(tail)
    with BlockStore.open(tmp_path) as store:
        assert store.height == 2
        store.append(blocks[2])
    with BlockStore.open(tmp_path) as store:
        assert list(store.iter_blocks()) == blocks


def test_a_block_that_does_not_follow_is_never_indexed_on_recovery(tmp_path: Path) -> None:
    blocks, stranger = chain(2), new_block(2, b"\1" * 32, [envelope("stranger")])
    stored(tmp_path, blocks)
    record = stranger.SerializeToString()
    with (tmp_path / FIRST_FILE).open("ab") as f:
        f.write(bytes([len(record)]) + record)
    with BlockStore.open(tmp_path) as store:
        assert store.height == 2


def test_damage_before_the_tail_is_refused_not_cut(tmp_path: Path) -> None:
    blocks = chain(3)
    stored(tmp_path, blocks)
    drop_index_rows(tmp_path, 1)
    raw = bytearray((tmp_path / FIRST_FILE).read_bytes())
    second = raw.index(blocks[1].SerializeToString())
    raw[second + 3] ^= 0xFF  # inside block 1's header, with block 2 after it
    (tmp_path / FIRST_FILE).write_bytes(bytes(raw))
    with pytest.raises(MalformedMessage, match="nothing was cut"):
        BlockStore.open(tmp_path)
    assert (tmp_path / FIRST_FILE).read_bytes() == bytes(raw)


def test_a_missing_block_file_is_refused(tmp_path: Path) -> None:
    stored(tmp_path, chain(1))
    (tmp_path / FIRST_FILE).unlink()
    with pytest.raises(MalformedMessage, match="missing"):
        BlockStore.open(tmp_path)


def test_a_flipped_byte_in_a_stored_block_is_detected(tmp_path: Path) -> None:
    blocks = chain(3, [["a"], ["patient-visit"], ["c"]])
    stored(tmp_path, blocks)
    raw = bytearray((tmp_path / FIRST_FILE).read_bytes())
    raw[raw.index(b"patient-visit")] ^= 0x01
    (tmp_path / FIRST_FILE).write_bytes(bytes(raw))
    with BlockStore.open(tmp_path) as store:
        tampered = store.get_block(1)
        assert verify_chain_link(blocks[0].header, tampered) is not None


@pytest.mark.parametrize(
    "position", [0, 1, 2, 10, 40], ids=lambda p: f"flipping byte {p} of the file"
)
def test_a_flipped_byte_anywhere_raises_only_typed_errors(tmp_path: Path, position: int) -> None:
    blocks = chain(2)
    stored(tmp_path, blocks)
    raw = bytearray((tmp_path / FIRST_FILE).read_bytes())
    raw[position] ^= 0x80
    (tmp_path / FIRST_FILE).write_bytes(bytes(raw))
    with BlockStore.open(tmp_path) as store:
        for number in range(2):
            try:
                block = store.get_block(number)
            except MalformedMessage:
                continue
            previous = blocks[number - 1].header if number else None
            intact = block == blocks[number]
            links = previous is None or verify_chain_link(previous, block) is None
            assert (
                intact
                or not links
                or header_hash(block.header) != header_hash(blocks[number].header)
            )


def test_a_broken_length_prefix_is_malformed_for_the_reader(tmp_path: Path) -> None:
    stored(tmp_path, chain(1))
    with (tmp_path / FIRST_FILE).open("ab") as f:
        f.write(b"\xff" * 11)  # a varint that never ends
    with pytest.raises(MalformedMessage, match="longer than ten bytes"):
        list(read_block_records(tmp_path))


def test_the_reader_of_an_empty_directory_yields_nothing(tmp_path: Path) -> None:
    (tmp_path / "blockfile_000000.bak").write_bytes(b"\xff")  # not a block file
    assert list(read_block_records(tmp_path)) == []


def test_a_failed_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = chain(2)
    stored(tmp_path, blocks[:1])
    before = (tmp_path / FIRST_FILE).read_bytes()

    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    with BlockStore.open(tmp_path) as store:
        monkeypatch.setattr(os, "fsync", disk_full)
        with pytest.raises(OSError, match="No space"):
            store.append(blocks[1])
        monkeypatch.undo()
        assert store.height == 1
        assert (tmp_path / FIRST_FILE).read_bytes() == before
        store.append(blocks[1])
        assert store.get_block(1) == blocks[1]
