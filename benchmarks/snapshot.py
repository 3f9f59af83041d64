"""Ledger snapshot and node backup costs: take, verify and join a snapshot; back a peer up.

Run: `.venv/bin/python benchmarks/snapshot.py --keys 10000 100000`. The ledger: Fabric's test
network, embedded (genesis, contract lifecycle), whose first peer's SQLite world state then gets
`keys` extra keys of 300-byte values written straight into its table (a snapshot reads the state
as it is; it does not check it against the blocks). Times `ledger snapshot create`, `verify`,
`join` (the new ledger's state loaded in one transaction) and `node backup` of the peer's folder
(SQLite online backup of each database plus file copies) as a folder. Prints numbers and sizes;
asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from medalliance.ledger.snapshot import read_snapshot, write_snapshot
from medalliance.ledger.snapshot_join import join_snapshot
from medalliance.node.backup import backup_node
from medalliance.node.config import NetworkConfig
from medalliance.node.embedded import EmbeddedNetwork

REPO = Path(__file__).resolve().parents[1]
CHANNEL = "mychannel"
PEER = "peer0.org1.example.com"


def _size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def _fill(state_db: Path, keys: int) -> None:
    db = sqlite3.connect(state_db)
    with db:
        db.executemany(
            "INSERT INTO state VALUES (?, ?, ?, ?, ?)",
            (("basic", f"bench{i:08d}", os.urandom(300), 1, i % 500) for i in range(keys)),
        )
    db.close()


def run(keys: int, base: Path) -> list[str]:
    config = NetworkConfig.model_validate(
        yaml.safe_load((REPO / "networks" / "fabric-test-network.yaml").read_text())
    )
    with EmbeddedNetwork.open(config, base / "net"):
        pass
    ledger = base / "net" / "nodes" / PEER / "ledgers" / CHANNEL
    _fill(ledger / "state.db", keys)
    timings: list[str] = []
    started = time.perf_counter()
    write_snapshot(ledger, base / "snap")
    timings.append(f"{time.perf_counter() - started:.2f}")
    started = time.perf_counter()
    read_snapshot(base / "snap", ledger_dir=ledger)
    timings.append(f"{time.perf_counter() - started:.2f}")
    started = time.perf_counter()
    join_snapshot(base / "snap", base / "joined" / CHANNEL)
    timings.append(f"{time.perf_counter() - started:.2f}")
    started = time.perf_counter()
    backup_node(base / "net" / "nodes" / PEER / "node.yaml", base / "backup")
    timings.append(f"{time.perf_counter() - started:.2f}")
    timings.append(f"{_size_mb(base / 'snap'):.1f} / {_size_mb(base / 'backup'):.1f}")
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, nargs="+", default=[10_000])
    args = parser.parse_args()
    table = Table(title="snapshot and backup (s)")
    for column in ("keys", "create", "verify", "join", "backup", "MB snapshot / backup"):
        table.add_column(column)
    for keys in args.keys:
        with tempfile.TemporaryDirectory() as scratch:
            table.add_row(str(keys), *run(keys, Path(scratch)))
    Console().print(table)


if __name__ == "__main__":
    main()
