"""An in-process network: every peer and one ordering stage per channel, in one process.

Used by the demo and the integration tests. It runs the real components (crypto material on disk,
block files, world states (SQLite, or PostgreSQL when the config's `state_database` says so),
endorsement, ordering, validation); only the transport is a
function call. Time is injected (`clock`), and ordering is driven by the caller, so a run is
reproducible. The multi-process network of the node issue wires the same parts to gRPC.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fabric_protos.common import common_pb2
from fabric_protos.peer import proposal_pb2, proposal_response_pb2

from medalliance.contracts.endorser import Endorsed
from medalliance.contracts.lifecycle import LIFECYCLE_NAMESPACE, committed_collections
from medalliance.contracts.package import build_package
from medalliance.errors import ContractError, InvalidArgument, NotFound, PreconditionFailed
from medalliance.gateway.plan import (
    collection_requirements,
    extend_plan,
    interest_requirements,
    named_orgs,
    namespace_requirement,
)
from medalliance.identity.cryptogen import load_signer
from medalliance.identity.signing import Signer
from medalliance.ledger.block import header_hash, parse_block
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.tx import new_signed_proposal, new_transaction_payload, sign_envelope
from medalliance.node.bootstrap import NetworkLayout, init_network
from medalliance.node.config import NetworkConfig
from medalliance.node.deploy import ADMIN, deploy_contracts
from medalliance.node.embedded_ordering import EmbeddedOrdering
from medalliance.node.peer import Peer
from medalliance.node.pseudonym_service import PseudonymEvaluator, evaluator_for

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """A committed transaction: its result payload, validation code and block."""

    tx_id: str
    code: int
    block_number: int
    payload: bytes = field(repr=False)

    @property
    def valid(self) -> bool:
        return self.code == 0


class EmbeddedNetwork:
    """Peers and ordering stages of a network, wired by function calls."""

    def __init__(
        self,
        config: NetworkConfig,
        layout: NetworkLayout,
        peers: Sequence[Peer],
        clock: Clock,
    ) -> None:
        self.config = config
        self.layout = layout
        self.peers = tuple(peers)
        self._clock = clock
        self._ordering: dict[str, EmbeddedOrdering] = {}
        self._blocks: dict[str, list[common_pb2.Block]] = {}
        # peers unreachable for private data (tests stop one to exercise reconciliation)
        self.unreachable: set[str] = set()
        for peer in self.peers:
            peer.private_link = _InProcessLink(self, peer)
        for channel in config.channels:
            self._start_ordering(channel.name)
        # The pseudonym service, as the regulator's peer process runs it (docs/privacy.md §4).
        self.pseudonyms: PseudonymEvaluator | None = next(
            (e for p in self.peers if (e := self._evaluator(p)) is not None), None
        )

    def _evaluator(self, peer: Peer) -> PseudonymEvaluator | None:
        return evaluator_for(
            self.layout,
            peer.msp_id,
            peer.directory,
            lambda channel_id: peer.channel(channel_id).config,
            peer.channel_ids,
            self._clock,
        )

    @classmethod
    def open(
        cls,
        config: NetworkConfig,
        directory: Path,
        *,
        clock: Clock = utc_now,
        on_progress: Callable[[str], None] | None = None,
    ) -> EmbeddedNetwork:
        """Open the network in `directory`, creating its material and ledgers the first time."""
        if (directory / "network.yaml").exists():
            layout = NetworkLayout.load(directory)
        else:
            layout = init_network(config, directory, now=clock(), on_progress=on_progress)
        peers = []
        for org in config.organizations:
            for node in org.peers:
                host = f"{node.name}.{org.domain}"
                signer = load_signer(layout.peer_dir(org.msp_id, node.name) / "msp", org.msp_id)
                peers.append(
                    Peer(
                        host,
                        signer,
                        directory / "nodes" / host,
                        endorsing=org.endorsing,
                        state_database=config.state_database_for(node),
                    )
                )
        for channel in config.channels:
            genesis = parse_block(layout.genesis_block_path(channel.name).read_bytes())
            members = ChannelConfig.from_block(genesis).application_msp_ids
            for peer in peers:
                if peer.msp_id in members:
                    peer.join(genesis)
        network = cls(config, layout, peers, clock)
        for channel in config.channels:
            for spec in channel.contracts:
                package = build_package(spec.package_label, spec.package)
                for peer in network.peers_of(channel.name):
                    peer.packages.install(package)
        deploy_contracts(config, lambda msp_id: _AdminSession(network, msp_id), on_progress)
        return network

    def now(self) -> dt.datetime:
        return self._clock()

    # --- clients ---------------------------------------------------------------------------------

    def signer(self, msp_id: str, user: str = "User1") -> Signer:
        """The signing identity of a user of an organisation, from its crypto material."""
        path = self.layout.user_msp_dir(msp_id, user)
        if not path.exists():
            raise NotFound(
                f"no user {user!r} in {msp_id}; see {self.layout.directory}/organizations"
            )
        return load_signer(path, msp_id)

    def client(self, msp_id: str, user: str = "User1") -> Client:
        return Client(self, self.signer(msp_id, user))

    def peers_of(self, channel_id: str) -> list[Peer]:
        return [p for p in self.peers if channel_id in p.channel_ids]

    def endorsers_for(self, channel_id: str, contract: str) -> list[Peer]:
        """One peer per organisation that endorses this contract (gateway's choice).

        Lifecycle changes are endorsed by every member organisation (Fabric's
        LifecycleEndorsement is a majority of them); contracts by the endorsing organisations,
        as the paper assigns validation to tertiary hospitals.
        """
        chosen: dict[str, Peer] = {}
        for peer in self.peers_of(channel_id):
            if contract != LIFECYCLE_NAMESPACE and not peer.endorsing:
                continue
            chosen.setdefault(peer.msp_id, peer)
        if not chosen:
            raise PreconditionFailed(f"no peer of channel {channel_id} can endorse {contract}")
        return list(chosen.values())

    def key_policy_endorsers(
        self,
        channel_id: str,
        chosen: Sequence[str],
        interest: proposal_response_pb2.ChaincodeInterest,
        *,
        protect: bool = False,
    ) -> list[Peer]:
        """Peers of the further organisations the key-level policies and collections in
        `interest` need, beyond the organisations `chosen` (the gateway's plan extension, in
        process; `protect`: the proposal carries transient data, see gateway/plan.py)."""
        by_org: dict[str, Peer] = {}
        for peer in self.peers_of(channel_id):
            by_org.setdefault(peer.msp_id, peer)
        ledger = by_org[chosen[0]].channel(channel_id)
        members = ledger.config.application_msp_ids
        needs = interest_requirements(
            interest, lambda name: namespace_requirement(ledger.state, name, members)
        )
        needs += collection_requirements(
            interest,
            lambda name: committed_collections(ledger.state, name),
            members,
            protect=protect,
        )
        # Organisations the key policies name first, then any other (a majority policy).
        candidates = list(dict.fromkeys((*chosen, *named_orgs(interest), *by_org)))
        more = extend_plan(needs, candidates, chosen)[len(chosen) :]
        return [by_org[o] for o in more]

    # --- ordering --------------------------------------------------------------------------------

    def broadcast(self, channel_id: str, envelope: bytes) -> str:
        stage = self._ordering.get(channel_id)
        if stage is None:
            raise NotFound(f"no ordering service for channel {channel_id!r}")
        return stage.broadcast(envelope, now=self._clock())

    def cut_blocks(self, channel_id: str | None = None) -> None:
        """Let the batch timeout pass, so that pending transactions are ordered and committed."""
        for name, stage in self._ordering.items():
            if channel_id in (None, name):
                stage.flush()

    def close(self) -> None:
        for peer in self.peers:
            peer.close()

    def __enter__(self) -> EmbeddedNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start_ordering(self, channel_id: str) -> None:
        members = self.peers_of(channel_id)
        if not members:
            raise PreconditionFailed(f"no peer joined channel {channel_id}")
        ledger = members[0].channel(channel_id)
        last = ledger.store.get_block(ledger.height - 1)
        signers = [
            load_signer(self.layout.orderer_dir(org.msp_id, node.name) / "msp", org.msp_id)
            for org in self.config.organizations
            for node in org.orderers
        ]

        def deliver(block: common_pb2.Block) -> None:
            for peer in self.peers_of(channel_id):
                copy = common_pb2.Block()
                copy.CopyFrom(block)  # each peer records its own validation codes
                peer.deliver(copy)

        self._ordering[channel_id] = EmbeddedOrdering(
            ledger.config,
            signers,
            deliver,
            next_number=ledger.height,
            previous_hash=header_hash(last.header),
            clock=self._clock,
        )


class Client:
    """A user's in-process gateway: endorse on the right peers, order, wait for the commit."""

    def __init__(self, network: EmbeddedNetwork, signer: Signer) -> None:
        self._network = network
        self.signer = signer

    @property
    def msp_id(self) -> str:
        return self.signer.msp_id

    def evaluate(self, channel_id: str, contract: str, function: str, *args: str | bytes) -> bytes:
        """Run a query on a peer of the caller's organisation; raises `ContractError` if refused."""
        peer = self._own_peer(channel_id)
        signed, _ = self._proposal(channel_id, contract, function, args, None)
        endorsed = peer.endorse(signed, now=self._network.now())
        _raise_if_refused(endorsed)
        return endorsed.result.payload

    def submit(
        self,
        channel_id: str,
        contract: str,
        function: str,
        *args: str | bytes,
        transient: Mapping[str, bytes] | None = None,
        wait: bool = True,
    ) -> SubmitResult:
        """Endorse, order and (with `wait`) commit a transaction; returns its commit status."""
        tx_id, payload = self.submit_async(
            channel_id, contract, function, *args, transient=transient
        )
        if not wait:
            return SubmitResult(tx_id, -1, -1, payload)
        self._network.cut_blocks(channel_id)
        return self.status(channel_id, tx_id, payload)

    def submit_async(
        self,
        channel_id: str,
        contract: str,
        function: str,
        *args: str | bytes,
        transient: Mapping[str, bytes] | None = None,
    ) -> tuple[str, bytes]:
        """Endorse and hand the transaction to ordering; returns (tx id, contract result)."""
        signed, tx_id = self._proposal(channel_id, contract, function, args, transient)
        now = self._network.now()
        peers = self._network.endorsers_for(channel_id, contract)
        own = [p for p in peers if p.msp_id == self.msp_id]
        if transient and own:
            # Fabric's gateway: transient data goes to the client's own organisation first,
            # then only to the members of the collections it was written to.
            peers = own[:1]
        endorsements = [_endorsed(peer, signed, now) for peer in peers]
        # The key-level policies of the keys written and the collections used may need further
        # organisations, as a gateway learns from the first endorsements' interest; every
        # endorser simulated the same writes over the same committed state, so one extension
        # suffices.
        extra = self._network.key_policy_endorsers(
            channel_id,
            [p.msp_id for p in peers],
            endorsements[0].response.interest,
            protect=bool(transient),
        )
        endorsements += [_endorsed(peer, signed, now) for peer in extra]
        payload = new_transaction_payload(
            endorsements[0].proposal, [e.response for e in endorsements]
        )
        self._network.broadcast(channel_id, sign_envelope(payload, self.signer))
        return tx_id, endorsements[0].result.payload

    def status(self, channel_id: str, tx_id: str, payload: bytes = b"") -> SubmitResult:
        location = self._own_peer(channel_id).channel(channel_id).store.tx_location(tx_id)
        if location is None:
            raise NotFound(f"transaction {tx_id} is not committed on channel {channel_id}")
        return SubmitResult(tx_id, location.validation_code, location.block_num, payload)

    def _own_peer(self, channel_id: str) -> Peer:
        own = [p for p in self._network.peers if p.msp_id == self.msp_id]
        if not own:
            raise PreconditionFailed(f"{self.msp_id} runs no peer to send requests to")
        # A peer that has not joined the channel answers with UnknownChannel itself.
        return next((p for p in own if channel_id in p.channel_ids), own[0])

    def _proposal(
        self,
        channel_id: str,
        contract: str,
        function: str,
        args: Sequence[str | bytes],
        transient: Mapping[str, bytes] | None,
    ) -> tuple[proposal_pb2.SignedProposal, str]:
        if not function:
            raise InvalidArgument("a transaction needs a function name")
        encoded = [function.encode()] + [a.encode() if isinstance(a, str) else a for a in args]
        now_ms = int(self._network.now().timestamp() * 1000)
        return new_signed_proposal(
            self.signer,
            channel_id=channel_id,
            chaincode=contract,
            args=encoded,
            nonce=os.urandom(24),
            timestamp_ms=now_ms,
            transient=transient,
        )


def _endorsed(peer: Peer, signed: proposal_pb2.SignedProposal, now: dt.datetime) -> Endorsed:
    endorsed = peer.endorse(signed, now=now)
    _raise_if_refused(endorsed)
    return endorsed


def _raise_if_refused(endorsed: Endorsed) -> None:
    if not endorsed.ok:
        raise ContractError(
            endorsed.result.message,  # the contract's own words, as a gateway client sees them
            endorsed.result.status,
        )


class _AdminSession:
    """An organisation admin's lifecycle access to the embedded network (see `deploy`)."""

    def __init__(self, network: EmbeddedNetwork, msp_id: str) -> None:
        self._network = network
        self._client = network.client(msp_id, ADMIN)

    def submit(self, channel: str, function: str, arg: bytes) -> str:
        tx_id, _ = self._client.submit_async(channel, LIFECYCLE_NAMESPACE, function, arg)
        return tx_id

    def wait(self, channel: str, tx_id: str) -> int:
        self._network.cut_blocks(channel)
        return self._client.status(channel, tx_id).code

    def query(self, channel: str, function: str, arg: str | bytes) -> bytes | None:
        try:
            return self._client.evaluate(channel, LIFECYCLE_NAMESPACE, function, arg)
        except ContractError as exc:
            if exc.status_code == 404:
                return None
            raise


class _InProcessLink:
    """Private data between the peers of an embedded network, by function calls; the sender's
    organisation is the calling peer's (what mutual TLS establishes between processes)."""

    def __init__(self, network: EmbeddedNetwork, peer: Peer) -> None:
        self._network = network
        self._peer = peer

    def peers(self, channel_id: str, msp_id: str) -> list[str]:
        return [
            p.name
            for p in self._network.peers_of(channel_id)
            if p.msp_id == msp_id and p is not self._peer
        ]

    def _target(self, name: str) -> Peer:
        if name in self._network.unreachable:
            raise ConnectionError(f"{name} is unreachable")
        return next(p for p in self._network.peers if p.name == name)

    def push(self, peer: str, channel_id: str, tx_id: str, pvt_rwset: bytes) -> bool:
        return self._target(peer).receive_private(channel_id, self._peer.msp_id, tx_id, pvt_rwset)

    def fetch(
        self, peer: str, channel_id: str, tx_id: str, namespace: str, collection: str
    ) -> bytes | None:
        return self._target(peer).serve_private(
            channel_id, self._peer.msp_id, tx_id, namespace, collection
        )
