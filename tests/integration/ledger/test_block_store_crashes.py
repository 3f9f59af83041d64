"""Real processes die at the store's two crash points; the next open is consistent."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fabric_protos.common import common_pb2

from medalliance.ledger.block import (
    header_hash,
    new_block,
    set_transactions_filter,
    verify_chain_link,
)
from medalliance.ledger.block_store import BlockStore, TxLocation, read_block_records

# The child appends the blocks it is given, and dies (os._exit, no clean-up) at `crash`:
#   "index": block written and fsynced, its index rows never committed;
#   "torn":  only the first half of the block's record reached the file.
CHILD = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from fabric_protos.common import common_pb2
    from medalliance.ledger import block_store
    from medalliance.ledger.block_store import BlockStore

    directory, crash, *files = sys.argv[1:]
    blocks = []
    for name in files:
        block = common_pb2.Block()
        block.ParseFromString(Path(name).read_bytes())
        blocks.append(block)
    store = BlockStore.open(Path(directory))
    for block in blocks[:-1]:
        store.append(block)
    if crash == "index":
        BlockStore._index = lambda *args, **kwargs: os._exit(9)
    else:
        def torn(fd):
            size = os.fstat(fd).st_size
            os.ftruncate(fd, size - len(blocks[-1].SerializeToString()) // 2)
            os._exit(9)
        block_store.os.fsync = torn
    store.append(blocks[-1])
    sys.exit("the crash did not happen")
    """
)


def chain(n: int) -> list[common_pb2.Block]:
    blocks, previous = [], b""
    for i in range(n):
        channel_header = common_pb2.ChannelHeader(channel_id="alliance", tx_id=f"tx-{i}")
        payload = common_pb2.Payload(
            header=common_pb2.Header(channel_header=channel_header.SerializeToString()),
            data=b"x" * (100 * i),
        )
        envelope = common_pb2.Envelope(payload=payload.SerializeToString()).SerializeToString()
        block = new_block(i, previous, [envelope])
        set_transactions_filter(block, [0])
        previous = header_hash(block.header)
        blocks.append(block)
    return blocks


def run_child(tmp_path: Path, store: Path, crash: str, blocks: list[common_pb2.Block]) -> None:
    files = []
    for block in blocks:
        path = tmp_path / f"in-{crash}-{block.header.number}.pb"
        path.write_bytes(block.SerializeToString())
        files.append(str(path))
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(store), crash, *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 9, result.stderr


@pytest.mark.parametrize(
    "crash", ["index", "torn"], ids=["killed before the index commit", "killed mid-write"]
)
def test_a_killed_writer_leaves_a_store_that_reopens_consistent(tmp_path: Path, crash: str) -> None:
    blocks = chain(5)
    store_dir = tmp_path / "blocks"
    run_child(tmp_path, store_dir, crash, blocks[:3])
    survived = 3 if crash == "index" else 2  # a fsynced block survives, a torn one does not
    with BlockStore.open(store_dir) as store:
        assert store.height == survived
        assert store.contains_tx(f"tx-{survived - 1}")
        for block in blocks[survived:]:
            store.append(block)
        assert list(store.iter_blocks()) == blocks
        assert store.tx_location("tx-4") == TxLocation(4, 0, 0)
    records = [common_pb2.Block.FromString(r) for r in read_block_records(store_dir)]
    assert records == blocks
    assert all(verify_chain_link(a.header, b) is None for a, b in itertools.pairwise(records))


def test_crashes_in_a_row_lose_only_the_torn_block(tmp_path: Path) -> None:
    blocks = chain(4)
    store_dir = tmp_path / "blocks"
    run_child(tmp_path, store_dir, "index", blocks[:2])
    run_child(tmp_path, store_dir, "torn", blocks[2:3])
    run_child(tmp_path, store_dir, "index", blocks[2:3])
    with BlockStore.open(store_dir) as store:
        assert store.height == 3
        store.append(blocks[3])
    with BlockStore.open(store_dir) as store:
        assert list(store.iter_blocks()) == blocks
