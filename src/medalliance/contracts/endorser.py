"""The endorser: check a signed proposal, simulate its contract, sign the result.

Fabric's `ProcessProposal` (protocol doc §0 step 2, §3.1): the proposal must parse, be an endorser
transaction for this channel with epoch 0, carry a valid creator who signed it and who satisfies
the channel's Writers policy, have tx_id = sha256(nonce ‖ creator), and not be on the ledger yet.
A request that fails these checks raises a typed error (the gateway answers with its status); a
contract that refuses the call yields an error response without an endorsement.
"""

from __future__ import annotations

import datetime as dt
import logging
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fabric_protos.msp import identities_pb2
from fabric_protos.peer import proposal_pb2, proposal_response_pb2

from medalliance.contracts.api import Contract, Organization
from medalliance.contracts.collection_interest import add_collection_calls
from medalliance.contracts.key_policy import chaincode_interest
from medalliance.contracts.lifecycle import (
    LIFECYCLE_NAMESPACE,
    LifecycleContract,
    approved_package,
    committed_collections,
    committed_definition,
)
from medalliance.contracts.package import PackageStore
from medalliance.contracts.private_stub import NO_PRIVATE_DATA, PrivateReader
from medalliance.contracts.simulation import SimulationResult, TxContext, simulate
from medalliance.errors import (
    ContractError,
    DuplicateTransaction,
    MedallianceError,
    PermissionDenied,
    PreconditionFailed,
    UnknownContract,
)
from medalliance.identity.msp import Identity
from medalliance.identity.verified import VERIFIED, remember_own_signature
from medalliance.ledger.signed_header import check_signed_header
from medalliance.ledger.state import StateReader
from medalliance.ledger.tx import (
    ProposalView,
    SigningIdentity,
    new_error_response,
    new_proposal_response,
)
from medalliance.ledger.validation import ChannelPolicies

log = logging.getLogger(__name__)

WRITERS_POLICY = "/Channel/Application/Writers"
LIFECYCLE_VERSION = "syscc"


@dataclass(frozen=True, slots=True)
class ChannelView:
    """One channel as the endorsing peer sees it: configuration, state and ledger look-ups."""

    config: ChannelPolicies
    state: StateReader
    is_committed_tx: Callable[[str], bool]
    private: PrivateReader = NO_PRIVATE_DATA  # this peer's private data of the channel


@dataclass(frozen=True, slots=True)
class Endorsed:
    """The outcome of one proposal: the simulation and the response to return."""

    proposal: ProposalView
    result: SimulationResult
    response: proposal_response_pb2.ProposalResponse

    @property
    def ok(self) -> bool:
        return self.result.status < 400


