"""CPU per endorsement: one peer checking, simulating and signing proposals, in process.

Run: `.venv/bin/python benchmarks/endorse.py [--proposals 2000] [--rounds 3] [--profile]`.
Every peer pays this once per transaction it endorses (the gateway peer for its own
organisation, the other peer for ProcessProposal): the proposal's signature check (one ECDSA
verification), the Writers policy, the duplicate check, the contract's simulation, the
response and its signature. Uses `validate_commit.py`'s network (contract `visit`); proposals
are built before timing. Prints CPU µs per endorsement per round (min and median), and with
`--profile` the top of a cProfile of one round. Asserts nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console

from medalliance.ledger.tx import ProposalView, new_signed_proposal, parse_signed_proposal
from medalliance.node.config import NetworkConfig
from medalliance.node.embedded import EmbeddedNetwork
from medalliance.node.peer import Peer
from validate_commit import CONFIG, PATIENT


def proposals(network: EmbeddedNetwork, peer: Peer, count: int, tag: str) -> list[ProposalView]:
    signer = network.client("HospAMSP").signer
    stamp = int(network.now().timestamp() * 1000)
    return [
        parse_signed_proposal(
            new_signed_proposal(
                signer,
                channel_id="alliance",
                chaincode="visit",
                args=[b"RegisterVisit", f"{tag}-{i}".encode(), PATIENT.encode(), b"HospAMSP"],
                nonce=os.urandom(24),
                timestamp_ms=stamp,
            )[0],
            max_bytes=peer.max_proposal_bytes,
        )
        for i in range(count)
    ]


def round_us(network: EmbeddedNetwork, peer: Peer, views: list[ProposalView]) -> float:
    now = network.now()
    started = time.process_time()
    for view in views:
        if not peer.endorse_proposal(view, now=now).ok:
            raise SystemExit("a proposal was refused: the benchmark's network is broken")
    return (time.process_time() - started) / len(views) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proposals", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="medalliance-bench-") as tmp:
        network = EmbeddedNetwork.open(NetworkConfig.model_validate(CONFIG), Path(tmp) / "net")
        try:
            peer = network.endorsers_for("alliance", "visit")[0]
            round_us(network, peer, proposals(network, peer, 50, "warm"))
            results = [
                round_us(network, peer, proposals(network, peer, args.proposals, f"r{r}"))
                for r in range(args.rounds)
            ]
            console.print(
                f"CPU µs per endorsement ({peer.msp_id}, {args.proposals} proposals × "
                f"{args.rounds}): min {min(results):.0f}, median {statistics.median(results):.0f}"
            )
            if args.profile:
                views = proposals(network, peer, args.proposals, "profiled")
                profile = cProfile.Profile()
                profile.runcall(round_us, network, peer, views)
                pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        finally:
            network.close()


if __name__ == "__main__":
    main()
