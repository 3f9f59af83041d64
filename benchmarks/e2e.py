"""End-to-end throughput and latency: submitted → committed over real gRPC and TLS on localhost.

Run: `make bench-e2e` (or `.venv/bin/python benchmarks/e2e.py --txs 2000 --clients 32
[--orderers 4]`). Starts Fabric's test network config (one ordering node, or with
`--orderers 4` the BFT test network's four; peers of Org1 and Org2, contract `basic` with
AND(Org1, Org2) endorsement) as processes on free ports in a temporary folder.
Each client thread holds its own Gateway connection as Org1's User1, made (and answering a
first query) before the clock starts, and calls `submit_transaction("CreateAsset", ...)`, which
returns once the transaction committed: endorse on both peers, sign, order, commit, commit
status. Prints throughput and p50/p99 latency of the whole call, the ordering nodes' signature
verifications per block (consensus messages; transaction admission and validity), the stream
messages they wrote to each other per block (and the consensus messages and forwarded
transactions those carried), and the CPU time per committed transaction of each process role
(ordering nodes, the gateway peer Org1's, the other peer, this load generator) from the
kernel's per-process counters, and the threads' context switches per committed transaction
(waits, preemptions) by role; asserts nothing. `--batch-timeout-ms` replaces the config's batch
timeout on every channel, to see what a block's size trades between latency and CPU.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from medalliance.app.session import GatewayAdminSession, connect_as
from medalliance.node import launcher
from medalliance.node.bootstrap import NetworkLayout, init_network
from medalliance.node.config import NetworkConfig, load_network_config
from medalliance.node.deploy import deploy_contracts
from medalliance.sdk import Contract, Gateway

NETWORKS = Path(__file__).resolve().parents[1] / "networks"
CONFIGS = {1: NETWORKS / "fabric-test-network.yaml", 4: NETWORKS / "bft-test-network.yaml"}


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def on_free_ports(config: NetworkConfig, batch_timeout_ms: int | None) -> NetworkConfig:
    data = config.model_dump()
    if batch_timeout_ms is not None:
        for channel in data["channels"]:
            channel["batch"]["timeout_ms"] = batch_timeout_ms
    nodes = [n for o in data["organizations"] for n in (*o["peers"], *o["orderers"])]
    orderers = [n for o in data["organizations"] for n in o["orderers"]]
    ports = free_ports(2 * len(nodes) + len(orderers))
    for node, port, ops in zip(nodes, ports[::2], ports[1::2], strict=False):
        node["port"], node["operations_port"] = port, ops
    # A free port may leave no room for the default cluster port (port + 20000): pick one too.
    for node, cluster in zip(orderers, ports[2 * len(nodes) :], strict=True):
        node["cluster_port"] = cluster
    return NetworkConfig.model_validate(data)


def run(
    txs: int, clients: int, orderers: int, batch_timeout_ms: int | None, console: Console
) -> None:
    with tempfile.TemporaryDirectory(prefix="medalliance-e2e-") as tmp:
        config = on_free_ports(load_network_config(CONFIGS[orderers]), batch_timeout_ms)
        timeouts = sorted({c.batch.timeout_ms for c in config.channels})
        console.print(f"batch timeout: {', '.join(map(str, timeouts))} ms")
        layout = init_network(config, Path(tmp) / "net", now=dt.datetime.now(dt.UTC))
        console.print(f"starting the test network ({orderers} ordering node(s), 2 peers) ...")
        launcher.up(layout)
        try:
            session = GatewayAdminSession(layout, "Org1MSP")
            sessions = {"Org1MSP": session, "Org2MSP": GatewayAdminSession(layout, "Org2MSP")}
            deploy_contracts(config, sessions.__getitem__)
            for s in sessions.values():
                s.close()
            gateways = [connect_as(layout, "Org1") for _ in range(clients)]
            try:
                contracts = [ready_contract(gateway) for gateway in gateways]
                before = ordering_counters(layout)
                peers_before = peer_counters(layout)
                cpu_before = cpu_by_role(layout)
                switches_before = switches_by_role(layout)
                committed = measure(contracts, txs, console)
                report_peers(peers_before, peer_counters(layout), committed, console)
                report_cpu(cpu_before, cpu_by_role(layout), committed, console)
                report_switches(switches_before, switches_by_role(layout), committed, console)
                report_ordering(before, ordering_counters(layout), committed, console)
            finally:
                for gateway in gateways:
                    gateway.close()
        finally:
            launcher.down(layout)


def ready_contract(gateway: Gateway) -> Contract:
    """`basic` on mychannel over `gateway`, its connection made: one query answered, so the
    TLS handshake and the connection's first call are not counted as the run's (a hospital
    system connects once and submits for hours)."""
    contract = gateway.get_network("mychannel").get_contract("basic")
    contract.evaluate_transaction("AssetExists", "bench-warm-up")
    return contract


def measure(contracts: list[Contract], txs: int, console: Console) -> int:
    """Submit `txs` CreateAsset transactions, one client thread per contract."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    counter = iter(range(txs))

    def client(contract: Contract, progress: Progress, task: object) -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            began = time.perf_counter()
            try:
                contract.submit_transaction("CreateAsset", f"bench{n}", "blue", "5", "Ana", "100")
            except Exception as exc:  # counted and shown, the run goes on
                with lock:
                    failures.append(type(exc).__name__ + ": " + str(exc)[:120])
                continue
            finally:
                progress.advance(task)  # type: ignore[arg-type]
            with lock:
                latencies.append(time.perf_counter() - began)

    # Two redraws a second, not rich's ten: the bar is for the eye, and its redraws run on
    # this process's CPU, which the run counts as the load generator's.
    with Progress(console=console, transient=True, refresh_per_second=2) as progress:
        task = progress.add_task(f"{txs} CreateAsset, {len(contracts)} clients", total=txs)
        started = time.perf_counter()
        threads = [
            threading.Thread(target=client, args=(contract, progress, task))
            for contract in contracts
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
    latencies.sort()
    console.print(f"committed {len(latencies)} of {txs} transactions in {elapsed:.1f} s")
    console.print(f"throughput: {len(latencies) / elapsed:.0f} tx/s (submitted → committed)")
    if latencies:
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        console.print(
            f"latency: p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
        )
    if failures:
        console.print(f"[red]{len(failures)} failed[/red], e.g. {failures[0]}")
    return len(latencies)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pids_by_role(layout: NetworkLayout) -> dict[str, list[int]]:
    """The running nodes' pids per role: ordering nodes, the gateway peer (Org1's, which the
    clients call), the other peers."""
    roles: dict[str, list[int]] = {"ordering nodes": [], "gateway peer": [], "other peer": []}
    for node in launcher.nodes_of(layout):
        pid = launcher.running_pid(node, layout.directory)
        if pid is None:
            continue
        if node.role == "orderer":
            roles["ordering nodes"].append(pid)
        else:
            roles["gateway peer" if node.organization == "Org1MSP" else "other peer"].append(pid)
    return roles


def cpu_by_role(layout: NetworkLayout) -> dict[str, float]:
    """CPU seconds so far per role (`pids_by_role`) and of this process (the load generator)."""
    roles = {
        role: sum(cpu_seconds(pid) for pid in pids) for role, pids in pids_by_role(layout).items()
    }
    roles["load generator"] = time.process_time()
    return roles


def report_cpu(
    before: dict[str, float], after: dict[str, float], committed: int, console: Console
) -> None:
    if not committed:
        return
    per_tx = {role: (after[role] - before[role]) * 1000 / committed for role in after}
    parts = ", ".join(f"{role} {ms:.2f}" for role, ms in per_tx.items())
    console.print(f"CPU ms per committed transaction: {sum(per_tx.values()):.2f} ({parts})")


def switches(pid: int) -> tuple[int, int]:
    """Context switches so far of every thread of `pid` (Linux /proc): (voluntary — a thread
    blocked, waiting for a socket, a lock or another thread's hand-off; involuntary — the
    kernel gave its core to another runnable thread)."""
    waits = preempted = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            lines = (task / "status").read_text().splitlines()
        except FileNotFoundError:  # the thread ended since the folder was listed
            continue
        for line in lines:
            key, _, value = line.partition(":")
            if key == "voluntary_ctxt_switches":
                waits += int(value)
            elif key == "nonvoluntary_ctxt_switches":
                preempted += int(value)
    return waits, preempted


def switches_by_role(layout: NetworkLayout) -> dict[str, tuple[int, int]]:
    """`switches` per role, and this process's (its threads', ended ones included)."""
    roles = {}
    for role, pids in pids_by_role(layout).items():
        counts = [switches(pid) for pid in pids]
        roles[role] = (sum(c[0] for c in counts), sum(c[1] for c in counts))
    own = resource.getrusage(resource.RUSAGE_SELF)
    roles["load generator"] = (own.ru_nvcsw, own.ru_nivcsw)
    return roles


def report_switches(
    before: dict[str, tuple[int, int]],
    after: dict[str, tuple[int, int]],
    committed: int,
    console: Console,
) -> None:
    """Thread switches per committed transaction by role: under load each of gRPC's
    completions is a hand-off between its poller thread and the event loop, so this counts
    the wake-ups a role's CPU goes into, beside the CPU itself."""
    if not committed:
        return
    parts = ", ".join(
        f"{role} {(a[0] - before[role][0]) / committed:.1f} / "
        f"{(a[1] - before[role][1]) / committed:.1f}"
        for role, a in after.items()
    )
    console.print(f"thread switches per committed transaction, waits / preemptions: {parts}")


def ordering_counters(layout: NetworkLayout) -> dict[str, dict[str, int]]:
    """Per ordering node: blocks stored and signatures verified so far (from /status)."""
    found = {}
    for row in launcher.status(layout):
        consensus = row.get("consensus", {}).get("mychannel")
        if row["role"] == "orderer" and consensus:
            wal = consensus.get("hardState", {})  # absent on older nodes
            catch_up = consensus.get("catchUp") or {}  # absent before catch-up on demand
            found[row["name"]] = {
                "height": row["height"],
                **consensus["signaturesVerified"],
                "walAppends": wal.get("appends", 0),
                "walBytes": wal.get("bytes", 0),
                "pulled": catch_up.get("blocksPulled", 0),
                "catchUps": catch_up.get("catchUps", 0),
                **_consenter_counts(row["name"], layout),
            }
    return found


def _consenter_counts(name: str, layout: NetworkLayout) -> dict[str, int]:
    """Stream messages the ordering node wrote to the other consenters and the items of each
    kind they carried (its /status `consenterCalls`, which the launcher's rows leave out;
    before branch ord, one stream per kind: `Step` and `Forward` with their own counts)."""
    node = next(n for n in launcher.nodes_of(layout) if n.name == name)
    calls = (launcher.probe(node) or {}).get("consenterCalls", {})
    methods = [m for m in ("Messages", "Step", "Forward") if "calls" in calls.get(m, {})]
    return {
        "messages": sum(calls[m]["calls"] for m in methods),
        "stepItems": calls.get("Step", {}).get("items", 0),
        "forwardItems": calls.get("Forward", {}).get("items", 0),
    }


def report_ordering(
    before: dict[str, dict[str, int]],
    after: dict[str, dict[str, int]],
    committed: int,
    console: Console,
) -> None:
    blocks = max(a["height"] - before[n]["height"] for n, a in after.items())
    if blocks <= 0:
        return
    for kind in ("consensus", "transactions"):
        total = sum(a[kind] - before[n][kind] for n, a in after.items())
        console.print(
            f"signature verifications per block, {kind}: {total / blocks:.1f} over "
            f"{len(after)} ordering node(s) ({total / blocks / len(after):.1f} each); "
            f"{blocks} blocks"
        )
    pulled = sum(a["pulled"] - before[n]["pulled"] for n, a in after.items())
    catch_ups = sum(a["catchUps"] - before[n]["catchUps"] for n, a in after.items())
    console.print(
        f"blocks pulled from another ordering node: {pulled} over {len(after)} node(s) in "
        f"{catch_ups} catch-up(s); {blocks} blocks"
    )
    appends = sum(a["walAppends"] - before[n]["walAppends"] for n, a in after.items())
    written = sum(a["walBytes"] - before[n]["walBytes"] for n, a in after.items())
    if appends and committed:
        console.print(
            f"consensus.wal per ordering node: {appends / blocks / len(after):.1f} fsyncs per "
            f"block, {written / committed / len(after):.0f} bytes per committed transaction"
        )
    delta = {
        key: sum(a.get(key, 0) - before[n].get(key, 0) for n, a in after.items())
        for key in ("messages", "stepItems", "forwardItems")
    }
    if delta["messages"]:
        each = delta["messages"] / blocks / len(after)
        console.print(
            f"consenter messages per block: {delta['messages'] / blocks:.1f} over "
            f"{len(after)} ordering node(s) ({each:.1f} each), carrying "
            f"{delta['stepItems'] / blocks:.1f} consensus messages and "
            f"{delta['forwardItems'] / blocks:.1f} forwarded transactions"
        )


def peer_counters(layout: NetworkLayout) -> dict[str, dict[str, int]]:
    """Per peer: ECDSA verifications made and answered from memory so far (from /status)."""
    return {
        row["organization"]: row["signatures"]
        for row in launcher.status(layout)
        if row["role"] == "peer" and "signatures" in row
    }


def report_peers(
    before: dict[str, dict[str, int]],
    after: dict[str, dict[str, int]],
    committed: int,
    console: Console,
) -> None:
    if not committed or not after:
        return
    parts = ", ".join(
        f"{msp} {(a['verified'] - before[msp]['verified']) / committed:.2f} "
        f"({(a['reused'] - before[msp]['reused']) / committed:.2f} answered from memory)"
        for msp, a in sorted(after.items())
        if msp in before
    )
    console.print(f"peer ECDSA verifications per committed transaction: {parts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=2000, help="transactions to submit")
    parser.add_argument("--clients", type=int, default=32, help="concurrent client threads")
    parser.add_argument(
        "--orderers", type=int, choices=sorted(CONFIGS), default=1, help="BFT ordering nodes"
    )
    parser.add_argument(
        "--batch-timeout-ms",
        type=int,
        default=None,
        help="the channels' batch timeout (default: the network config's)",
    )
    args = parser.parse_args()
    if args.batch_timeout_ms is not None and args.batch_timeout_ms < 1:
        parser.error("--batch-timeout-ms must be at least 1")
    run(args.txs, args.clients, args.orderers, args.batch_timeout_ms, Console())


if __name__ == "__main__":
    main()
