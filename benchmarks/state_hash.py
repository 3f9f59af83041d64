"""What the integrity monitor costs a peer: one world-state hash, SQLite and PostgreSQL.

Run: `.venv/bin/python benchmarks/state_hash.py --keys 10000 100000
--state-database postgresql://USER@HOST/DB` (without `--state-database`, SQLite only). Fills a
state with `keys` keys of 300-byte values in blocks of 500 writes, then times `state_hash()`,
which a peer computes on its event loop when the monitor asks at a new height
(docs/audit.md, §5 "Integrity monitor"). Uses its own PostgreSQL schema and drops it
afterwards. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from medalliance.database_url import DatabaseUrl, parse_database_url
from medalliance.ledger.state import TxWrites, Write
from medalliance.ledger.world_state import WorldState, open_state

SCHEMA = "bench_state_hash"
PER_BLOCK = 500


def fill(state: WorldState, keys: int) -> None:
    state.apply_block(0, [])
    for block in range(keys // PER_BLOCK):
        txs = [
            TxWrites(
                i,
                f"t{block}-{i}",
                0,
                (Write("referral", f"k{block:06d}-{i:03d}", os.urandom(300)),),
            )
            for i in range(PER_BLOCK)
        ]
        state.apply_block(block + 1, txs)


def timed_hash(url: DatabaseUrl | None, keys: int, directory: Path) -> float:
    state = open_state(url, sqlite_path=directory / f"state-{keys}.db", schema=SCHEMA)
    try:
        fill(state, keys)
        started = time.perf_counter()
        state.state_hash()
        return time.perf_counter() - started
    finally:
        state.close()
        if url is not None:
            with psycopg.connect(url.conninfo, autocommit=True) as db:
                db.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA))
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--state-database", default=None)
    args = parser.parse_args()
    urls: list[tuple[str, DatabaseUrl | None]] = [("SQLite", None)]
    if args.state_database:
        urls.append(("PostgreSQL", parse_database_url(args.state_database)))
    with tempfile.TemporaryDirectory() as directory:
        for name, url in urls:
            for keys in args.keys:
                seconds = timed_hash(url, keys, Path(directory))
                print(f"{name:<10} {keys:>8} keys of 300 B: state_hash {seconds * 1000:7.0f} ms")


if __name__ == "__main__":
    main()
