"""World-state commit throughput: SQLite beside PostgreSQL, the same pre-built blocks on both.

Run: `.venv/bin/python benchmarks/state_commit.py --state-database postgresql://USER@HOST/DB`
(without `--state-database`, SQLite only). Each block is what the committer does to the state:
an MVCC read of every key the block touches (`get_many`), then `apply_block` with its writes
(JSON values of about 200 bytes, half of them updates of keys written before). Uses its own
PostgreSQL schema and drops it afterwards. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table

from medalliance.database_url import DatabaseUrl, parse_database_url
from medalliance.ledger.state import TxWrites, Write
from medalliance.ledger.world_state import WorldState, open_state

SCHEMA = "bench_state_commit"


def build_blocks(blocks: int, txs: int, writes: int) -> list[list[TxWrites]]:
    """Blocks 1..n of `txs` transactions with `writes` writes each; half update older keys."""
    built = []
    for number in range(1, blocks + 1):
        block = []
        for tx_num in range(txs):
            tx_writes = []
            for w in range(writes):
                fresh = w % 2 == 0 or number == 1
                key = f"asset{number}_{tx_num}_{w}" if fresh else f"asset{number - 1}_{tx_num}_{w}"
                value = {"ID": key, "Owner": f"owner{tx_num}", "Color": "blue", "Size": w}
                value["Notes"] = "x" * 120
                tx_writes.append(Write("basic", key, json.dumps(value).encode()))
            block.append(TxWrites(tx_num, f"tx{number}.{tx_num}", number * 1000, tuple(tx_writes)))
        built.append(block)
    return built


def commit_all(state: WorldState, blocks: Sequence[Sequence[TxWrites]]) -> float:
    """Seconds to read-check and apply every block, after the genesis savepoint."""
    state.apply_block(0, [])
    start = time.perf_counter()
    for number, block in enumerate(blocks, start=1):
        state.get_many((w.namespace, w.key) for tx in block for w in tx.writes)
        state.apply_block(number, block)
    return time.perf_counter() - start


def drop_schema(url: DatabaseUrl) -> None:
    with psycopg.connect(url.conninfo, autocommit=True) as db:
        db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--txs", type=int, default=500, help="transactions per block")
    parser.add_argument("--writes", type=int, default=2, help="writes per transaction")
    parser.add_argument("--state-database", default="", help="postgresql:// URL (optional)")
    args = parser.parse_args()
    blocks = build_blocks(args.blocks, args.txs, args.writes)
    writes = args.blocks * args.txs * args.writes
    table = Table("backend", "blocks/s", "tx/s", "writes/s")
    with tempfile.TemporaryDirectory(prefix="medalliance-bench-") as tmp:
        results = {
            "SQLite": commit_all(
                open_state(None, sqlite_path=Path(tmp) / "s.db", schema=""), blocks
            )
        }
    if args.state_database:
        url = parse_database_url(args.state_database)
        drop_schema(url)
        state = open_state(url, sqlite_path=Path(), schema=SCHEMA)
        try:
            results["PostgreSQL"] = commit_all(state, blocks)
        finally:
            state.close()
            drop_schema(url)
    for backend, seconds in results.items():
        table.add_row(
            backend,
            f"{args.blocks / seconds:,.1f}",
            f"{args.blocks * args.txs / seconds:,.0f}",
            f"{writes / seconds:,.0f}",
        )
    Console().print(
        f"{args.blocks} blocks x {args.txs} txs x {args.writes} writes, MVCC read + apply:"
    )
    Console().print(table)


if __name__ == "__main__":
    main()
