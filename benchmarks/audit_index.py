"""Audit index catch-up from genesis: blocks/s and tx/s on SQLite (and PostgreSQL).

Run: `.venv/bin/python benchmarks/audit_index.py --txs 100000 [--postgres postgresql://USER@HOST/postgres]`

The ledger: one referral workflow runs on an embedded demo alliance (app/referral_demo.py: visits,
applications, reviews, agreements, referrals up and down, records shared and opened, settlements),
and its VALID alliance transactions, as signed and endorsed, are repeated into a chain of
`--per-block` transactions per block until `--txs` transactions (hash-chained, every
transaction VALID). The index does not re-validate (the peer did), so repeated envelopes cost it
exactly what new ones would; building 100,000 transactions this way takes seconds instead of the
hours of submitting them. The index reads from genesis: facts of every block, one database
transaction per block with its checkpoint. With `--postgres` (a server URL) it creates and drops
its own database. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from fabric_protos.common import common_pb2
from rich.console import Console
from rich.table import Table

from medalliance.app.alliance_network import EmbeddedAlliance
from medalliance.app.audit_index import AuditIndex
from medalliance.app.referral_demo import run_referral
from medalliance.audit.facts import LIFECYCLE_NAMESPACE, facts_of_block
from medalliance.database_url import parse_database_url
from medalliance.ledger.block import header_hash, new_block, set_transactions_filter
from medalliance.ledger.block_events import tx_outcomes
from medalliance.ledger.tx import ENDORSER_TRANSACTION, parse_envelope
from medalliance.node.config import load_network_config
from medalliance.node.embedded import EmbeddedNetwork

DEMO = Path(__file__).resolve().parents[1] / "networks" / "demo-alliance.yaml"


def workflow_envelopes(directory: Path) -> tuple[common_pb2.Block, list[bytes]]:
    """The genesis block and the VALID alliance transactions of one referral workflow."""
    with EmbeddedNetwork.open(load_network_config(DEMO), directory) as network:
        alliance = EmbeddedAlliance(network, "alliance")
        run_referral(alliance, lambda step: None)
        blocks = list(alliance.blocks("DistrictHCMSP", 0, None))
        alliance.close()
    envelopes = []
    for block in blocks[1:]:
        for data, outcome in zip(block.data.data, tx_outcomes(block), strict=True):
            # the alliance's own transactions, not the contracts' deployment
            if (
                outcome.code == 0
                and outcome.header_type == ENDORSER_TRANSACTION
                and parse_envelope(bytes(data)).header.chaincode_name != LIFECYCLE_NAMESPACE
            ):
                envelopes.append(bytes(data))
    return blocks[0], envelopes


def build_ledger(genesis: common_pb2.Block, envelopes: list[bytes], txs: int, per_block: int
                 ) -> list[common_pb2.Block]:  # fmt: skip
    """Genesis, then hash-chained blocks of `per_block` VALID transactions, `txs` in all."""
    chain = [genesis]
    made = 0
    while made < txs:
        count = min(per_block, txs - made)
        batch = [envelopes[(made + i) % len(envelopes)] for i in range(count)]
        block = new_block(len(chain), header_hash(chain[-1].header), batch)
        set_transactions_filter(block, [0] * count)
        chain.append(block)
        made += count
    return chain


def catch_up(url: str, blocks: list[common_pb2.Block]) -> tuple[float, int]:
    """Seconds for an empty index to read every block, and the facts it then holds."""
    with AuditIndex(parse_database_url(url), "alliance") as index:
        start = time.perf_counter()
        index.catch_up(blocks)
        return time.perf_counter() - start, index.count()


def facts_only(blocks: list[common_pb2.Block]) -> float:
    """Seconds to read the facts of every block, without a database."""
    start = time.perf_counter()
    for block in blocks:
        facts_of_block(block, "alliance")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--txs", type=int, default=10_000)
    parser.add_argument("--per-block", type=int, default=100, help="transactions per block")
    parser.add_argument("--postgres", default="", help="a PostgreSQL server URL (optional)")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="medalliance-bench-") as tmp:
        genesis, envelopes = workflow_envelopes(Path(tmp) / "net")
        blocks = build_ledger(genesis, envelopes, args.txs, args.per_block)
        console.print(f"{len(blocks)} blocks, {args.txs} transactions "
                      f"(a workflow of {len(envelopes)} repeated)")  # fmt: skip
        results = {"facts only (no database)": (facts_only(blocks), 0)}
        results["SQLite"] = catch_up(str(Path(tmp) / "audit.db"), blocks)
        if args.postgres:
            results["PostgreSQL"] = _on_postgres(args.postgres, blocks)
    table = Table("index", "seconds", "blocks/s", "tx/s", "facts")
    for name, (seconds, facts) in results.items():
        table.add_row(name, f"{seconds:.1f}", f"{len(blocks) / seconds:,.0f}",
                      f"{args.txs / seconds:,.0f}", f"{facts:,}" if facts else "")  # fmt: skip
    console.print(table)


def _on_postgres(server: str, blocks: list[common_pb2.Block]) -> tuple[float, int]:
    import psycopg

    name = f"medalliance_bench_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(server)
    try:
        return catch_up(urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", "")), blocks)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
