"""A peer as a process: its ledgers, the Gateway/Deliver/Endorser services, its orderer links.

Built from an initialised network folder (`network init`) and the peer's name. Blocks arrive by
pulling from the ordering nodes; endorsements of other organisations are collected over mutual
TLS from their peers. Everything runs on one asyncio event loop, so ledger access needs no locks.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import types
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2_grpc
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.peer import events_pb2_grpc, peer_pb2_grpc

from medalliance.contracts.package import build_package
from medalliance.errors import UnknownChannel
from medalliance.gateway.discovery import ChannelKnowledge
from medalliance.gateway.discovery_service import DiscoveryService
from medalliance.gateway.peer_services import DeliverService, EndorserService
from medalliance.gateway.ports import Endorser
from medalliance.gateway.private_delivery import held_private_data, readable_private_data
from medalliance.gateway.service import GatewayService
from medalliance.identity.verified import VERIFIED
from medalliance.ledger.block import parse_block
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.config_update import is_config_block
from medalliance.network.block_feed import BlockFeed
from medalliance.network.tls import bind
from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.collection_service import CollectionLink, CollectionService
from medalliance.node.config import IntegrityMonitorConfig, OrganizationConfig
from medalliance.node.discovery_view import DiscoveryView
from medalliance.node.endorsers import LocalEndorser, RemoteEndorser
from medalliance.node.integrity_monitor import IntegrityMonitor, WatchedPeer
from medalliance.node.material import NodeMaterial, orderer_endpoints, utc_now
from medalliance.node.metrics import PeerMetrics
from medalliance.node.orderer_link import OrdererEndpoint, OrdererLink
from medalliance.node.peer import Peer, block_channel_id
from medalliance.node.private_data import PrivateDataService
from medalliance.node.pseudonym_service import PseudonymService, evaluator_for
from medalliance.node.served import ServedChannel
from medalliance.privacy import record_ledger

log = logging.getLogger(__name__)

# A moving chain's state hash is recomputed at most this often (ledger_digests).
_DIGEST_EVERY_S = 1.0


class PeerNode:
    """One peer of an initialised network, ready to be served on `address`."""

    def __init__(self, layout: NetworkLayout, org: OrganizationConfig, name: str) -> None:
        self.material = m = NodeMaterial.load(layout, org, name, "peer")
        self.layout = layout
        self.org = org
        self.host, self.address, self.tls = m.host, m.address, m.tls
        self.operations_address = m.operations_address
        node = next(n for n in org.peers if n.name == name)  # NodeMaterial.load found it
        state_database = layout.config.state_database_for(node)
        if state_database is not None:
            log.info(
                "world state on PostgreSQL",
                extra={"peer": m.host, "database": state_database.redacted()},
            )
        self.peer = Peer(
            m.host, m.signer, m.data_dir, endorsing=org.endorsing, state_database=state_database
        )
        self._join_and_install()
        self.channels = {
            cid: ServedChannel.of(self.peer.channel(cid)) for cid in self.peer.channel_ids
        }
        self.metrics = PeerMetrics(self._heights)
        # private data collections: pushes at endorsement, fetches after commits (reconcile)
        self.collections = CollectionService(self.peer, utc_now)
        self.collection_link = CollectionLink(
            self.peer, m.tls, m.signer, self._channel_peers, utc_now
        )
        self.local = LocalEndorser(
            self.peer,
            self.address,
            utc_now,
            self._observe_proposal,
            self.collection_link.disseminate,
        )
        # channel -> (height, block hash, state hash, monotonic time it was computed, seconds)
        self._digests: dict[str, tuple[int, str, str, float, float]] = {}
        self.integrity = self._integrity_monitor(node.integrity_monitor)
        self._remote: dict[str, RemoteEndorser] = {}
        # channel -> (the configuration it was built from, `peers_for`'s answer)
        self._peers: dict[str, tuple[ChannelConfig, Mapping[str, Sequence[Endorser]]]] = {}
        other_peers = [
            OrdererEndpoint(o.msp_id, f"{n.name}.{o.domain}", n.endpoint)
            for o in layout.config.organizations
            for n in o.peers
            if f"{n.name}.{o.domain}" != self.host
        ]
        self.orderers = OrdererLink(
            orderer_endpoints(layout), m.tls, m.signer, utc_now, peers=other_peers
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._reconciling: set[str] = set()
        records = [
            c.name
            for c in layout.config.channels
            if c.name in self.channels
            and any(k.name == record_ledger.NAMESPACE for k in c.contracts)
        ]
        self.private_data = (
            PrivateDataService(
                msp_id=org.msp_id,
                directory=m.data_dir / "private",
                records_channel=records[0],
                channel=self.channel,
                peers=self._other_peers,
                tls=m.tls,
                signer=m.signer,
                now=utc_now,
            )
            if records
            else None
        )
        if self.private_data is not None:
            self.private_data.holding.follow(self.peer.channel(records[0]))
        evaluator = evaluator_for(
            layout, org.msp_id, m.data_dir, self._channel_config, self.channels, utc_now
        )
        self.pseudonyms = PseudonymService(evaluator) if evaluator is not None else None
        self.discovery = DiscoveryView(
            layout, m.host, org.msp_id, self._heights, self._discovery_channel
        )

    def _join_and_install(self) -> None:
        config = self.layout.config
        for channel in config.channels:
            members = {o.msp_id for o in config.members(channel)}
            if self.org.msp_id not in members:
                continue
            genesis = parse_block(self.layout.genesis_block_path(channel.name).read_bytes())
            self.peer.join(genesis, member_later=True)  # added by a config update, perhaps
            for spec in channel.contracts:
                self.peer.packages.install(build_package(spec.package_label, spec.package))

    def channel(self, channel_id: str) -> ServedChannel:
        try:
            return self.channels[channel_id]
        except KeyError:
            raise UnknownChannel(channel_id) from None

    def private_for_reader(
        self, channel_id: str, number: int, msp_id: str
    ) -> dict[int, rwset_pb2.TxPvtReadWriteSet]:
        """What `DeliverWithPrivateData` adds to block `number`: this peer's private sets of
        the collections `msp_id` is a member of."""
        ledger = self.channel(channel_id).ledger
        if ledger.private is None:
            return {}
        held = held_private_data(ledger.store.get_block(number), ledger.private.committed_set)
        return readable_private_data(held, msp_id, ledger.collections_of)

    def _discovery_channel(self, channel_id: str) -> ChannelKnowledge | None:
        served = self.channels.get(channel_id)
        return None if served is None else ChannelKnowledge(served.config, served.state)

    def _channel_config(self, channel_id: str) -> ChannelConfig:
        return self.channel(channel_id).config

    def peers_for(self, channel_id: str) -> Mapping[str, Sequence[Endorser]]:
        """Each member organisation's peers, this peer's organisation first: built once per
        channel configuration (every Endorse asks; a config update changes the members)."""
        channel_config = self.channel(channel_id).config
        kept = self._peers.get(channel_id)
        if kept is None or kept[0] is not channel_config:
            kept = (channel_config, self._member_peers(channel_config.application_msp_ids))
            self._peers[channel_id] = kept
        return kept[1]

    def _member_peers(self, members: Sequence[str]) -> Mapping[str, Sequence[Endorser]]:
        config = self.layout.config
        out: dict[str, list[Endorser]] = {self.org.msp_id: [self.local]}
        for org in config.organizations:
            if org.msp_id not in members:
                continue
            for node in org.peers:
                host = f"{node.name}.{org.domain}"
                if host == self.host:
                    continue
                remote = self._remote.get(host)
                if remote is None:
                    channel = self.tls.channel(node.endpoint, host, org.msp_id)
                    remote = self._remote[host] = RemoteEndorser(org.msp_id, node.endpoint, channel)
                out.setdefault(org.msp_id, []).append(remote)
        return types.MappingProxyType({org: tuple(peers) for org, peers in out.items()})

    def endorsing_orgs(self) -> frozenset[str]:
        return frozenset(o.msp_id for o in self.layout.config.organizations if o.endorsing)

    def commit(self, block: common_pb2.Block) -> None:
        started = time.perf_counter()
        result = self.peer.deliver(block)
        seconds = time.perf_counter() - started
        channel_id = block_channel_id(block)
        config = len(block.data.data) == 1 and is_config_block(block)  # config blocks hold one
        self.metrics.committed(channel_id, result, config=config, seconds=seconds)
        private = self.peer.channel(channel_id).private
        if private is not None and private.missing() and channel_id not in self._reconciling:
            # fetch missed private data from other member peers, off the commit path; gaps
            # left are tried again after the next block
            self._reconciling.add(channel_id)
            task = asyncio.get_running_loop().create_task(self._reconcile(channel_id))
            self._tasks.append(task)
            task.add_done_callback(self._tasks.remove)

    async def _reconcile(self, channel_id: str) -> None:
        try:
            await self.collection_link.reconcile(channel_id)
        finally:
            self._reconciling.discard(channel_id)

    def _heights(self) -> dict[str, int]:
        return {cid: s.feed.height for cid, s in self.channels.items()}

    def _observe_proposal(self, channel_id: str, chaincode: str, success: bool, s: float) -> None:
        # Labels from what this peer knows only: a refused proposal may name any channel or
        # contract, and a client must not be able to grow the label set without bound.
        known = channel_id in self.channels
        self.metrics.proposal(
            channel_id if known else "", chaincode if success else "", success=success, seconds=s
        )

    def ledger_digests(self) -> dict[str, dict[str, Any]]:
        """Per channel: height, last block header hash and world-state hash at that height
        (hex). Call on the event loop, where commits run, so no commit interleaves; the state
        hash reads the whole state, so it is cached until the height moves — and, on a moving
        chain, recomputed at most once per `_DIGEST_EVERY_S` and never more often than ten
        times its own duration: a flood of requests while blocks commit then costs the loop at
        most a tenth of its time (the answer is a consistent triple of a slightly older
        height, which the monitor compares at its next round)."""
        found: dict[str, dict[str, Any]] = {}
        for channel_id in self.channels:
            channel = self.peer.channel(channel_id)
            height = channel.height
            if channel.state.savepoint != height - 1:
                continue  # not consistent (recovering): no answer rather than a wrong one
            cached = self._digests.get(channel_id)
            now = time.monotonic()
            if cached is None or (
                cached[0] != height and now - cached[3] >= max(_DIGEST_EVERY_S, 10 * cached[4])
            ):
                block_hash = channel.store.last_header_hash.hex()
                state_hash = channel.state.state_hash().hex()
                cached = (height, block_hash, state_hash, now, time.monotonic() - now)
                self._digests[channel_id] = cached
            found[channel_id] = {
                "height": cached[0],
                "blockHash": cached[1],
                "stateHash": cached[2],
            }
        return found

    def _integrity_monitor(self, config: IntegrityMonitorConfig | None) -> IntegrityMonitor | None:
        if config is None:
            return None
        peers = [
            WatchedPeer(f"{n.name}.{o.domain}", o.msp_id, n.operations_endpoint)
            for o in self.layout.config.organizations
            for n in o.peers
            if f"{n.name}.{o.domain}" != self.host
        ]
        monitor = IntegrityMonitor(
            host=self.host,
            organization=self.org.msp_id,
            own=self.ledger_digests,
            peers=peers,
            interval_s=config.interval_s,
            timeout_s=config.timeout_s,
            now=utc_now,
        )
        monitor.on_check.append(
            lambda check: self.metrics.divergent_peers(
                {
                    c.channel_id: sum(1 for f in check.findings if f.channel_id == c.channel_id)
                    for c in check.channels
                }
            )
        )
        return monitor

    def add_services(self, server: grpc.aio.Server) -> None:
        gateway = GatewayService(
            local=self.local,
            channel_for=self.channel,
            peers_for=self.peers_for,
            endorsing=self.endorsing_orgs(),
            broadcast=self.orderers.broadcast,
            now=utc_now,
        )
        gateway_pb2_grpc.add_GatewayServicer_to_server(gateway, server)
        events_pb2_grpc.add_DeliverServicer_to_server(
            DeliverService(self.channel, utc_now, self.private_for_reader), server
        )
        endorser = EndorserService(self.local, self.peer.max_proposal_bytes)
        peer_pb2_grpc.add_EndorserServicer_to_server(endorser, server)
        server.add_generic_rpc_handlers((endorser.handler(),))
        discovery = DiscoveryService(self.discovery.knowledge, utc_now)
        server.add_generic_rpc_handlers((discovery.handler(),))
        server.add_generic_rpc_handlers((self.collections.handler(),))
        if self.private_data is not None:
            server.add_generic_rpc_handlers((self.private_data.handler(),))
        if self.pseudonyms is not None:  # the pseudonym regulator's peer only
            server.add_generic_rpc_handlers((self.pseudonyms.handler(),))

    def _channel_peers(self) -> dict[str, list[tuple[str, str]]]:
        """Every peer but this one as (TLS host name, endpoint), by MSP id."""
        return {
            org.msp_id: [
                (f"{n.name}.{org.domain}", n.endpoint)
                for n in org.peers
                if f"{n.name}.{org.domain}" != self.host
            ]
            for org in self.layout.config.organizations
            if org.peers
        }

    def _other_peers(self) -> dict[str, list[tuple[str, str]]]:
        """Other organisations' peers as (TLS host name, endpoint), by MSP id."""
        return {
            org.msp_id: [(f"{n.name}.{org.domain}", n.endpoint) for n in org.peers]
            for org in self.layout.config.organizations
            if org.peers and org.msp_id != self.org.msp_id
        }

    async def start(self, server: grpc.aio.Server) -> None:
        """Bind the services and start pulling blocks for every channel."""
        self.add_services(server)
        bind(
            server,
            self.material.listen_address,
            self.tls.server_credentials(require_client_auth=False),
        )
        await server.start()
        for channel_id, served in self.channels.items():
            task = asyncio.create_task(
                self.orderers.pull(
                    channel_id, functools.partial(_height, served.feed), self.commit
                ),
                name=f"pull-{channel_id}",
            )
            self._tasks.append(task)
        if self.integrity is not None:
            self._tasks.append(asyncio.create_task(self.integrity.run(), name="integrity"))

    def status(self) -> dict[str, object]:
        status: dict[str, object] = {
            "name": self.host,
            "organization": self.org.msp_id,
            "role": "peer",
            "endpoint": self.address,
            "channels": {cid: s.feed.height for cid, s in self.channels.items()},
            # ECDSA verifications made and answered from memory (identity/verified.py)
            "signatures": {"verified": VERIFIED.verified, "reused": VERIFIED.reused},
        }
        if self.integrity is not None:
            status["integrity"] = self.integrity.status()
        return status

    def end_subscriptions(self) -> None:
        """End every open Deliver, event and commit-status wait: the peer is going away, and
        its clients should reconnect elsewhere now rather than hold shutdown for the grace."""
        for served in self.channels.values():
            served.feed.close()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.end_subscriptions()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.collection_link.close()
        if self.private_data is not None:
            self.private_data.close()
        self.peer.close()


def _height(feed: BlockFeed) -> int:
    return feed.height
