"""CPU of the ordering replicas themselves, per block and per transaction, in process.

Run: `.venv/bin/python benchmarks/ordering_core.py [--blocks 60] [--per-block 1 25 50]`.
Four consenters ordered by the embedded network's `EmbeddedOrdering`: the `Replica` and block
rules the ordering nodes run, their consensus messages passed in memory (no gRPC, no wire
encoding, no disk). Each block's transactions (≈ 3 KB, as `benchmarks/e2e.py` sends, from
`admission.py`) are admitted at the first consenter, forwarded, proposed, voted on and
committed by all four. What this leaves out is what the real nodes pay on top: transport,
hard-state and block files, and ECDSA beyond one check per transaction (the in-memory link
does not check consensus signatures, and the four replicas share one process's memory of
checked signatures). Prints CPU ms per block and per transaction for each block size and the
ECDSA verifications made; the per-block and per-transaction parts of the cost follow from two
sizes. Asserts nothing.
"""

from __future__ import annotations

import argparse
import time

from fabric_protos.common import common_pb2
from rich.console import Console
from rich.table import Table

from admission import NOW, channel, signer, transaction
from medalliance.identity.ca import CertificateAuthority
from medalliance.identity.verified import VERIFIED
from medalliance.ledger.block import header_hash
from medalliance.ledger.channel_config import ChannelConfig, genesis_block
from medalliance.node.embedded_ordering import EmbeddedOrdering

CONSENTERS = 4


def ordering() -> tuple[EmbeddedOrdering, list[common_pb2.Block], CertificateAuthority]:
    """Four consenters of one channel with one application organisation; its members' CA."""
    orderers = CertificateAuthority.create("ca.ord", "OrdMSP", now=NOW)
    members = CertificateAuthority.create("ca.org1", "Org1MSP", now=NOW)
    signers = [signer(orderers, f"orderer{i}", "OrdMSP", "orderer") for i in range(CONSENTERS)]
    definition = channel(orderers, members, signers)
    genesis = genesis_block(definition, timestamp_ms=int(NOW.timestamp() * 1000))
    delivered: list[common_pb2.Block] = []
    service = EmbeddedOrdering(
        ChannelConfig.from_block(genesis),
        signers,
        delivered.append,
        next_number=1,
        previous_hash=header_hash(genesis.header),
        clock=lambda: NOW,
    )
    return service, delivered, members


def measure(per_block: int, blocks: int) -> tuple[float, float]:
    """(CPU ms per block over the four replicas, ECDSA verifications per block)."""
    service, delivered, members = ordering()
    client = signer(members, "User1", "Org1MSP", "client")
    batches = [
        [transaction(client, f"{per_block}-{b}-{i}") for i in range(per_block)]
        for b in range(blocks)
    ]
    verified, started = VERIFIED.verified, time.process_time()
    for batch in batches:
        for envelope in batch:
            service.broadcast(envelope, now=NOW)
        service.flush()
    elapsed = time.process_time() - started
    if len(delivered) != blocks:
        raise RuntimeError(f"ordered {len(delivered)} blocks, expected {blocks}")
    return elapsed * 1000 / blocks, (VERIFIED.verified - verified) / blocks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=60, help="blocks per size")
    parser.add_argument(
        "--per-block", type=int, nargs="+", default=[1, 25, 50], help="transactions per block"
    )
    args = parser.parse_args()
    if args.blocks < 1 or min(args.per_block) < 1:
        parser.error("--blocks and --per-block must be at least 1")
    table = Table(title=f"{CONSENTERS} replicas in one process, in-memory link")
    for column in ("tx per block", "CPU ms per block", "CPU ms per tx", "ECDSA per block"):
        table.add_column(column, justify="right")
    for size in args.per_block:
        per_block, ecdsa = measure(size, args.blocks)
        table.add_row(str(size), f"{per_block:.2f}", f"{per_block / size:.3f}", f"{ecdsa:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
