"""A peer: an organisation's node that endorses proposals and commits blocks for its channels.

Composition only: the endorser, channel ledgers and package store do the work. A peer joins a
channel only if its organisation is a member, so a non-member never holds, endorses or receives
a channel's data (paper §3: unrelated nodes cannot take part in a channel).
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from fabric_protos.common import common_pb2
from fabric_protos.peer import proposal_pb2

from medalliance.contracts.endorser import Endorsed, Endorser
from medalliance.contracts.package import PackageStore
from medalliance.database_url import DatabaseUrl
from medalliance.errors import InvalidArgument, PermissionDenied, UnknownChannel
from medalliance.identity.signing import Signer
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.tx import (
    MalformedTransaction,
    ProposalView,
    parse_envelope,
    parse_signed_proposal,
)
from medalliance.ledger.validation import BlockResult
from medalliance.ledger.world_state import StateLocation, state_schema
from medalliance.node.chaincode_link import ExternalChaincodes
from medalliance.node.channel import PeerChannel
from medalliance.node.collection_store import CollectionStore
from medalliance.node.private_dissemination import (
    PrivateLink,
    accept_push,
    answer_fetch,
    disseminate,
    keep_own,
    reconcile,
)

log = logging.getLogger(__name__)


class Peer:
    """One peer node: `name` is its host name, e.g. peer0.org1.example.com."""

    def __init__(
        self,
        name: str,
        signer: Signer,
        directory: Path,
        *,
        endorsing: bool,
        state_database: DatabaseUrl | None = None,
    ) -> None:
        self.name = name
        # Where channel world states live: None (or a SQLite URL) keeps each in its ledger folder.
        self.state_database = state_database
        self.signer = signer
        self.directory = directory
        self.endorsing = endorsing
        self.external_chaincodes = ExternalChaincodes()
        self.packages = PackageStore(directory / "packages", self.external_chaincodes.contract)
        self._endorser = Endorser(signer, self.packages)
        self._channels: dict[str, PeerChannel] = {}
        # how private data reaches other peers (set by the network that runs this peer)
        self.private_link: PrivateLink | None = None
        for ledger_dir in sorted((directory / "ledgers").glob("*")):
            if ledger_dir.is_dir():
                channel = PeerChannel.open(ledger_dir, state_at=self._state_at(ledger_dir.name))
                self._attach_private(channel)
                self._channels[channel.channel_id] = channel

    @property
    def msp_id(self) -> str:
        return self.signer.msp_id

    @property
    def channel_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self._channels))

    def join(self, genesis: common_pb2.Block, *, member_later: bool = False) -> PeerChannel:
        """Join a channel from its genesis block; joining twice returns the existing ledger.

        An organisation added by a later config update (`member_later`) joins from genesis as
        well: the ordering service serves it blocks once that update is committed."""
        config = ChannelConfig.from_block(genesis)
        if self.msp_id not in config.application_msp_ids and not member_later:
            raise PermissionDenied(
                f"{self.msp_id} is not a member of channel {config.channel_id}; "
                "only member organisations' peers can join"
            )
        if config.channel_id in self._channels:
            return self._channels[config.channel_id]
        channel = PeerChannel.open(
            self.directory / "ledgers" / config.channel_id,
            genesis,
            state_at=self._state_at(config.channel_id),
        )
        self._attach_private(channel)
        self._channels[config.channel_id] = channel
        log.info("channel joined", extra={"peer": self.name, "channel": config.channel_id})
        return channel

    def channel(self, channel_id: str) -> PeerChannel:
        try:
            return self._channels[channel_id]
        except KeyError:
            raise UnknownChannel(channel_id) from None

    def endorse(self, signed: proposal_pb2.SignedProposal, *, now: dt.datetime) -> Endorsed:
        """Check, simulate and (unless refused by the contract) endorse a proposal."""
        try:
            proposal = parse_signed_proposal(signed, max_bytes=self.max_proposal_bytes)
        except MalformedTransaction as exc:
            raise InvalidArgument(str(exc)) from exc
        return self.endorse_proposal(proposal, now=now)

    def max_proposal_bytes(self, channel_id: str) -> int:
        """The largest proposal worth simulating: one the channel could still order."""
        return self.channel(channel_id).config.batch_absolute_max_bytes

    def endorse_proposal(self, proposal: ProposalView, *, now: dt.datetime) -> Endorsed:
        """`endorse` for a proposal the caller has already parsed."""
        channel = self.channel(proposal.channel_id)
        endorsed = self._endorser.endorse(proposal, channel.view, now=now)
        private = endorsed.result.private_rwset
        if endorsed.ok and private:
            if self.private_link is None:  # pushed by the process's gRPC link, if any
                keep_own(channel, self.msp_id, proposal.tx_id, private)
            else:
                disseminate(channel, self.msp_id, self.private_link, proposal.tx_id, private)
        return endorsed

    def deliver(self, block: common_pb2.Block) -> BlockResult:
        """Commit a block received from the ordering service, then fetch private data this
        peer's organisation should hold but missed (now or earlier)."""
        channel = self.channel(block_channel_id(block))
        result = channel.commit(block)
        self.reconcile_private(channel.channel_id)
        return result

    def reconcile_private(self, channel_id: str) -> int:
        """Fetch missed private data from other member peers; how many gaps were filled."""
        channel = self.channel(channel_id)
        if self.private_link is None or channel.private is None or not channel.private.missing():
            return 0
        return reconcile(channel, self.msp_id, self.private_link)

    def receive_private(self, channel_id: str, sender_msp: str, tx_id: str, data: bytes) -> bool:
        """A private set pushed by an endorsing peer of `sender_msp` (authenticated by the
        transport); whether something was kept."""
        return accept_push(self.channel(channel_id), self.msp_id, sender_msp, tx_id, data)

    def serve_private(
        self, channel_id: str, requester_msp: str, tx_id: str, namespace: str, collection: str
    ) -> bytes | None:
        """A committed collection set for a member organisation's peer (reconciliation)."""
        return answer_fetch(self.channel(channel_id), requester_msp, tx_id, namespace, collection)

    def _attach_private(self, channel: PeerChannel) -> None:
        path = self.directory / "private" / "collections" / f"{channel.channel_id}.db"
        channel.attach_private(CollectionStore.open(path, self.msp_id))

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self.external_chaincodes.close()

    def _state_at(self, channel_id: str) -> StateLocation:
        url = self.state_database
        if url is None or not url.is_postgres:
            return StateLocation(None, "")
        return StateLocation(url, state_schema(self.name, channel_id))


def block_channel_id(block: common_pb2.Block) -> str:
    """The channel a block belongs to, read from its first envelope."""
    if not block.data.data:
        raise MalformedTransaction(1, f"block {block.header.number} has no transactions")
    return parse_envelope(bytes(block.data.data[0])).header.channel_id
