"""Run one node (a peer or an ordering node) as this process, until SIGTERM or SIGINT.

`network init` writes a `node.yaml` per node into `nodes/<host>/`; `medalliance node start
--config nodes/<host>/node.yaml` runs it. Logs are JSON lines on stderr (one object per event,
with names, numbers and ids only). Shutdown is graceful: end the open subscriptions (Deliver and
event streams, commit-status waits: they would otherwise hold it for the whole grace, and their
clients reconnect elsewhere), stop accepting calls, let running ones finish for a few seconds,
stop pulling blocks, close the ledgers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import uvloop

from medalliance.network.tls import MAX_MESSAGE_BYTES, server_options
from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.collector import settle_collector
from medalliance.node.config import load_node_file
from medalliance.node.operations import OperationsServer
from medalliance.node.orderer_node import OrdererNode
from medalliance.node.peer_node import PeerNode

log = logging.getLogger(__name__)

GRACE_S = 5.0
LEDGERS_TIMEOUT_S = 60.0  # a large world state takes a while to hash (docs/audit.md)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def run(config_path: Path) -> None:
    """Run the node described by `config_path` until a termination signal, on uvloop.

    Why uvloop: every gRPC completion wakes the loop (grpc.aio hands it over from its poller
    thread through a socket), and a transaction makes several on each node, so the loop's own
    cost per wake-up is a visible share of a node's CPU; uvloop's is lower than the standard
    loop's (docs/performance.md, "The event loop"). The node's code is the same on both loops:
    tests that run nodes inside the test process use the standard one."""
    uvloop.run(serve(config_path))


async def serve(config_path: Path) -> None:
    """Run the node described by `config_path` until a termination signal."""
    spec, network_dir = load_node_file(config_path)
    layout = NetworkLayout.load(network_dir)
    org = layout.config.organization(spec.organization)
    node: PeerNode | OrdererNode = (
        PeerNode(layout, org, spec.name)
        if spec.role == "peer"
        else OrdererNode(layout, org, spec.name)
    )
    server = grpc.aio.server(options=server_options(_receive_limit_bytes(layout, spec.role)))
    loop = asyncio.get_running_loop()
    operations = OperationsServer(
        node.operations_address,
        lambda: {**node.status(), "pid": os.getpid()},
        metrics=node.metrics.exposition,
        ledgers=_on_loop(loop, node.ledger_digests) if isinstance(node, PeerNode) else None,
    )
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await node.start(server)
    settle_collector()
    operations.start()
    operations.healthy = True
    log.info("node started", extra={"node": node.host, "role": spec.role, "address": node.address})
    try:
        await stopping.wait()
    finally:
        operations.healthy = False
        log.info("node stopping", extra={"node": node.host})
        node.end_subscriptions()
        await server.stop(GRACE_S)
        await node.stop()
        operations.close()
        log.info("node stopped", extra={"node": node.host})


def _on_loop(
    loop: asyncio.AbstractEventLoop, work: Callable[[], dict[str, Any]]
) -> Callable[[], dict[str, Any]]:
    """`work` made callable from the operations thread: it runs on the node's event loop,
    between commits (ledger access there needs no locks: node/peer_node.py)."""

    async def run() -> dict[str, Any]:
        return work()

    def call() -> dict[str, Any]:
        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=LEDGERS_TIMEOUT_S)

    return call


def _receive_limit_bytes(layout: NetworkLayout, role: str) -> int:
    """The largest gRPC message this node accepts (docs/network-config.md, "Limits").

    A peer receives proposals and transactions, each at most its channel's `absolute_max_bytes`,
    and private-data bundles: twice the largest channel limit leaves room for both. Ordering
    nodes keep Fabric's limit: consensus messages between them carry whole blocks.
    """
    if role != "peer":
        return MAX_MESSAGE_BYTES
    limits = [c.batch.absolute_max_bytes for c in layout.config.channels]
    return 2 * max(limits) if limits else MAX_MESSAGE_BYTES
