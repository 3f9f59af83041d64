"""The floor of Fabric's protocol in Python on this machine: CPU per call, message, signature.

Run: `make bench-floor` (or `.venv/bin/python benchmarks/protocol_floor.py [--rounds 3]
[--calls 4000] [--request-bytes 3500 --answer-bytes 2000 --block-bytes 70000]`).
Generates P-256 TLS and signing keys in a temporary folder (cryptogen, as `network init`
does), starts a grpc.aio server process with generic bytes handlers (no protobuf work) and, one
after the other, client processes (`protocol_floor_workers.py`) making 64 concurrent:
unary calls from grpc.aio over mutual TLS (node to node), unary calls from threads with the
SDK's sync channels over server TLS (as `benchmarks/e2e.py`'s load generator; again with all
threads on one channel, for comparison), request → answer
messages on long-lived bidi streams (Broadcast), and block messages pushed on one stream
(Deliver). Each process's CPU (user + system, /proc) is read only while the measured calls run.
Then ECDSA P-256 sign and verify with `identity/signing.py`, in this process.

Prints CPU µs per call or message on each end, calls/s, and the floor per committed transaction
computed from the parts (the formula is printed with it) against issue 15's ≤ 5 ms. With
`--rounds N` each part is measured N times; the minimum and median are shown (the machine is
shared: the minimum is the closest to the cost). `--plaintext` makes the same calls without
TLS, to tell TLS's share; smaller `--request-bytes`/`--answer-bytes` tell the per-call part
from the per-byte part. Asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from e2e import cpu_seconds
from medalliance.identity.cryptogen import OrgSpec, UserSpec, generate_org, load_signer
from medalliance.identity.signing import verify_signature

WORKERS = Path(__file__).resolve().with_name("protocol_floor_workers.py")
DOMAIN = "floor.example.com"
SERVER_NAME = f"peer0.{DOMAIN}"
# (mode, label, what it stands for in a transaction)
PARTS = (
    ("sync", "unary, sync SDK client (threads)", "Endorse, Submit, CommitStatus"),
    ("sync-shared", "unary, sync client, one shared channel", "(not in the floor)"),
    ("aio", "unary, grpc.aio client", "ProcessProposal"),
    ("bidi", "bidi stream message, request → answer", "Broadcast"),
    ("deliver", "stream message pushed by the server", "Deliver (one block)"),
)


@dataclass(frozen=True)
class Part:
    """One measurement: CPU µs per call/message on the server and on the client, calls/s."""

    server_us: float
    client_us: float
    rate: float


def make_keys(folder: Path) -> Path:
    """A one-organisation crypto folder with two peers (server, aio client) and a user."""
    spec = OrgSpec("FloorMSP", DOMAIN, "peer", nodes=("peer0", "peer1"), users=(UserSpec("User1"),))
    return generate_org(folder, spec, now=dt.datetime.now(dt.UTC))


def start_server(org: Path) -> tuple[subprocess.Popen[str], list[int]]:
    """The server process and its ports: with TLS, and without."""
    server = subprocess.Popen(
        [
            sys.executable,
            str(WORKERS),
            "serve",
            "--tls-dir",
            str(org / "peers" / SERVER_NAME / "tls"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline().split()
    if line[:1] != ["port"]:
        server.kill()
        raise SystemExit("the gRPC server process did not start")
    return server, [int(p) for p in line[1:]]


def measure(mode: str, org: Path, port: int, server_pid: int, args: argparse.Namespace) -> Part:
    calls = args.blocks if mode == "deliver" else args.calls
    client = subprocess.Popen(
        [
            sys.executable,
            str(WORKERS),
            "call",
            f"--mode={mode}",
            f"--tls-dir={org / 'peers' / f'peer1.{DOMAIN}' / 'tls'}",
            f"--port={port}",
            f"--server-name={SERVER_NAME}",
            f"--calls={calls}",
            f"--warmup={max(50, calls // 10)}",
            f"--concurrency={args.concurrency}",
            f"--request-bytes={args.request_bytes}",
            f"--answer-bytes={args.answer_bytes}",
            f"--block-bytes={args.block_bytes}",
            *(["--plaintext"] if args.plaintext else []),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert client.stdin is not None
    assert client.stdout is not None
    try:
        if client.stdout.readline().strip() != "warm":
            raise SystemExit(f"the {mode} client process failed while warming up")
        before = cpu_seconds(server_pid), cpu_seconds(client.pid)
        client.stdin.write("go\n")
        client.stdin.flush()
        done = client.stdout.readline().split()
        after = cpu_seconds(server_pid), cpu_seconds(client.pid)
        if done[:1] != ["done"]:
            raise SystemExit(f"the {mode} client process failed")
        made, elapsed = int(done[1]), float(done[2])
        client.stdin.close()
        client.wait(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
    return Part(
        server_us=(after[0] - before[0]) * 1e6 / made,
        client_us=(after[1] - before[1]) * 1e6 / made,
        rate=made / elapsed,
    )


def cpu_us(operation: Callable[[], object], seconds: float) -> float:
    """CPU µs per call of `operation` in this process, over at least `seconds`."""
    operation()
    count, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        operation()
        count += 1
    return (time.process_time() - start) * 1e6 / count


def ecdsa(org: Path, size: int, seconds: float) -> tuple[float, float]:
    """CPU µs per ECDSA P-256 signature and per verification of a `size`-byte message."""
    user = org / "users" / f"User1@{DOMAIN}" / "msp"
    signer = load_signer(user, "FloorMSP")
    public_key = signer.private_key.public_key()
    message = b"\x5a" * size
    signature = signer.sign(message)
    if not verify_signature(public_key, signature, message):
        raise SystemExit("our own signature did not verify")
    sign = cpu_us(lambda: signer.sign(message), seconds)
    verify = cpu_us(lambda: verify_signature(public_key, signature, message), seconds)
    return sign, verify


def floor_terms(
    parts: dict[str, Part], sign: float, verify: float, args: argparse.Namespace
) -> list[tuple[str, float, float]]:
    """(term, count per transaction, CPU µs each) of the floor; µs summed over both ends."""

    def both(mode: str) -> float:
        return parts[mode].server_us + parts[mode].client_us

    return [
        ("unary call from the SDK (Endorse, Submit, CommitStatus)", 3, both("sync")),
        ("unary call node to node (ProcessProposal)", 1, both("aio")),
        ("bidi stream message (Broadcast)", 1, both("bidi")),
        (
            f"Deliver block message ({args.deliver_streams} peers, {args.tx_per_block} tx/block)",
            args.deliver_streams / args.tx_per_block,
            both("deliver"),
        ),
        ("ECDSA P-256 verification", args.verifications, verify),
        ("ECDSA P-256 signature", args.signatures, sign),
    ]


def summarise(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.0f}"
    return f"{min(values):.0f} / {statistics.median(values):.0f}"


def report(
    rounds: list[tuple[dict[str, Part], float, float]],
    args: argparse.Namespace,
    console: Console,
) -> None:
    kind = "min / median" if len(rounds) > 1 else "one round"
    table = Table(title=f"CPU µs per call or message ({kind}, {len(rounds)} round(s))")
    for column in ("part", "stands for", "server", "client", "calls/s"):
        table.add_column(column, justify="left" if column in ("part", "stands for") else "right")
    for mode, label, stands_for in PARTS:
        measured = [parts[mode] for parts, _, _ in rounds]
        table.add_row(
            label,
            stands_for,
            summarise([p.server_us for p in measured]),
            summarise([p.client_us for p in measured]),
            summarise([p.rate for p in measured]),
        )
    table.add_row("ECDSA P-256 sign", "", "", summarise([s for _, s, _ in rounds]), "")
    table.add_row("ECDSA P-256 verify", "", "", summarise([v for _, _, v in rounds]), "")
    console.print(table)

    # Each round's floor from its own parts; the per-term columns show the rounds' minimum.
    floors = [sum(n * us for _, n, us in floor_terms(p, s, v, args)) for p, s, v in rounds]
    terms = [floor_terms(p, s, v, args) for p, s, v in rounds]
    floor = Table(title="The floor per committed transaction (CPU over all processes)")
    for column in ("term", "per tx", "µs each (min)", "µs per tx (min)"):
        floor.add_column(column, justify="left" if column == "term" else "right")
    for i, (name, count, _) in enumerate(terms[0]):
        each = min(t[i][2] for t in terms)
        floor.add_row(name, f"{count:g}", f"{each:.0f}", f"{count * each:.0f}")
    floor.add_row(
        "floor (min / median of rounds)",
        "",
        "",
        f"{min(floors) / 1000:.2f} / {statistics.median(floors) / 1000:.2f} ms",
    )
    console.print(floor)
    console.print(
        f"floor = 3 × sync unary + 1 × aio unary + 1 × bidi message + "
        f"{args.deliver_streams}/{args.tx_per_block} × Deliver block message + "
        f"{args.verifications} × verify + {args.signatures} × sign (each call or message: "
        "server + client CPU); issue 15's target: ≤ 5 ms per committed transaction"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=1, help="measure every part N times")
    parser.add_argument("--calls", type=int, default=4000, help="measured calls/messages per part")
    parser.add_argument("--blocks", type=int, default=1000, help="measured Deliver messages")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent callers/streams")
    parser.add_argument("--request-bytes", type=int, default=3500, help="request size")
    parser.add_argument("--answer-bytes", type=int, default=2000, help="answer size")
    parser.add_argument("--block-bytes", type=int, default=70_000, help="Deliver message size")
    parser.add_argument("--tx-per-block", type=float, default=20, help="for the floor")
    parser.add_argument(
        "--deliver-streams", type=int, default=2, help="peers receiving each block, for the floor"
    )
    parser.add_argument("--verifications", type=float, default=16, help="ECDSA per transaction")
    parser.add_argument("--signatures", type=float, default=5, help="signatures per transaction")
    parser.add_argument(
        "--plaintext", action="store_true", help="gRPC without TLS, to see what TLS costs"
    )
    parser.add_argument("--ecdsa-seconds", type=float, default=1.0, help="per ECDSA measurement")
    args = parser.parse_args()
    console = Console()
    rounds: list[tuple[dict[str, Part], float, float]] = []
    with tempfile.TemporaryDirectory(prefix="medalliance-floor-") as tmp:
        org = make_keys(Path(tmp))
        server, ports = start_server(org)
        port = ports[1] if args.plaintext else ports[0]
        try:
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("measuring", total=args.rounds * (len(PARTS) + 1))
                for _ in range(args.rounds):
                    parts = {}
                    for mode, label, _ in PARTS:
                        progress.update(task, description=label)
                        parts[mode] = measure(mode, org, port, server.pid, args)
                        progress.advance(task)
                    progress.update(task, description="ECDSA P-256")
                    sign, verify = ecdsa(org, args.request_bytes, args.ecdsa_seconds)
                    progress.advance(task)
                    rounds.append((parts, sign, verify))
        finally:
            server.terminate()
            server.wait(timeout=30)
    report(rounds, args, console)


if __name__ == "__main__":
    main()
