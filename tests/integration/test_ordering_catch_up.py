"""An ordering node pulls blocks only when behind (node/block_sync.py), over real gRPC with TLS.

Orderer0's channel (its real BftChannel, block store and hard-state log) lags: two other nodes
serve the channel's Deliver with our Deliver code over mutual TLS. One is honest; the other
(hostile) serves a chain certified by a node that is no consenter. Nothing is pulled until the
core asks (NeedSync) or a quiet spell passes; the forged blocks are refused and the honest node
is used next; a claim of blocks nobody holds costs one call per source, then the pull ends.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.orderer import ab_pb2, ab_pb2_grpc
from tests.conftest import NOW
from tests.networks import free_ports
from tests.unit.consensus.test_replica import transaction
from tests.unit.node.test_bft_channel_reconfiguration import certified, orderer0
from tests.unit.node.test_bft_channel_supervision import SIGNER, genesis, until

from medalliance.consensus.ready import NeedSync
from medalliance.identity.cryptogen import OrgSpec, generate_org
from medalliance.ledger.block import header_hash
from medalliance.ledger.block_store import BlockStore
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.network.block_feed import BlockFeed
from medalliance.network.deliver import deliver
from medalliance.network.tls import NodeTls
from medalliance.node.bft_channel import BftChannel
from medalliance.node.block_sync import BlockSync
from medalliance.node.orderer_link import OrdererEndpoint, OrdererLink

HOSTILE, HONEST = "orderer1.example.com", "orderer2.example.com"
BLOCKS = 5  # the honest node holds genesis and blocks 1..5


@dataclass
class Source:
    """What our Deliver reads: a channel's config, store and feed."""

    config: ChannelConfig
    store: BlockStore
    feed: BlockFeed


class DeliverServer(ab_pb2_grpc.AtomicBroadcastServicer):  # type: ignore[misc]
    """An ordering node's Deliver (the real `deliver`) over one block store; counts calls."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.calls = 0

    async def Deliver(
        self, requests: AsyncIterator[common_pb2.Envelope], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[ab_pb2.DeliverResponse]:
        self.calls += 1
        async for response in deliver(
            requests,
            source_for=lambda channel_id: self.source,
            readers_policy="/Channel/Readers",
            content="block",
            now=lambda: NOW,
        ):
            yield ab_pb2.DeliverResponse.FromString(response.SerializeToString())


@contextmanager
def ledger(folder: Path, voter: str) -> Iterator[Source]:
    """Genesis and BLOCKS blocks certified by `voter` (not a consenter: a forged chain)."""
    block = genesis()
    store = BlockStore.open(folder)
    store.append(block)
    for i in range(BLOCKS):
        store.append(certified(store, transaction(f"{voter}-tx-{i}"), voter))
    try:
        yield Source(ChannelConfig.from_block(block), store, BlockFeed(store.height))
    finally:
        store.close()


@asynccontextmanager
async def serving(
    tmp_path: Path,
) -> AsyncIterator[tuple[OrdererLink, DeliverServer, DeliverServer]]:
    """The hostile and the honest node listening with TLS; a link of orderer0 to both."""
    spec = OrgSpec("OrdMSP", "example.com", "orderer", ("orderer0", "orderer1", "orderer2"))
    root = generate_org(tmp_path / "crypto", spec, now=dt.datetime.now(dt.UTC))
    trusted = {"OrdMSP": (root / "tlsca" / "tlsca.example.com-cert.pem").read_bytes()}

    def tls(host: str) -> NodeTls:
        return NodeTls.load(root / "orderers" / host / "tls", trusted)

    with (
        ledger(tmp_path / "hostile", "orderer1") as forged,
        ledger(tmp_path / "honest", "orderer0") as honest,
    ):
        servers, endpoints, services = [], [], []
        for host, source in ((HOSTILE, forged), (HONEST, honest)):
            (port,) = free_ports(1)
            service = DeliverServer(source)
            server = grpc.aio.server()
            ab_pb2_grpc.add_AtomicBroadcastServicer_to_server(service, server)
            credentials = tls(host).server_credentials(require_client_auth=True)
            server.add_secure_port(f"127.0.0.1:{port}", credentials)
            await server.start()
            servers.append(server)
            services.append(service)
            endpoints.append(OrdererEndpoint("OrdMSP", host, f"127.0.0.1:{port}"))
        link = OrdererLink(endpoints, tls("orderer0.example.com"), SIGNER, lambda: NOW)
        try:
            yield link, services[0], services[1]
        finally:
            for server in servers:
                await server.stop(None)


@dataclass
class Lagging:
    """Orderer0's running channel at height 1, its pulls, and the two nodes it may ask."""

    channel: BftChannel
    store: BlockStore
    sync: BlockSync
    hostile: DeliverServer
    honest: DeliverServer


