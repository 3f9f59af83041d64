"""What the gateway services need from the node that hosts them.

The node (composition layer) provides these; the services stay free of process wiring, so an
in-process test can host them with real ledgers and a real gRPC server.
"""

from __future__ import annotations

from typing import Protocol

from fabric_protos.peer import proposal_pb2, proposal_response_pb2

from medalliance.contracts.endorser import ChannelView
from medalliance.ledger.block_store import BlockStore
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.state import StateReader
from medalliance.ledger.tx import ProposalView
from medalliance.network.block_feed import BlockFeed


class EndorserRefused(Exception):
    """An endorser rejected the proposal before simulating it (signature, policy, duplicate)."""


class OrdererRejected(Exception):
    """The ordering service answered a broadcast with a non-success status."""

    def __init__(self, status: int, info: str) -> None:
        super().__init__(f"status={status}, info={info}")
        self.status = status
        self.info = info


class GatewayChannel(Protocol):
    """One channel as the hosting peer holds it."""

    @property
    def config(self) -> ChannelConfig: ...

    @property
    def store(self) -> BlockStore: ...

    @property
    def state(self) -> StateReader: ...

    @property
    def feed(self) -> BlockFeed: ...

    @property
    def view(self) -> ChannelView: ...


class Endorser(Protocol):
    """A peer that can endorse: the hosting peer itself, or another over gRPC."""

    @property
    def msp_id(self) -> str: ...

    @property
    def address(self) -> str: ...

    async def process_proposal(
        self, signed: proposal_pb2.SignedProposal, proposal: ProposalView
    ) -> proposal_response_pb2.ProposalResponse:
        """The peer's response; raises `EndorserRefused`, or `ConnectionError` if unreachable."""
        ...
