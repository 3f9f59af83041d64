"""An ordering node as a process: `orderer.AtomicBroadcast` over each channel's block store.

Until the BFT ordering service lands, the first ordering node of the network (in config order)
is the sequencer: it admits transactions, cuts and signs blocks. The others are replicas: they
forward Broadcast to the sequencer and copy its blocks, checking the hash chain and the block
signatures before storing them, so peers can pull from any ordering node. A block is durable
in the node's store before it is served.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.orderer import ab_pb2, ab_pb2_grpc
from fabric_protos.peer import events_pb2

from medalliance.errors import (
    InvalidArgument,
    MedallianceError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    UnknownChannel,
)
from medalliance.gateway.ports import OrdererRejected
from medalliance.ledger.block import parse_block, verify_chain_link
from medalliance.ledger.block_signature import BLOCK_VALIDATION_POLICY, block_signatures, block_time
from medalliance.ledger.block_store import BlockStore
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.tx import parse_envelope
from medalliance.network.block_feed import BlockFeed
from medalliance.network.deliver import deliver
from medalliance.network.tls import bind
from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.config import OrganizationConfig
from medalliance.node.material import NodeMaterial, orderer_endpoints, utc_now
from medalliance.node.orderer_link import OrdererLink
from medalliance.node.ordering import OrderingStage

log = logging.getLogger(__name__)

ORDERER_READERS = "/Channel/Readers"
TICK_MS = 10
Status = common_pb2.Status


@dataclass
class OrdererChannel:
    config: ChannelConfig
    store: BlockStore
    feed: BlockFeed
    stage: OrderingStage | None = None  # set on the sequencer only

    def append(self, block: common_pb2.Block) -> None:
        number = int(block.header.number)
        if number != self.store.height:
            raise InvalidArgument(f"expected block {self.store.height}, got {number}")
        self.store.append(block)
        self.feed.published(number + 1, [])


class OrdererNode:
    def __init__(self, layout: NetworkLayout, org: OrganizationConfig, name: str) -> None:
        self.material = m = NodeMaterial.load(layout, org, name, "orderer")
        self.layout = layout
        self.org = org
        self.host, self.address, self.signer, self.tls = m.host, m.address, m.signer, m.tls
        self.operations_address = m.operations_address
        endpoints = orderer_endpoints(layout)
        self.sequencer = endpoints[0]
        self.is_sequencer = self.sequencer.host == self.host
        self.link = (
            None
            if self.is_sequencer
            else OrdererLink([self.sequencer], self.tls, self.signer, utc_now)
        )
        self.channels: dict[str, OrdererChannel] = {}
        data = m.data_dir / "ledgers"
        for spec in layout.config.channels:
            genesis = parse_block(layout.genesis_block_path(spec.name).read_bytes())
            store = BlockStore.open(data / spec.name / "blocks")
            if store.height == 0:
                store.append(genesis)
            config = ChannelConfig.from_block(store.get_block(0))
            channel = OrdererChannel(config, store, BlockFeed(store.height))
            if self.is_sequencer:
                channel.stage = OrderingStage(
                    config,
                    [self.signer],
                    channel.append,
                    next_number=store.height,
                    previous_hash=store.last_header_hash,
                    tick_ms=TICK_MS,
                )
            self.channels[spec.name] = channel
        self._tasks: list[asyncio.Task[None]] = []

    def channel(self, channel_id: str) -> OrdererChannel:
        try:
            return self.channels[channel_id]
        except KeyError:
            raise UnknownChannel(channel_id) from None

    def replicate(self, channel_id: str, block: common_pb2.Block) -> None:
        """Store a block copied from the sequencer after checking its link and signatures."""
        channel = self.channel(channel_id)
        previous = channel.store.get_block(int(block.header.number) - 1).header
        problem = verify_chain_link(previous, block)
        if problem is not None:
            raise InvalidArgument(f"block {block.header.number}: {problem}")
        if not channel.config.evaluate_policy(
            BLOCK_VALIDATION_POLICY, block_signatures(block), at=block_time(block)
        ):
            raise PermissionDenied(f"block {block.header.number} is not signed by an ordering node")
        channel.append(block)

    async def start(self, server: grpc.aio.Server) -> None:
        ab_pb2_grpc.add_AtomicBroadcastServicer_to_server(BroadcastService(self), server)
        bind(
            server,
            self.material.listen_address,
            self.tls.server_credentials(require_client_auth=True),
        )
        await server.start()
        for channel_id, channel in self.channels.items():
            if channel.stage is not None:
                self._tasks.append(asyncio.create_task(self._tick(channel.stage)))
            elif self.link is not None:
                self._tasks.append(
                    asyncio.create_task(
                        self.link.pull(
                            channel_id,
                            functools.partial(_store_height, channel.store),
                            functools.partial(self.replicate, channel_id),
                        )
                    )
                )

    async def _tick(self, stage: OrderingStage) -> None:
        while True:
            await asyncio.sleep(TICK_MS / 1000)
            stage.tick()

    def status(self) -> dict[str, object]:
        return {
            "name": self.host,
            "organization": self.org.msp_id,
            "role": "orderer",
            "endpoint": self.address,
            "sequencer": self.is_sequencer,
            "channels": {cid: c.store.height for cid, c in self.channels.items()},
        }

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for channel in self.channels.values():
            channel.feed.close()
            channel.store.close()


class BroadcastService(ab_pb2_grpc.AtomicBroadcastServicer):  # type: ignore[misc]
    def __init__(self, node: OrdererNode) -> None:
        self._node = node

    async def Broadcast(
        self, requests: AsyncIterator[common_pb2.Envelope], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[ab_pb2.BroadcastResponse]:
        async for envelope in requests:
            yield await self._admit(envelope)

    async def _admit(self, envelope: common_pb2.Envelope) -> ab_pb2.BroadcastResponse:
        data = envelope.SerializeToString()
        node = self._node
        if node.link is not None:  # a replica hands the transaction to the sequencer
            try:
                channel_id = parse_envelope(data).header.channel_id
                await node.link.broadcast(channel_id, data)
            except MedallianceError as exc:
                return _response(exc)
            except ConnectionError as exc:
                return ab_pb2.BroadcastResponse(status=Status.SERVICE_UNAVAILABLE, info=str(exc))
            except OrdererRejected as exc:  # pass the sequencer's answer on
                return ab_pb2.BroadcastResponse(status=exc.status, info=exc.info)
            return ab_pb2.BroadcastResponse(status=Status.SUCCESS)
        try:
            stage = node.channel(parse_envelope(data).header.channel_id).stage
            if stage is None:
                raise PreconditionFailed("this ordering node does not sequence the channel")
            stage.broadcast(data, now=utc_now())
        except MedallianceError as exc:
            return _response(exc)
        return ab_pb2.BroadcastResponse(status=Status.SUCCESS)

    async def Deliver(
        self, requests: AsyncIterator[common_pb2.Envelope], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[events_pb2.DeliverResponse]:
        async for response in deliver(
            requests,
            source_for=self._node.channel,
            readers_policy=ORDERER_READERS,
            content="block",
            now=utc_now,
        ):
            # orderer.DeliverResponse and protos.DeliverResponse share fields 1 and 2
            yield ab_pb2.DeliverResponse.FromString(response.SerializeToString())


def _response(exc: MedallianceError) -> ab_pb2.BroadcastResponse:
    if isinstance(exc, NotFound):
        status = Status.NOT_FOUND
    elif isinstance(exc, PermissionDenied):
        status = Status.FORBIDDEN
    else:
        status = Status.BAD_REQUEST
    return ab_pb2.BroadcastResponse(status=status, info=str(exc))


def _store_height(store: BlockStore) -> int:
    return store.height
