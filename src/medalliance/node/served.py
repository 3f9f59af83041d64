"""A channel as a node serves it: its ledger plus the feed that announces new blocks."""

from __future__ import annotations

from dataclasses import dataclass

from fabric_protos.common import common_pb2

from medalliance.contracts.endorser import ChannelView
from medalliance.ledger.block_store import BlockStore
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.validation import BlockResult
from medalliance.ledger.world_state import WorldState
from medalliance.network.block_feed import BlockFeed
from medalliance.node.channel import PeerChannel


@dataclass(frozen=True)
class ServedChannel:
    """A peer's channel: what the gateway and Deliver read, kept in step on every commit."""

    ledger: PeerChannel
    feed: BlockFeed

    @classmethod
    def of(cls, ledger: PeerChannel) -> ServedChannel:
        served = cls(ledger, BlockFeed(ledger.height))
        ledger.add_listener(served._committed)
        return served

    def _committed(self, block: common_pb2.Block, result: BlockResult) -> None:
        self.feed.published(int(block.header.number) + 1, [(t.tx_id, t.code) for t in result.txs])

    @property
    def config(self) -> ChannelConfig:
        return self.ledger.config

    @property
    def store(self) -> BlockStore:
        return self.ledger.store

    @property
    def state(self) -> WorldState:
        return self.ledger.state

    @property
    def view(self) -> ChannelView:
        return self.ledger.view
