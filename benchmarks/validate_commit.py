"""Validate+commit throughput of blocks of 500 transactions with two endorsements each.

Run: `make bench` (or `.venv/bin/python benchmarks/validate_commit.py --blocks 4`).
Measures one peer committing pre-built blocks on one core (validation, MVCC, block store with
fsync, SQLite state), and in the same run how many ECDSA P-256 verifications per second this
machine does: each transaction needs three (creator and two endorsers), which bounds the rate.
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fabric_protos.common import common_pb2
from rich.console import Console
from rich.progress import Progress

from medalliance.identity.cryptogen import load_signer
from medalliance.identity.verified import VERIFIED
from medalliance.ledger.block import header_hash, new_block
from medalliance.ledger.commit_certificate import precommit_bytes, write_certificate
from medalliance.ledger.tx import new_signed_proposal, new_transaction_payload, sign_envelope
from medalliance.node.config import NetworkConfig
from medalliance.node.embedded import EmbeddedNetwork

CONFIG = {
    "name": "bench",
    "organizations": [
        {
            "name": "Reg",
            "msp_id": "RegMSP",
            "domain": "reg.example.com",
            "type": "regulator",
            "peers": [{"name": "peer0", "port": 9051}],
        },
        {
            "name": "HospA",
            "msp_id": "HospAMSP",
            "domain": "hospa.example.com",
            "type": "tertiary",
            "regulator": "Reg",
            "peers": [{"name": "peer0", "port": 9151}],
            "orderers": [{"name": "orderer0", "port": 9050}],
            "users": [{"name": "User1", "role": "doctor"}],
        },
        {
            "name": "HospB",
            "msp_id": "HospBMSP",
            "domain": "hospb.example.com",
            "type": "tertiary",
            "regulator": "Reg",
            "peers": [{"name": "peer0", "port": 9251}],
        },
    ],
    "channels": [
        {
            "name": "alliance",
            "batch": {"max_message_count": 500},
            "contracts": [
                {
                    "name": "visit",
                    "package": "medalliance.alliance.visit:VisitContract",
                    "endorsement_policy": "AND('HospAMSP.peer', 'HospBMSP.peer')",
                }
            ],
        }
    ],
}
PATIENT = "0123456789abcdef0123456789abcdef"


def ecdsa_verifies_per_second(seconds: float = 2.0) -> tuple[float, float]:
    """Verifications per second of wall time and per second of this process's CPU time."""
    key = ec.generate_private_key(ec.SECP256R1())
    message = os.urandom(600)
    signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
    public = key.public_key()
    count, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        count += 1
    return count / (time.perf_counter() - start), count / (time.process_time() - cpu_start)


def build_blocks(
    network: EmbeddedNetwork, blocks: int, size: int, console: Console
) -> list[common_pb2.Block]:
    client = network.client("HospAMSP")
    endorsers = network.endorsers_for("alliance", "visit")
    ledger = network.peers_of("alliance")[0].channel("alliance")
    number, previous = ledger.height, header_hash(ledger.store.get_block(ledger.height - 1).header)
    # The one ordering node: its precommit alone is the commit certificate (n = 1, q = 1).
    orderer = load_signer(network.layout.orderer_dir("HospAMSP", "orderer0") / "msp", "HospAMSP")
    out = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("endorsing transactions", total=blocks * size)
        for b in range(blocks):
            envelopes = []
            for i in range(size):
                signed, _ = new_signed_proposal(
                    client.signer,
                    channel_id="alliance",
                    chaincode="visit",
                    args=[b"RegisterVisit", f"B{b}-{i}".encode(), PATIENT.encode(), b"HospAMSP"],
                    nonce=os.urandom(24),
                    timestamp_ms=int(network.now().timestamp() * 1000),
                )
                responses = [p.endorse(signed, now=network.now()) for p in endorsers]
                payload = new_transaction_payload(
                    responses[0].proposal, [r.response for r in responses]
                )
                envelopes.append(sign_envelope(payload, client.signer))
                progress.advance(task)
            block = new_block(number, previous, envelopes)
            precommit = orderer.sign(precommit_bytes("alliance", block, 0))
            write_certificate(
                block,
                round=0,
                signatures=[(orderer.serialized_identity, precommit)],
                last_config=0,
            )
            previous, number = header_hash(block.header), number + 1
            out.append(block)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--size", type=int, default=500)
    args = parser.parse_args()
    console = Console(stderr=True)
    with tempfile.TemporaryDirectory(prefix="medalliance-bench-") as tmp:
        console.print("creating a 3-organisation network…")
        network = EmbeddedNetwork.open(NetworkConfig.model_validate(CONFIG), Path(tmp))
        blocks = build_blocks(network, args.blocks, args.size, console)
        peer = next(p for p in network.peers if p.msp_id == "HospBMSP").channel("alliance")
        timings, cpu = [], 0.0
        # The endorsers ran in this process, so their signatures are remembered: forget them,
        # to commit as a peer that endorsed none of these transactions verifies (3 per tx).
        VERIFIED.forget()
        verified_before = VERIFIED.verified
        for block in blocks:
            start, cpu_start = time.perf_counter(), time.process_time()
            result = peer.commit(block)
            timings.append(time.perf_counter() - start)
            cpu += time.process_time() - cpu_start
            assert all(code == 0 for code in result.codes), "benchmark transactions must be valid"
        verified = VERIFIED.verified - verified_before
        network.close()
    txs = args.blocks * args.size
    rate = txs / sum(timings)
    verifies, verifies_cpu = ecdsa_verifies_per_second()
    print(f"validate+commit: {txs} txs in {args.blocks} blocks of {args.size}, 2 endorsements each")
    print(f"  throughput      {rate:8.0f} tx/s on one core")
    print(f"  per block       {statistics.median(timings) * 1000:8.1f} ms median")
    # CPU time moves less than wall time with the neighbours' load on a shared machine.
    print(f"  CPU per tx      {cpu / txs * 1e6:8.0f} µs (process time, all threads)")
    print(f"  ECDSA at commit {verified / txs:8.2f} verifications per tx")
    print(f"  ECDSA verify    {verifies:8.0f} /s (same run)")
    bound = verifies / (3 + 1 / args.size)
    print(f"  crypto bound    {bound:8.0f} tx/s (3 verifications per tx, +1 per block)")
    print(f"  of the bound    {rate / bound:8.0%}")
    # The same share in CPU time: the commit's and the verifications' CPU move together with
    # the neighbours' load on a shared machine, where the wall-clock share swings by ±30 points.
    cpu_bound = verifies_cpu / (3 + 1 / args.size)
    print(f"  of the bound    {txs / cpu / cpu_bound:8.0%} in CPU time")


if __name__ == "__main__":
    main()