@asynccontextmanager
async def lagging(
    tmp_path: Path, idle_s: float, *, retired: bool = False
) -> AsyncIterator[Lagging]:
    channel, store = orderer0(tmp_path / "node")
    async with serving(tmp_path) as (link, hostile, honest):
        sync = BlockSync("ch", link, lambda: store.height, channel.synced, idle_s=idle_s)
        channel.sync = sync
        task = channel.start()
        sync.start(retired=retired)
        try:
            yield Lagging(channel, store, sync, hostile, honest)
        finally:
            task.cancel()
            channel.close()
            store.close()


def test_a_lagging_node_pulls_on_need_refuses_a_forged_chain_and_stops_when_level(
    tmp_path: Path,
) -> None:
    asyncio.run(_on_need(tmp_path))


async def _on_need(tmp_path: Path) -> None:
    async with lagging(tmp_path, idle_s=3600) as node:
        channel, store, sync, hostile, honest = (
            node.channel, node.store, node.sync, node.hostile, node.honest,
        )  # fmt: skip
        await until(lambda: channel.status()["height"] == 1, "the core started")
        assert (hostile.calls, honest.calls) == (0, 0)  # level as far as it knows: no pull
        # the core heard the hostile node claim height 6: blocks 1..5 wanted, from it first
        channel.request_sync(NeedSync(1, BLOCKS, HOSTILE))
        await until(lambda: store.height == BLOCKS + 1, "caught up from the honest node")
        await until(lambda: not sync.plan.running, "the pull ended at its target")
        assert hostile.calls == 1  # asked first, refused, not asked again
        honest_chain = honest.source.store
        assert [header_hash(store.get_block(i).header) for i in range(store.height)] == [
            header_hash(honest_chain.get_block(i).header) for i in range(store.height)
        ]
        assert channel.status()["catchUp"] == {
            "running": False,
            "following": False,
            "catchUps": 1,
            "blocksPulled": BLOCKS,
        }
        await until(lambda: channel.status()["height"] == BLOCKS + 1, "the core follows")
        # a late request for blocks it holds costs no call
        calls = honest.calls
        channel.request_sync(NeedSync(1, BLOCKS, HONEST))
        assert not sync.plan.running
        assert (honest.calls, sync.plan.runs) == (calls, 1)
        # hostile: a consenter claims a height nobody holds; the pull asks each source once
        # (nothing there, answered at once) and ends, it does not wait for the blocks
        before = hostile.calls + honest.calls
        channel.request_sync(NeedSync(BLOCKS + 1, 10**9, HOSTILE))
        assert sync.plan.running
        await until(lambda: not sync.plan.running, "the pull for invented blocks ended")
        assert hostile.calls + honest.calls - before == 2
        assert store.height == BLOCKS + 1


def test_a_node_that_hears_nothing_asks_the_others_after_a_quiet_spell(tmp_path: Path) -> None:
    asyncio.run(_quiet(tmp_path))


async def _quiet(tmp_path: Path) -> None:
    async with lagging(tmp_path, idle_s=0.2) as node:
        await until(lambda: node.store.height == BLOCKS + 1, "caught up without any NeedSync")
        assert node.channel.sync_requests == 0
        assert node.sync.status()["blocksPulled"] == BLOCKS
        # level and quiet: each check is one call to one source, answered at once
        plan = node.sync.plan

        def calls() -> int:
            return node.hostile.calls + node.honest.calls

        await until(lambda: not plan.running, "the catch-up's last call answered")
        runs, before = plan.runs, calls()
        await until(lambda: plan.runs >= runs + 2 and not plan.running, "more idle checks")
        assert calls() - before == plan.runs - runs
        assert node.store.height == BLOCKS + 1


def test_a_retired_node_follows_the_chain_until_voted_in(tmp_path: Path) -> None:
    asyncio.run(_retired(tmp_path))


async def _retired(tmp_path: Path) -> None:
    """No NeedSync comes to a node outside consensus: it follows all the time (the forged
    chain refused, the honest one followed), and stops once it takes part again."""
    async with lagging(tmp_path, idle_s=3600, retired=True) as node:
        await until(lambda: node.store.height == BLOCKS + 1, "followed without being asked")
        assert node.channel.sync_requests == 0
        assert node.sync.status()["following"] is True
        assert node.sync.status()["blocksPulled"] == BLOCKS
        node.sync.set_retired(False)  # voted in: the core's requests drive pulls again
        assert node.sync.status()["running"] is False
