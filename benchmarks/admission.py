"""CPU per transaction of one ordering node's admission path, in process.

Run: `.venv/bin/python benchmarks/admission.py --blocks 100`. A one-consenter channel on a real
block store in a temporary folder; blocks of 20 endorser transactions of ≈ 3 KB (as
`benchmarks/e2e.py` sends) signed by one client. Times, in CPU seconds of this process:
- the entry node's share: the Broadcast handler's parse, then `BlockRules.admit`;
- a follower's share: `BlockRules.admit` of each forwarded transaction, then valid(v) of the
  block proposing them;
- one bare ECDSA verification of such a payload, the floor each node must pay per transaction.
Prints ms per transaction and ECDSA verifications per transaction; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fabric_protos.common import common_pb2

from medalliance.consensus.messages import Value
from medalliance.identity.ca import CertificateAuthority
from medalliance.identity.msp import Msp
from medalliance.identity.signing import Signer, verify_signature
from medalliance.identity.verified import VERIFIED
from medalliance.ledger.block import header_hash, new_block
from medalliance.ledger.block_store import BlockStore
from medalliance.ledger.channel_config import (
    ChannelConfig,
    ChannelDefinition,
    OrgDefinition,
    genesis_block,
)
from medalliance.ledger.commit_certificate import Consenter
from medalliance.ledger.tx import ENDORSER_TRANSACTION, compute_tx_id, parse_envelope
from medalliance.node import ordering
from medalliance.node.block_rules import BlockRules

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
# The Broadcast handler's parse; code before the parse memo (to compare, with PYTHONPATH) had none
BROADCAST_PARSE = getattr(ordering, "parsed", parse_envelope)
PER_BLOCK = 20
PAYLOAD_DATA = 3000  # bytes of transaction body besides the header


def signer(ca: CertificateAuthority, name: str, msp_id: str, ou: str) -> Signer:
    issued = ca.issue(f"{name}@{msp_id}", node_ou=ou, now=NOW)  # type: ignore[arg-type]
    return Signer.from_pem(msp_id, issued.cert_pem, issued.key_pem)


def channel(
    orderers: CertificateAuthority, members: CertificateAuthority, consenters: list[Signer]
) -> ChannelDefinition:
    """Channel "ch": Org1MSP (`members`) writes; `consenters` of OrdMSP (`orderers`) order."""
    return ChannelDefinition(
        channel_id="ch",
        application_orgs=(
            OrgDefinition(
                "Org1MSP", Msp("Org1MSP", (members.certificate,)), "tertiary", None, None, ()
            ),
        ),
        orderer_orgs=(
            OrgDefinition(
                "OrdMSP", Msp("OrdMSP", (orderers.certificate,)), "orderer", None, None, ()
            ),
        ),
        consenters=tuple(f"127.0.0.1:{7050 + i}" for i in range(len(consenters))),
        consenter_set=tuple(
            Consenter(i + 1, f"orderer{i}", "127.0.0.1", 7050 + i, "OrdMSP", c.serialized_identity)
            for i, c in enumerate(consenters)
        ),
    )


def transaction(client: Signer, nonce: str) -> bytes:
    identity = client.serialized_identity
    channel_header = common_pb2.ChannelHeader(
        type=ENDORSER_TRANSACTION, channel_id="ch", tx_id=compute_tx_id(nonce.encode(), identity)
    )
    channel_header.timestamp.FromDatetime(NOW)
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=common_pb2.SignatureHeader(
            creator=identity, nonce=nonce.encode()
        ).SerializeToString(),
    )
    payload = common_pb2.Payload(header=header, data=b"\x01" * PAYLOAD_DATA).SerializeToString()
    return common_pb2.Envelope(payload=payload, signature=client.sign(payload)).SerializeToString()


def timed(blocks: list[list[bytes]], work: Callable[[list[bytes]], None]) -> tuple[float, float]:
    """(CPU ms, ECDSA verifications) per transaction of `work` over every block."""
    count = sum(len(b) for b in blocks)
    verified, started = VERIFIED.verified, time.process_time()
    for block in blocks:
        work(block)
    elapsed = time.process_time() - started
    return elapsed * 1000 / count, (VERIFIED.verified - verified) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=100)
    args = parser.parse_args()
    orderers = CertificateAuthority.create("ca.ord", "OrdMSP", now=NOW)
    members = CertificateAuthority.create("ca.org1", "Org1MSP", now=NOW)
    consenter = signer(orderers, "orderer0", "OrdMSP", "orderer")
    client = signer(members, "User1", "Org1MSP", "client")
    definition = channel(orderers, members, [consenter])
    genesis = genesis_block(definition, timestamp_ms=int(NOW.timestamp() * 1000))
    config = ChannelConfig.from_block(genesis)
    with tempfile.TemporaryDirectory() as folder:
        store = BlockStore.open(Path(folder) / "blocks")
        store.append(genesis)
        rules = BlockRules(config=lambda: config, store=store, signer=consenter, now=lambda: NOW)

        def batches(prefix: str) -> list[list[bytes]]:
            return [
                [transaction(client, f"{prefix}{b}-{i}") for i in range(PER_BLOCK)]
                for b in range(args.blocks)
            ]

        def entry(block: list[bytes]) -> None:
            for envelope in block:
                BROADCAST_PARSE(envelope)  # BroadcastService: the channel and header type
                rules.admit(envelope, NOW)

        def follower(block: list[bytes]) -> None:
            for envelope in block:
                rules.admit(envelope, NOW)
            proposal = new_block(store.height, store.last_header_hash, block)
            rules.valid(
                store.height, Value(header_hash(proposal.header), proposal.SerializeToString())
            )

        entry_ms, entry_ecdsa = timed(batches("e"), entry)
        follower_ms, follower_ecdsa = timed(batches("f"), follower)
        store.close()
    payload = common_pb2.Envelope.FromString(transaction(client, "floor"))
    key = client.private_key.public_key()
    started = time.process_time()
    for _ in range(1000):
        verify_signature(key, payload.signature, payload.payload)
    floor_ms = time.process_time() - started  # 1000 verifications: ms each
    print(f"entry node: {entry_ms:.3f} ms per transaction ({entry_ecdsa:.2f} ECDSA)")
    print(f"follower: {follower_ms:.3f} ms per transaction ({follower_ecdsa:.2f} ECDSA)")
    print(f"one ECDSA verification: {floor_ms:.3f} ms")
    print(
        f"four nodes (one entry, three followers): {entry_ms + 3 * follower_ms:.3f} ms per transaction"
    )


if __name__ == "__main__":
    main()
