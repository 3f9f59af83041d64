"""CPU of an ordering node's host-side paths that branch ord2 changed or measured, in process.

Run: `.venv/bin/python benchmarks/ordering_host.py`. Prints, as `process_time` per operation:
a Deliver answer for a stored block the old way (parse the block, build a DeliverResponse,
encode it) against framing the stored bytes (`deliver_blocks`); the hard-state log's appends
per block (a state with the block body, then one without: prevote and precommit) and one
compaction; a 10 ms ticker's cost per wake-up of an otherwise idle event loop. Asserts only
that both Deliver encodings give the same bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import events_pb2

from medalliance.ledger.block import new_block
from medalliance.ledger.block_encoding import varint
from medalliance.ledger.block_store import BlockStore
from medalliance.node import hard_state_log


def per_call_us(function: Callable[[], object], count: int) -> float:
    start = time.process_time()
    for _ in range(count):
        function()
    return (time.process_time() - start) / count * 1e6


def deliver(transactions: int, size: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = BlockStore.open(Path(folder))
        store.append(new_block(0, b"", [b"genesis"]))
        envelopes = [os.urandom(size) for _ in range(transactions)]
        store.append(new_block(1, store.last_header_hash, envelopes))

        def parsed_and_encoded() -> bytes:  # what the ordering node's Deliver did per block
            response = events_pb2.DeliverResponse(block=store.get_block(1))
            answer = ab_pb2.DeliverResponse.FromString(response.SerializeToString())
            return bytes(answer.SerializeToString())  # gRPC's encoding of the answer

        def framed() -> bytes:
            stored = store.get_block_bytes(1)
            return b"".join((b"\x12", varint(len(stored)), stored))

        assert parsed_and_encoded() == framed()
        old, new = per_call_us(parsed_and_encoded, 500), per_call_us(framed, 500)
        store.close()
    print(
        f"Deliver, a block of {transactions} transactions of {size} bytes: parsed and encoded "
        f"{old:.1f} µs, framed {new:.1f} µs"
    )


def hard_state(transactions: int, size: int, blocks: int) -> None:
    compactions: list[float] = []
    compact = hard_state_log.HardStateLog._compact

    def timed(log: hard_state_log.HardStateLog, latest: hard_state_log.Stored) -> None:
        start = time.process_time()
        compact(log, latest)
        compactions.append(time.process_time() - start)

    hard_state_log.HardStateLog._compact = timed  # type: ignore[method-assign,assignment]
    body = os.urandom(transactions * size)
    with tempfile.TemporaryDirectory() as folder:
        log = hard_state_log.HardStateLog(Path(folder) / "consensus.wal")
        start = time.process_time()
        for height in range(blocks):
            value_id = height.to_bytes(8, "big") * 4
            log.append(os.urandom(400), {value_id: body})
            log.append(os.urandom(500), {value_id: body})
        spent = time.process_time() - start
        log.close()
    hard_state_log.HardStateLog._compact = compact  # type: ignore[method-assign]
    each = sum(compactions) / max(len(compactions), 1) * 1e3
    print(
        f"hard-state log, a block of {len(body)} bytes: {spent / blocks * 1e3:.3f} ms per block "
        f"(2 appends, 2 fsyncs); {len(compactions)} compactions of {each:.2f} ms each "
        f"({sum(compactions) / spent * 100:.1f} % of the log's CPU)"
    )


async def ticker(seconds: float) -> None:
    async def wake() -> None:
        while True:
            await asyncio.sleep(0.01)

    start = time.process_time()
    await asyncio.sleep(seconds)
    idle = time.process_time() - start
    task = asyncio.create_task(wake())
    start = time.process_time()
    await asyncio.sleep(seconds)
    ticking = time.process_time() - start
    task.cancel()
    print(f"a 10 ms ticker: {(ticking - idle) / (seconds * 100) * 1e6:.0f} µs per wake-up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=24, help="per block")
    parser.add_argument("--size", type=int, default=3500, help="bytes per transaction")
    parser.add_argument("--blocks", type=int, default=400, help="hard-state log blocks")
    args = parser.parse_args()
    deliver(args.transactions, args.size)
    hard_state(args.transactions, args.size, args.blocks)
    asyncio.run(ticker(3.0))


if __name__ == "__main__":
    main()