class Endorser:
    """Endorses proposals for the channels of one peer with the peer's signing identity."""

    def __init__(self, signer: SigningIdentity, packages: PackageStore) -> None:
        self._signer = signer
        self._packages = packages
        self._lifecycle = LifecycleContract()
        self._msp_id = identities_pb2.SerializedIdentity.FromString(
            signer.serialized_identity
        ).mspid
        # The identity hash of the certificate whose key was found to be the signer's: the
        # signer never changes, so the same certificate needs no second comparison of keys.
        self._own_id_hash: bytes | None = None
        # Per channel: its configuration and the organisations read from it (`_organizations_of`)
        self._organizations: dict[str, tuple[ChannelPolicies, Mapping[str, Organization]]] = {}

    def check(self, proposal: ProposalView, channel: ChannelView, *, now: dt.datetime) -> Identity:
        """Check a parsed proposal before simulation; returns its creator.

        Raises the typed error a client must see (signature, Writers policy, duplicate, ...).
        """
        header = proposal.header
        creator = check_signed_header(
            header, proposal.signature, proposal.proposal_bytes, channel.config.msps, at=now
        )
        # The creator is valid at `now` and its signature verified just above: what
        # `evaluate_policy` would check again before asking the same question.
        if not channel.config.satisfied_by(WRITERS_POLICY, (creator,)):
            raise PermissionDenied(
                f"{creator.msp_id} identity may not write to channel {header.channel_id} "
                f"(policy {WRITERS_POLICY})"
            )
        if channel.is_committed_tx(header.tx_id):
            raise DuplicateTransaction(header.tx_id)
        return creator

    def endorse(
        self, proposal: ProposalView, channel: ChannelView, *, now: dt.datetime
    ) -> Endorsed:
        """Check and simulate a proposal; sign the result unless the contract refused it."""
        creator = self.check(proposal, channel, now=now)
        contract, version = self._contract(proposal.chaincode_name, channel)
        tx = TxContext(
            channel_id=proposal.channel_id,
            tx_id=proposal.tx_id,
            timestamp_ms=proposal.header.timestamp_ms,
            creator=creator,
            transient=proposal.transient,
            channel_orgs=channel.config.application_msp_ids,
            organizations=self._organizations_of(channel.config),
            contracts=lambda name: self._callee(name, channel),
            signed_proposal=proposal_pb2.SignedProposal(
                proposal_bytes=proposal.proposal_bytes, signature=proposal.signature
            ).SerializeToString(),
            peer_msp_id=self._msp_id,
            private=channel.private,
            collections=lambda namespace: committed_collections(channel.state, namespace),
        )
        # Evaluate and endorse simulate alike; an evaluation's read-write set is just not used.
        result = simulate(contract, proposal.chaincode_name, proposal.args, channel.state, tx)
        if result.status >= 400:
            log.info(
                "proposal refused by contract",
                extra={
                    "tx_id": proposal.tx_id,
                    "contract": proposal.chaincode_name,
                    "status": result.status,
                },
            )
            response = new_error_response(result.status, result.message)
        else:
            response = new_proposal_response(
                proposal,
                self._signer,
                chaincode_version=version,
                status=result.status,
                message=result.message,
                payload=result.payload,
                rwset=result.rwset,
                event=result.event,
            )
            self._remember_own(response.endorsement, response.payload, channel, now)
            # Outside the signed payload, as in Fabric: the key-level policies the writes must
            # satisfy, so that the gateway can extend its plan to the organisations they name.
            response.interest.CopyFrom(
                chaincode_interest(result.rwset, proposal.chaincode_name, channel.state)
            )
            add_collection_calls(response.interest, result.rwset)
        return Endorsed(proposal, result, response)

    def _remember_own(
        self,
        endorsement: proposal_response_pb2.Endorsement,
        payload: bytes,
        channel: ChannelView,
        now: dt.datetime,
    ) -> None:
        """Spare this peer's validation of the block carrying this endorsement a second ECDSA
        verification of the signature it has just made (identity/verified.py)."""
        try:
            own = channel.config.msps.deserialize(endorsement.endorser, at=now)
        except MedallianceError:
            return  # not a valid identity of the channel: validation refuses it, as it must
        message = payload + endorsement.endorser
        if own.id_hash == self._own_id_hash:
            VERIFIED.remember(own.id_hash, endorsement.signature, message)
        elif remember_own_signature(own, self._signer, endorsement.signature, message):
            self._own_id_hash = own.id_hash

    def _organizations_of(self, config: ChannelPolicies) -> Mapping[str, Organization]:
        """`organizations(config)`, built once per configuration (a config update brings a new
        configuration object) and read-only, as every proposal's contract shares it."""
        kept = self._organizations.get(config.channel_id)
        if kept is None or kept[0] is not config:
            kept = (config, types.MappingProxyType(organizations(config)))
            self._organizations[config.channel_id] = kept
        return kept[1]

    def _callee(self, name: str, channel: ChannelView) -> Contract | None:
        """A contract another contract may call: committed, active, not the lifecycle."""
        if name == LIFECYCLE_NAMESPACE:
            return None
        try:
            return self._contract(name, channel)[0]
        except UnknownContract:
            return None
        except MedallianceError as exc:  # deregistered, or its package does not load here
            raise ContractError(str(exc), 412) from None

    def _contract(self, name: str, channel: ChannelView) -> tuple[Contract, str]:
        if name == LIFECYCLE_NAMESPACE:
            return self._lifecycle, LIFECYCLE_VERSION
        definition = committed_definition(channel.state, name)
        if definition is None:
            raise UnknownContract(channel.config.channel_id, name)
        if definition.deregistered:
            raise PreconditionFailed(
                f"contract {name} was deregistered at sequence {definition.sequence}"
            )
        package_id = definition.package_id
        if definition.external:
            # chaincode as a service: the package this organisation approved (its own server)
            approved = approved_package(channel.state, definition, self._msp_id)
            if not approved:
                raise PreconditionFailed(
                    f"{self._msp_id} approved no package for contract {name} at sequence "
                    f"{definition.sequence}; approve the definition with its ccaas package id"
                )
            package_id = approved
        try:
            return self._packages.load(package_id), definition.version
        except MedallianceError:
            raise
        except Exception as exc:  # an installed package that fails to import is a bug
            raise PreconditionFailed(f"contract {name} could not be loaded on this peer") from exc


def organizations(config: ChannelPolicies) -> dict[str, Organization]:
    """The channel's member organisations with their alliance roles, for contracts."""
    members = set(config.application_msp_ids)
    return {
        msp_id: Organization(msp_id, org.alliance_type, org.regulator, org.parent)
        for msp_id, org in config.orgs.items()
        if msp_id in members
    }
