"""Fabric's discovery service (`discovery.Discovery/Discover`): the answers, from what a peer knows.

Pure: no clock (time is an argument), no sockets, no files. The shell (discovery_service.py)
parses nothing but the outer message and hands over a `PeerKnowledge`: the channels this peer
holds (configuration and world state, for the lifecycle's chaincode definitions), every peer of
the network with the ledger heights this peer last learnt, and the peer's own MSP.

Queries, as Fabric answers them (docs/discovery.md):
- `config_query`: each channel organisation's `FabricMSPConfig`, the orderer endpoints per
  ordering organisation;
- `peer_query`: the channel's peers per organisation, each as a gossip `AliveMessage` (endpoint)
  and `StateInfo` (ledger height, chaincodes) envelope, optionally filtered by chaincodes;
- `cc_query`: per interest, an `EndorsementDescriptor`: one group per organisation and every
  minimal layout of groups that satisfies the chaincodes' endorsement policies (gateway/plan.py
  decides what satisfies a policy, as it does for the gateway's own endorsement plans);
- `local_peers` (no channel): every peer of the network, membership only.

Authentication is Fabric's: a channel query must be signed by an identity that satisfies the
channel's `/Channel/Application/Writers`; a local query by an admin of this peer's organisation.
A query that fails answers an error result (`access denied` for an unknown channel and a
non-member alike, so channels cannot be enumerated); only a request that is malformed as a whole
raises `InvalidArgument`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from fabric_protos.discovery import protocol_pb2 as discovery_pb2
from fabric_protos.gossip import message_pb2 as gossip_pb2
from fabric_protos.msp import identities_pb2, msp_config_pb2
from fabric_protos.peer import proposal_response_pb2
from google.protobuf.message import DecodeError

from medalliance.contracts.lifecycle import committed_collections, committed_definitions
from medalliance.errors import (
    InvalidDiscoveryRequest,
    MalformedMessage,
    MedallianceError,
    PreconditionFailed,
)
from medalliance.gateway.plan import (
    collection_requirements,
    every_plan,
    interest_requirements,
    namespace_requirement,
)
from medalliance.identity.msp import MspManager
from medalliance.identity.policy import SignedData
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.state import StateReader

WRITERS_POLICY = "/Channel/Application/Writers"  # Fabric's discovery ACL for channel queries
ACCESS_DENIED = "access denied"
# Bounds on the layouts of one descriptor: a policy over many organisations stays cheap.
LAYOUT_LIMIT = 64
LAYOUT_BUDGET = 4096
# Bounds on one request, which is answered on the peer's event loop: Fabric's SDKs send at most
# four queries and one interest per chaincode call chain.
MAX_QUERIES = 32
MAX_INTERESTS = 8
_EMPTY = gossip_pb2.GossipMessage.Tag.Value("EMPTY")
_CHAN_OR_ORG = gossip_pb2.GossipMessage.Tag.Value("CHAN_OR_ORG")


@dataclass(frozen=True, slots=True)
class KnownPeer:
    """A peer of the network: `endpoint` is its `host:port` as in the network config;
    `heights` the ledger height per channel this peer last learnt (absent: not known, 0)."""

    msp_id: str
    endpoint: str
    identity: bytes = field(repr=False)  # SerializedIdentity; empty id_bytes when unknown
    heights: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChannelKnowledge:
    """One channel as this peer holds it."""

    config: ChannelConfig
    state: StateReader = field(repr=False)


@dataclass(frozen=True, slots=True)
class PeerKnowledge:
    """What the answers are computed from. `channel` returns None for a channel this peer
    does not hold; `local_msps` holds this peer's own organisation's MSP (local queries)."""

    channel: Callable[[str], ChannelKnowledge | None]
    peers: tuple[KnownPeer, ...]
    local_msps: MspManager = field(repr=False)


def parse_signed_request(data: bytes) -> tuple[discovery_pb2.SignedRequest, discovery_pb2.Request]:
    """The signed request and its payload; raises `InvalidArgument` (Fabric's structure check)
    for bytes that do not parse, or a request without authentication or client identity."""
    signed = discovery_pb2.SignedRequest()
    request = discovery_pb2.Request()
    try:
        signed.ParseFromString(data)
        request.ParseFromString(signed.payload)
    except DecodeError as exc:
        raise MalformedMessage("discovery request", str(exc)) from None
    if not request.HasField("authentication"):
        raise InvalidDiscoveryRequest("access denied, no authentication info in request")
    if not request.authentication.client_identity:
        raise InvalidDiscoveryRequest("access denied, client identity wasn't supplied")
    if len(request.queries) > MAX_QUERIES:
        raise InvalidDiscoveryRequest(
            f"a discovery request holds at most {MAX_QUERIES} queries; this one has "
            f"{len(request.queries)}: send them in several requests"
        )
    return signed, request


def check_tls_binding(request: discovery_pb2.Request, client_cert_hash: bytes | None) -> None:
    """Fabric binds a request to the client's TLS certificate when mutual TLS is on: the
    SHA-256 of the certificate the client authenticated with must be the hash it claims. Our
    peers do not require client certificates (Fabric's `clientAuthRequired: false`, where Fabric
    skips the check), so it applies to a client that authenticated with one (`client_cert_hash`
    is None when it did not)."""
    if client_cert_hash is None:
        return
    if bytes(request.authentication.client_tls_cert_hash) != client_cert_hash:
        raise InvalidDiscoveryRequest(
            "client claimed TLS hash doesn't match computed TLS hash from gRPC stream"
        )


def discover(
    signed: discovery_pb2.SignedRequest,
    request: discovery_pb2.Request,
    knowledge: PeerKnowledge,
    *,
    now: dt.datetime,
) -> discovery_pb2.Response:
    """One result per query, in order: an answer, or an error result saying why not."""
    data = SignedData(bytes(signed.payload), bytes(request.authentication.client_identity),
                      bytes(signed.signature))  # fmt: skip
    eligible: dict[str, bool] = {}  # per channel: the signature is checked once per request
    results = []
    for query in request.queries:
        channel = knowledge.channel(query.channel) if query.channel else None
        if query.channel not in eligible:
            eligible[query.channel] = _eligible(query.channel, channel, knowledge, data, now)
        if not eligible[query.channel]:
            results.append(_error(ACCESS_DENIED))
            continue
        try:
            results.append(_dispatch(query, channel, knowledge))
        except _QueryError as exc:
            results.append(_error(str(exc)))
    return discovery_pb2.Response(results=results)


def _eligible(
    channel_id: str,
    channel: ChannelKnowledge | None,
    knowledge: PeerKnowledge,
    data: SignedData,
    now: dt.datetime,
) -> bool:
    try:
        if not channel_id:  # a local query: an admin of this peer's own organisation
            identity = knowledge.local_msps.deserialize(data.identity, at=now)
            return identity.is_admin and identity.verify(data.signature, data.data)
        if channel is None:
            return False  # the same answer as a non-member's: channels cannot be enumerated
        return channel.config.evaluate_policy(WRITERS_POLICY, [data], at=now)
    except MedallianceError:  # an identity that does not deserialize or validate
        return False


def _dispatch(
    query: discovery_pb2.Query, channel: ChannelKnowledge | None, knowledge: PeerKnowledge
) -> discovery_pb2.QueryResult:
    kind = query.WhichOneof("query")
    if channel is None:
        if kind == "local_peers":
            return _members(_by_org(knowledge.peers, None, ""))
        raise _QueryError("unknown or missing request type")
    if kind == "config_query":
        return discovery_pb2.QueryResult(config_result=_config(channel.config))
    if kind == "peer_query":
        return _members(_channel_peers(query, channel, knowledge))
    if kind == "cc_query":
        return _chaincodes(query, channel, knowledge)
    raise _QueryError("unknown or missing request type")


# --- config_query ----------------------------------------------------------------------------


def _config(config: ChannelConfig) -> discovery_pb2.ConfigResult:
    result = discovery_pb2.ConfigResult()
    for msp_id, org in config.orgs.items():
        outer = msp_config_pb2.MSPConfig.FromString(org.msp.to_proto_bytes())
        result.msps[msp_id].ParseFromString(outer.config)
    for org in config.orderer_orgs:
        # Fabric 2 keeps the addresses in each ordering organisation; older channels globally.
        for address in org.endpoints or config.consenters:
            host, _, port = address.rpartition(":")
            if host and port.isascii() and port.isdigit():
                result.orderers[org.msp_id].endpoint.add(host=host, port=int(port))
    return result


# --- peer_query and local_peers ----------------------------------------------------------------


def _channel_peers(
    query: discovery_pb2.Query, channel: ChannelKnowledge, knowledge: PeerKnowledge
) -> dict[str, list[discovery_pb2.Peer]]:
    wanted = {call.name for call in query.peer_query.filter.chaincodes}
    defined = _defined(channel.state)
    if not wanted <= set(defined):
        wanted_orgs: tuple[str, ...] = ()  # a filter naming an undefined chaincode: no peer
    else:
        wanted_orgs = channel.config.application_msp_ids
    peers = [p for p in knowledge.peers if p.msp_id in wanted_orgs]
    out: dict[str, list[discovery_pb2.Peer]] = {
        msp_id: [] for msp_id in channel.config.application_msp_ids
    }
    out.update(_by_org(peers, defined, channel.config.channel_id))
    return out


def _by_org(
    peers: Sequence[KnownPeer], chaincodes: Mapping[str, str] | None, channel_id: str
) -> dict[str, list[discovery_pb2.Peer]]:
    out: dict[str, list[discovery_pb2.Peer]] = {}
    for peer in peers:
        out.setdefault(peer.msp_id, []).append(_peer(peer, chaincodes, channel_id))
    return out


def _members(peers_by_org: Mapping[str, list[discovery_pb2.Peer]]) -> discovery_pb2.QueryResult:
    result = discovery_pb2.QueryResult(members=discovery_pb2.PeerMembershipResult())
    for msp_id, peers in peers_by_org.items():
        result.members.peers_by_org[msp_id].peers.extend(peers)
    return result


def _peer(
    peer: KnownPeer, chaincodes: Mapping[str, str] | None, channel_id: str
) -> discovery_pb2.Peer:
    """A peer as gossip would report it. The envelopes carry no signature: this peer cannot
    sign for others, and Fabric's SDKs read the messages without verifying them."""
    pki_id = _pki_id(peer.identity)
    alive = gossip_pb2.GossipMessage(
        tag=_EMPTY,
        alive_msg=gossip_pb2.AliveMessage(
            membership=gossip_pb2.Member(endpoint=peer.endpoint, pki_id=pki_id)
        ),
    )
    found = discovery_pb2.Peer(
        identity=peer.identity,
        membership_info=gossip_pb2.Envelope(payload=alive.SerializeToString()),
    )
    if chaincodes is not None:
        state = gossip_pb2.GossipMessage(
            tag=_CHAN_OR_ORG,
            channel=channel_id.encode(),
            state_info=gossip_pb2.StateInfo(
                pki_id=pki_id,
                channel_MAC=hashlib.sha256(pki_id + channel_id.encode()).digest(),
                properties=gossip_pb2.Properties(
                    ledger_height=peer.heights.get(channel_id, 0),
                    chaincodes=[
                        gossip_pb2.Chaincode(name=name, version=version)
                        for name, version in chaincodes.items()
                    ],
                ),
            ),
        )
        found.state_info.payload = state.SerializeToString()
    return found


def _pki_id(serialized: bytes) -> bytes:
    """Fabric's PKI-ID of a peer: SHA-256 over its MSP id and certificate."""
    identity = identities_pb2.SerializedIdentity.FromString(serialized)
    return hashlib.sha256(identity.mspid.encode() + identity.id_bytes).digest()


def _defined(state: StateReader) -> dict[str, str]:
    """The channel's active chaincodes: name -> version. Every member peer installs the
    packages of the contracts its network defines, so each peer reports all of them."""
    return {d.name: d.version for d in committed_definitions(state) if not d.deregistered}


# --- cc_query ----------------------------------------------------------------------------------


def _chaincodes(
    query: discovery_pb2.Query, channel: ChannelKnowledge, knowledge: PeerKnowledge
) -> discovery_pb2.QueryResult:
    interests = query.cc_query.interests
    if not interests:
        raise _QueryError("chaincode query must have at least one chaincode interest")
    if len(interests) > MAX_INTERESTS:
        raise _QueryError(
            f"a chaincode query holds at most {MAX_INTERESTS} interests; this one has "
            f"{len(interests)}: send them in several queries"
        )
    result = discovery_pb2.QueryResult(cc_query_res=discovery_pb2.ChaincodeQueryResult())
    for interest in interests:
        result.cc_query_res.content.append(_descriptor(interest, channel, knowledge))
    return result


def _descriptor(
    interest: proposal_response_pb2.ChaincodeInterest,
    channel: ChannelKnowledge,
    knowledge: PeerKnowledge,
) -> discovery_pb2.EndorsementDescriptor:
    names = [call.name for call in interest.chaincodes]
    if not names:
        raise _QueryError("chaincode interest must contain at least one chaincode")
    if not all(names):
        raise _QueryError("chaincode name in interest cannot be empty")
    what = f"failed constructing descriptor for chaincodes {', '.join(names)}"
    defined = _defined(channel.state)
    for call in interest.chaincodes:
        if call.name not in defined:
            raise _QueryError(
                f"{what}: chaincode {call.name} is not defined on channel "
                f"{channel.config.channel_id}"
            )
    members = channel.config.application_msp_ids
    peers = [p for p in knowledge.peers if p.msp_id in members]
    candidates = list(dict.fromkeys(p.msp_id for p in peers))
    needs = interest_requirements(
        interest, lambda name: namespace_requirement(channel.state, name, members)
    )
    try:  # collections: their own policies, and member peers only where private data is read
        needs += collection_requirements(
            interest, lambda name: committed_collections(channel.state, name), members
        )
    except PreconditionFailed as exc:
        raise _QueryError(f"{what}: {exc}") from None
    plans = every_plan(needs, candidates, limit=LAYOUT_LIMIT, budget=LAYOUT_BUDGET)
    if not plans:
        raise _QueryError(
            f"{what}: no combination of peers can be derived which satisfy the endorsement "
            f"policy (organisations with peers: {', '.join(candidates) or 'none'})"
        )
    orgs = list(dict.fromkeys(org for plan in plans for org in plan))
    group = {org: f"G{i}" for i, org in enumerate(orgs)}
    descriptor = discovery_pb2.EndorsementDescriptor(chaincode=names[0])
    for org, peers_of_org in _by_org(
        [p for p in peers if p.msp_id in group], defined, channel.config.channel_id
    ).items():
        descriptor.endorsers_by_groups[group[org]].peers.extend(peers_of_org)
    for plan in plans:
        descriptor.layouts.add().quantities_by_group.update({group[org]: 1 for org in plan})
    return descriptor


class _QueryError(Exception):
    """One query cannot be answered: its message becomes the query's error result."""


def _error(message: str) -> discovery_pb2.QueryResult:
    return discovery_pb2.QueryResult(error=discovery_pb2.Error(content=message))
