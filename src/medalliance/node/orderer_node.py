"""An ordering node as a process: `orderer.AtomicBroadcast` over each channel's BFT ordering.

Every ordering node is a consenter of every channel (the channel config's `Orderers`): blocks
are decided by the Tendermint-style protocol of `consensus/` (docs/consensus.md), run per
channel by `BftChannel`, and stored with their commit certificate before they are served.
Ordering nodes talk to each other over mutual TLS through `medalliance.Consensus`: `Step`
carries consensus messages, `Forward` passes admitted transactions on so that any proposer can
order them. Both are batched per consenter in a binary body (`consenter_batches.py`), each
batch one message on a long-lived stream per (target, method) (`consenter_streams.py`); a node
sends both kinds mixed on `Messages` (each item tagged with its kind; forwards linger a few
milliseconds to ride along), and still serves `Step` and `Forward` from senders of earlier
releases. Only a
consenter of the channel may send either: its client TLS certificate must be one of the
channel's consenter mapping (`consenter_auth.py`), checked per message; anyone else gets
PERMISSION_DENIED. As in Fabric (General.Cluster.ListenPort), one server listens on two ports:
the client port (AtomicBroadcast, server-only TLS: Fabric's SDKs send no client certificate) and
the cluster port (mutual TLS), which the consenter mapping names; a consensus call that arrives
without a client certificate came through the client port and is refused. Each node also pulls
certified blocks from the others' client ports (Deliver checks the signed seek) while it is
behind (`block_sync.py`), so one that was down or cut off catches up. Peers pull blocks from any ordering node and check the certificates
themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.orderer import ab_pb2
from google.protobuf.message import DecodeError

from medalliance.errors import (
    MedallianceError,
    UnknownChannel,
)
from medalliance.identity.verified import VERIFIED
from medalliance.ledger.block import parse_block
from medalliance.ledger.block_store import BlockStore
from medalliance.ledger.config_update import latest_config
from medalliance.network.block_feed import BlockFeed
from medalliance.network.deliver import deliver_blocks
from medalliance.network.fabric_status import fabric_status
from medalliance.network.tls import bind
from medalliance.node.bft_channel import BftChannel
from medalliance.node.block_sync import BlockSync
from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.config import OrganizationConfig
from medalliance.node.consenter_batches import FORWARD, MIXED, STEP, Batches
from medalliance.node.consenter_gate import ConsenterGate
from medalliance.node.consenter_streams import Streams
from medalliance.node.material import (
    NodeMaterial,
    consensus_endpoint,
    consensus_endpoints,
    orderer_endpoints,
    utc_now,
)
from medalliance.node.metrics import OrdererMetrics
from medalliance.node.orderer_link import OrdererLink
from medalliance.node.ordering import parsed

log = logging.getLogger(__name__)

ORDERER_READERS = "/Channel/Readers"
CONSENSUS_SERVICE = "medalliance.Consensus"
Status = common_pb2.Status


def _raw(data: bytes) -> bytes:
    return data


class OrdererNode:
    def __init__(self, layout: NetworkLayout, org: OrganizationConfig, name: str) -> None:
        self.material = m = NodeMaterial.load(layout, org, name, "orderer")
        self.layout = layout
        self.org = org
        self.host, self.address, self.signer, self.tls = m.host, m.address, m.signer, m.tls
        self.operations_address = m.operations_address
        self.channels: dict[str, BftChannel] = {}
        self._peers: dict[str, tuple[str, str]] = {}  # consenter name -> (endpoint, MSP id)
        self._known = consensus_endpoints(layout)  # the network folder's ordering nodes
        self._links: dict[str, grpc.aio.Channel] = {}
        self._streams = Streams(CONSENSUS_SERVICE, self._link)
        self._serving: set[asyncio.Task[object]] = set()  # their tasks, ended on shutdown
        # what is sent to the other consenters: consensus messages and forwards, mixed
        self._batches = Batches(functools.partial(self._rpc, MIXED))
        self._items = {"Step": 0, "Forward": 0}  # items of each kind pushed, per target
        self.metrics = OrdererMetrics(self._metric_status)
        data = m.data_dir / "ledgers"
        for spec in layout.config.channels:
            genesis = parse_block(layout.genesis_block_path(spec.name).read_bytes())
            store = BlockStore.open(data / spec.name / "blocks")
            if store.height == 0:
                store.append(genesis)
            config = latest_config(store.get_block, store.height)
            for consenter in config.consenter_set:
                if consenter.name != self.host:
                    self._peers[consenter.name] = (consenter.endpoint, consenter.msp_id)
            self.channels[spec.name] = BftChannel(
                config=config,
                store=store,
                feed=BlockFeed(store.height),
                directory=data / spec.name,
                name=self.host,
                signer=self.signer,
                send=functools.partial(self._send, spec.name),
                forward=functools.partial(self._forward, spec.name),
                now=utc_now,
            )
            self.channels[spec.name].on_cut = functools.partial(self.metrics.block_cut, spec.name)
        # Blocks are pulled from the client ports (the consenter mapping names cluster ports).
        others = [o for o in orderer_endpoints(layout) if o.host != self.host]
        self.link = OrdererLink(others, self.tls, self.signer, utc_now) if others else None
        for channel_id, channel in self.channels.items():
            if self.link is not None:  # pulls only when behind (or retired: follows)
                height = functools.partial(_store_height, channel.store)
                channel.sync = BlockSync(channel_id, self.link, height, channel.synced)
        self._tasks: list[asyncio.Task[None]] = []
        self._gate = ConsenterGate(CONSENSUS_SERVICE, self.channels, self.tls.trusted)

    def channel(self, channel_id: str) -> BftChannel:
        try:
            return self.channels[channel_id]
        except KeyError:
            raise UnknownChannel(channel_id) from None

    async def start(self, server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers((_broadcast_handler(BroadcastService(self)),))
        server.add_generic_rpc_handlers((self._consensus_handler(),))
        bind(
            server,
            self.material.listen_address,
            self.tls.server_credentials(require_client_auth=False),
        )
        bind(
            server,
            self.material.cluster_address,
            self.tls.server_credentials(require_client_auth=True),
        )
        await server.start()
        for channel in self.channels.values():
            self._tasks.append(channel.start())
            if channel.sync is not None:
                channel.sync.start(retired=channel.retired)

    def status(self) -> dict[str, object]:
        return {
            "name": self.host,
            "organization": self.org.msp_id,
            "role": "orderer",
            "endpoint": self.address,
            "channels": {cid: c.store.height for cid, c in self.channels.items()},
            "consensus": {cid: c.status() for cid, c in self.channels.items()},
            "problems": [p for c in self.channels.values() for p in c.problems()],
            "consenterCalls": {  # batched calls to the other consenters (consenter_batches.py)
                MIXED: self._batches.status(),  # stream messages written, the items they carried
                **{kind: {"items": count} for kind, count in self._items.items()},
                "malformed": dict(self._gate.malformed),
                "streams": {"opened": self._streams.opened, "open": dict(self._gate.open_streams)},
            },
            # every ECDSA verification of the process (transactions, Deliver seeks) and the
            # checks answered from memory (identity/verified.py), as a peer shows them
            "signatures": {"verified": VERIFIED.verified, "reused": VERIFIED.reused},
        }

    def _metric_status(self) -> dict[str, dict[str, object]]:
        """Per channel, what /metrics reads at scrape time (node/metrics.py)."""
        return {
            cid: {
                **c.status(),
                "storeHeight": c.store.height,
                "proposals": c.proposals,
                "decided": c.decided,
                "roundChanges": c.round_changes,
            }
            for cid, c in self.channels.items()
        }

    def end_subscriptions(self) -> None:
        """End every open Deliver stream: the ordering node is going away, and the peers
        reading blocks from it should switch to another one now."""
        for channel in self.channels.values():
            channel.feed.close()
        for task in list(self._serving):  # the other consenters' streams to this node
            task.cancel()

    async def stop(self) -> None:
        await self._batches.close()
        self._streams.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for link in self._links.values():
            await link.close()
        for channel in self.channels.values():
            channel.feed.close()
            channel.store.close()
            channel.close()

    # --- node to node ---------------------------------------------------------------------------

    def _consensus_handler(self) -> grpc.GenericRpcHandler:
        methods = {
            method: grpc.stream_unary_rpc_method_handler(
                functools.partial(self._stream, method, handle),
                request_deserializer=_raw,
                response_serializer=_raw,
            )
            for method, handle in (
                ("Step", self._step_rpc),
                ("Forward", self._forward_rpc),
                (MIXED, self._mixed_rpc),
            )
        }
        return grpc.method_handlers_generic_handler(CONSENSUS_SERVICE, methods)

    async def _stream(
        self,
        method: str,
        handle: Callable[[BftChannel, str, list[bytes]], Awaitable[None]],
        requests: AsyncIterator[bytes],
        context: grpc.aio.ServicerContext,
    ) -> bytes:
        """A consenter's stream of batches (consenter_streams.py), each checked and handled as
        it arrives; ends when the caller ends it, or refused as a call was."""
        gate = self._gate
        pem = await gate.client_certificate(method, context)
        caller = await gate.stream_caller(method, pem, context)
        task = asyncio.current_task()
        assert task is not None
        gate.open_streams[caller] += 1
        self._serving.add(task)
        try:
            async for data in requests:
                await handle(*await gate.batch(method, data, pem, context))
        finally:
            self._serving.discard(task)
            gate.closed(caller)
        return b""

    async def _step_rpc(self, channel: BftChannel, caller: str, messages: list[bytes]) -> None:
        for message in messages:
            channel.receive(message, caller)

    async def _forward_rpc(self, channel: BftChannel, caller: str, envelopes: list[bytes]) -> None:
        """Transactions another consenter admitted: admitted here too, on their own merits."""
        for envelope in envelopes:
            _admit_forwarded(channel, envelope)

    async def _mixed_rpc(self, channel: BftChannel, caller: str, items: list[bytes]) -> None:
        """Consensus messages and forwarded transactions in the order sent, each item's first
        byte its kind (checked by the gate's decoding)."""
        for item in items:
            if item[:1] == STEP:
                channel.receive(item[1:], caller)
            else:
                _admit_forwarded(channel, item[1:])

    def _consenters(self, channel_id: str) -> list[str]:
        """The channel's other consenters, as its current configuration names them."""
        found = []
        for consenter in self.channels[channel_id].config.consenter_set:
            if consenter.name != self.host:
                self._peers[consenter.name] = (consenter.endpoint, consenter.msp_id)
                found.append(consenter.name)
        return found

    def _send(self, channel_id: str, to: str | None, message: bytes) -> None:
        others = self._consenters(channel_id)
        targets = others if to is None else [to] if to in others else []
        if message:  # (a batch carries no empty item)
            self._items["Step"] += len(targets)
            self._batches.push(targets, channel_id, [STEP + message])

    def _forward(self, channel_id: str, envelopes: list[bytes]) -> None:
        """Lingering: a forward rides along with the next consensus message to each target,
        or goes after `LINGER_S` (consenter_batches.py)."""
        targets = self._consenters(channel_id)
        items = [FORWARD + envelope for envelope in envelopes if envelope]
        self._items["Forward"] += len(targets) * len(items)
        self._batches.push(targets, channel_id, items, linger=True)

    def _link(self, target: str) -> grpc.aio.Channel:
        """The gRPC channel to another consenter's cluster port, opened once."""
        link = self._links.get(target)
        if link is None:
            mapped, msp_id = self._peers[target]
            endpoint = consensus_endpoint(mapped, self._known.get(target))
            link = self._links[target] = self.tls.channel(endpoint, target, msp_id)
        return link

    async def _rpc(self, method: str, target: str, channel_id: str, body: bytes) -> bool:
        """One batch to another consenter, a message on its stream; False (logged at debug)
        when it failed. Fire and forget as far as the protocol goes: its own retransmission
        re-sends what is lost."""
        return await self._streams.send(method, target, channel_id.encode() + b"\x00" + body)


def _broadcast_handler(service: BroadcastService) -> grpc.GenericRpcHandler:
    """`orderer.AtomicBroadcast` with bytes where protobuf objects would only be encoded again:
    Broadcast answers from constant bytes (`_admit` decodes each envelope, as Fabric's orderer,
    and keeps its canonical encoding) and Deliver sends responses already encoded
    (`deliver_blocks`)."""
    methods = {
        "Broadcast": grpc.stream_stream_rpc_method_handler(
            service.Broadcast, request_deserializer=_raw, response_serializer=_raw
        ),
        "Deliver": grpc.stream_stream_rpc_method_handler(
            service.Deliver,
            request_deserializer=common_pb2.Envelope.FromString,
            response_serializer=_raw,
        ),
    }
    return grpc.method_handlers_generic_handler("orderer.AtomicBroadcast", methods)


class BroadcastService:
    def __init__(self, node: OrdererNode) -> None:
        self._node = node

    async def Broadcast(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        async for envelope in requests:
            yield await self._admit(envelope, context)

    async def _admit(self, data: bytes, context: grpc.aio.ServicerContext) -> bytes:
        try:  # kept in its canonical encoding, as Fabric's orderer re-encodes what it received
            data = common_pb2.Envelope.FromString(data).SerializeToString()
        except DecodeError:  # as Fabric's orderer (Go gRPC) answers it
            await context.abort(grpc.StatusCode.INTERNAL, "grpc: error unmarshalling request")
        channel_id, header_type = "", ""
        try:
            header = parsed(data).header  # parsed once: admission finds it in the memo
            header_type = _header_type_name(header.header_type)
            channel = self._node.channel(header.channel_id)
            channel_id = channel.channel_id
            channel.submit(data)
        except MedallianceError as exc:  # Overloaded, Unavailable: the client tries another node
            response = _response(exc)
            status, answer = response.status, bytes(response.SerializeToString())
        else:
            status, answer = Status.SUCCESS, _SUCCESS
        # Labels only from known channels and types: a client cannot grow the label set.
        self._node.metrics.broadcast(channel_id, header_type, Status.Name(status))
        return answer

    async def Deliver(
        self, requests: AsyncIterator[common_pb2.Envelope], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        # orderer.DeliverResponse and protos.DeliverResponse share fields 1 and 2
        async for response in deliver_blocks(
            requests, source_for=self._node.channel, readers_policy=ORDERER_READERS, now=utc_now
        ):
            yield response


_SUCCESS = ab_pb2.BroadcastResponse(status=Status.SUCCESS).SerializeToString()


def _header_type_name(header_type: int) -> str:
    try:
        return str(common_pb2.HeaderType.Name(header_type))
    except ValueError:
        return "UNKNOWN"


def _response(exc: MedallianceError) -> ab_pb2.BroadcastResponse:
    return ab_pb2.BroadcastResponse(status=fabric_status(exc), info=str(exc))


def _admit_forwarded(channel: BftChannel, envelope: bytes) -> None:
    """A transaction another consenter admitted: admitted here too, on its own merits."""
    with contextlib.suppress(MedallianceError):  # a duplicate, or not admissible: the sender's
        channel.submit(envelope, forward=False)


def _store_height(store: BlockStore) -> int:
    return store.height
