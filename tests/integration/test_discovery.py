"""Fabric's discovery service on the embedded test network: HospA's peer answers, as its process
would (node/discovery_view.py over the peer's real ledgers), through the core and over a real
gRPC server hosting the servicer.

What a careful and a hostile client each get: the answers fabric-common reads (MSPs, orderers,
peers with heights and chaincodes, endorsement layouts), and for a forged, foreign, non-member,
unknown or malformed request a clear refusal with nothing else learnt, the peer serving on."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from fabric_protos.discovery import protocol_pb2 as discovery_pb2
from fabric_protos.gossip import message_pb2 as gossip_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import proposal_response_pb2
from tests.integration.conftest import CONFIG

from medalliance.gateway.discovery import (
    ChannelKnowledge,
    PeerKnowledge,
    discover,
    parse_signed_request,
)
from medalliance.gateway.discovery_service import DiscoveryService
from medalliance.identity.ca import CertificateAuthority
from medalliance.identity.signing import Signer
from medalliance.node.config import NetworkConfig
from medalliance.node.discovery_view import DiscoveryView
from medalliance.node.embedded import EmbeddedNetwork

HOST = "peer0.hospa.example.com"


@pytest.fixture(scope="module")
def network(
    network_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedNetwork]:
    directory = tmp_path_factory.mktemp("discovery") / "net"
    shutil.copytree(network_template, directory)
    with EmbeddedNetwork.open(NetworkConfig.model_validate(CONFIG), directory) as net:
        yield net


@pytest.fixture(scope="module")
def view(network: EmbeddedNetwork) -> DiscoveryView:
    (peer,) = (p for p in network.peers if p.name == HOST)

    def channel(channel_id: str) -> ChannelKnowledge | None:
        if channel_id not in peer.channel_ids:
            return None
        held = peer.channel(channel_id)
        return ChannelKnowledge(held.config, held.state)

    heights = lambda: {cid: peer.channel(cid).height for cid in peer.channel_ids}  # noqa: E731
    return DiscoveryView(network.layout, HOST, "HospAMSP", heights, channel)


@pytest.fixture(scope="module")
def knowledge(view: DiscoveryView) -> PeerKnowledge:
    return asyncio.run(view.knowledge())


def signed_request(signer: Signer, *queries: discovery_pb2.Query, tls_hash: bytes = b"") -> bytes:
    request = discovery_pb2.Request(
        authentication=discovery_pb2.AuthInfo(
            client_identity=signer.serialized_identity, client_tls_cert_hash=tls_hash
        ),
        queries=queries,
    )
    payload = request.SerializeToString()
    return discovery_pb2.SignedRequest(
        payload=payload, signature=signer.sign(payload)
    ).SerializeToString()


def ask(knowledge: PeerKnowledge, data: bytes, now: dt.datetime) -> list[discovery_pb2.QueryResult]:
    signed, request = parse_signed_request(data)
    return list(discover(signed, request, knowledge, now=now).results)


def config_query(channel: str) -> discovery_pb2.Query:
    return discovery_pb2.Query(channel=channel, config_query=discovery_pb2.ConfigQuery())


def peer_query(channel: str, *chaincodes: str) -> discovery_pb2.Query:
    interest = proposal_response_pb2.ChaincodeInterest(
        chaincodes=[proposal_response_pb2.ChaincodeCall(name=n) for n in chaincodes]
    )
    return discovery_pb2.Query(
        channel=channel, peer_query=discovery_pb2.PeerMembershipQuery(filter=interest)
    )


def cc_query(channel: str, *chaincodes: str) -> discovery_pb2.Query:
    interest = proposal_response_pb2.ChaincodeInterest(
        chaincodes=[proposal_response_pb2.ChaincodeCall(name=n) for n in chaincodes]
    )
    return discovery_pb2.Query(
        channel=channel, cc_query=discovery_pb2.ChaincodeQuery(interests=[interest])
    )


def collection_query(channel: str, chaincode: str, collection: str) -> discovery_pb2.Query:
    call = proposal_response_pb2.ChaincodeCall(name=chaincode, collection_names=[collection])
    interest = proposal_response_pb2.ChaincodeInterest(chaincodes=[call])
    return discovery_pb2.Query(
        channel=channel, cc_query=discovery_pb2.ChaincodeQuery(interests=[interest])
    )


def local_query() -> discovery_pb2.Query:
    return discovery_pb2.Query(local_peers=discovery_pb2.LocalPeerQuery())


def endpoints(peers: discovery_pb2.Peers) -> list[str]:
    return [
        gossip_pb2.GossipMessage.FromString(p.membership_info.payload).alive_msg.membership.endpoint
        for p in peers.peers
    ]


# --- answers -------------------------------------------------------------------------------------


def test_a_member_learns_msps_orderers_peers_and_endorsement_layouts(
    network: EmbeddedNetwork, knowledge: PeerKnowledge
) -> None:
    config, members, endorsers = ask(
        knowledge,
        signed_request(
            network.signer("HospCMSP"),
            config_query("alliance"),
            peer_query("alliance"),
            cc_query("alliance", "basic"),
        ),
        network.now(),
    )
    assert set(config.config_result.msps) == {"RegMSP", "HospAMSP", "HospBMSP", "HospCMSP"}
    assert config.config_result.msps["HospBMSP"].tls_root_certs
    (orderers,) = config.config_result.orderers.values()
    assert [(e.host, e.port) for e in orderers.endpoint] == [("127.0.0.1", 8050)]

    by_org = members.members.peers_by_org
    assert {org: endpoints(peers) for org, peers in by_org.items()} == {
        "RegMSP": ["127.0.0.1:8051"],
        "HospAMSP": ["127.0.0.1:8151"],
        "HospBMSP": ["127.0.0.1:8251"],
        "HospCMSP": ["127.0.0.1:8351"],
    }
    (own,) = by_org["HospAMSP"].peers
    assert identities_pb2.SerializedIdentity.FromString(own.identity).mspid == "HospAMSP"
    state = gossip_pb2.GossipMessage.FromString(own.state_info.payload).state_info.properties
    height = network.peers_of("alliance")[0].channel("alliance").height
    assert state.ledger_height == height > 1
    assert {c.name for c in state.chaincodes} >= {"basic", "visit"}

    (descriptor,) = endorsers.cc_query_res.content
    assert descriptor.chaincode == "basic"
    groups = {g: endpoints(p) for g, p in descriptor.endorsers_by_groups.items()}
    layouts = [
        sorted(groups[g][0] for g in layout.quantities_by_group) for layout in descriptor.layouts
    ]
    # the default policy: peers of two endorsing (tertiary) hospitals
    assert layouts == [["127.0.0.1:8151", "127.0.0.1:8251"]]


def test_an_admin_of_the_peers_organisation_lists_the_local_peers(
    network: EmbeddedNetwork, knowledge: PeerKnowledge
) -> None:
    (result,) = ask(
        knowledge, signed_request(network.signer("HospAMSP", "Admin"), local_query()), network.now()
    )
    assert len(result.members.peers_by_org) == 4
    assert not result.members.peers_by_org["HospBMSP"].peers[0].state_info.payload


# --- refusals: an error result for the query, nothing else learnt -------------------------------


def _foreign_signer() -> Signer:
    now = dt.datetime.now(dt.UTC)
    ca = CertificateAuthority.create("ca.evil.example.com", "evil.example.com", now=now)
    user = ca.issue("User1@evil.example.com", node_ou="client", now=now)
    return Signer.from_pem("EvilMSP", user.cert_pem, user.key_pem)


def _bad_signature(data: bytes, network: EmbeddedNetwork) -> bytes:
    signed = discovery_pb2.SignedRequest.FromString(data)
    signed.signature = bytes(reversed(signed.signature))
    return signed.SerializeToString()


def _as_hospb(data: bytes, network: EmbeddedNetwork) -> bytes:
    """The request claims HospB's user's identity but keeps the real signer's signature."""
    signed = discovery_pb2.SignedRequest.FromString(data)
    request = discovery_pb2.Request.FromString(signed.payload)
    hospb = network.signer("HospBMSP")
    request.authentication.client_identity = hospb.serialized_identity
    signed.payload = request.SerializeToString()
    return signed.SerializeToString()


def _unsigned(data: bytes, network: EmbeddedNetwork) -> bytes:
    signed = discovery_pb2.SignedRequest.FromString(data)
    signed.ClearField("signature")
    return signed.SerializeToString()


@pytest.mark.parametrize(
    ("who", "query", "tamper", "message"),
    [
        pytest.param("HospCMSP", config_query("alliance"), _unsigned, "access denied",
                     id="an unsigned request is denied"),
        pytest.param("HospCMSP", config_query("alliance"), _bad_signature, "access denied",
                     id="a badly signed request is denied"),
        pytest.param("HospCMSP", config_query("tertiary"), _as_hospb, "access denied",
                     id="another organisation's identity with one's own signature is denied"),
        pytest.param("EvilMSP", peer_query("alliance"), None, "access denied",
                     id="an identity of an unknown MSP is denied"),
        pytest.param("HospCMSP", config_query("tertiary"), None, "access denied",
                     id="a non-member asking about a channel is denied"),
        pytest.param("HospAMSP", config_query("no-such-channel"), None, "access denied",
                     id="an unknown channel answers as a non-member's, so none can be enumerated"),
        pytest.param("HospAMSP", cc_query("alliance", "no-such-cc"), None,
                     "chaincode no-such-cc is not defined on channel alliance",
                     id="an unknown chaincode is named"),
        pytest.param("HospAMSP", collection_query("alliance", "basic", "secrets"), None,
                     "collection secrets doesn't exist in collection config for chaincode basic",
                     id="a collection the contract does not define is named"),
        pytest.param("HospAMSP", cc_query("alliance"), None, "at least one chaincode",
                     id="an empty chaincode interest is refused"),
        pytest.param("HospAMSP", discovery_pb2.Query(channel="alliance", cc_query=discovery_pb2.ChaincodeQuery(
                         interests=[cc_query("alliance", "basic").cc_query.interests[0]] * 9)),
                     None, "at most 8 interests", id="a flood of chaincode interests is refused"),
        pytest.param("HospAMSP", local_query(), None, "access denied",
                     id="a member that is not an admin cannot list the local peers"),
        pytest.param("HospBMSP", local_query(), None, "access denied",
                     id="another organisation cannot list the local peers"),
        pytest.param("HospAMSP", discovery_pb2.Query(channel="alliance"), None,
                     "unknown or missing request type", id="a query without a type is refused"),
    ],
)  # fmt: skip
def test_a_query_that_fails_answers_an_error_result_and_nothing_else(
    network: EmbeddedNetwork,
    knowledge: PeerKnowledge,
    who: str,
    query: discovery_pb2.Query,
    tamper: object,
    message: str,
) -> None:
    signer = _foreign_signer() if who == "EvilMSP" else network.signer(who)
    data = signed_request(signer, query)
    if callable(tamper):
        data = tamper(data, network)
    (result,) = ask(knowledge, data, network.now())
    assert result.WhichOneof("result") == "error"
    assert message in result.error.content


# --- over a real gRPC server: malformed requests, and the peer keeps serving ------------------


async def _call(view: DiscoveryView, requests: list[bytes]) -> list[object]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (DiscoveryService(view.knowledge, lambda: dt.datetime.now(dt.UTC)).handler(),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    out: list[object] = []
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            discover_rpc = channel.unary_unary(
                "/discovery.Discovery/Discover",
                request_serializer=None,
                response_deserializer=discovery_pb2.Response.FromString,
            )
            for data in requests:
                try:
                    out.append(await discover_rpc(data, timeout=30))
                except grpc.aio.AioRpcError as exc:
                    out.append(exc)
    finally:
        await server.stop(None)
    return out


def _without_auth() -> bytes:
    payload = discovery_pb2.Request(queries=[config_query("alliance")]).SerializeToString()
    return discovery_pb2.SignedRequest(payload=payload).SerializeToString()


def test_malformed_requests_are_invalid_arguments_and_the_peer_keeps_serving(
    network: EmbeddedNetwork, view: DiscoveryView
) -> None:
    good = signed_request(network.signer("HospCMSP"), config_query("alliance"))
    unsigned_payload = discovery_pb2.SignedRequest(payload=b"\xff\xff\xff").SerializeToString()
    flood = signed_request(network.signer("HospCMSP"), *[config_query("alliance")] * 33)
    answers = asyncio.run(
        _call(view, [b"\x0a\xff\xff", unsigned_payload, _without_auth(), b"", flood, good])
    )
    *refused, served = answers
    expected = [
        "malformed discovery request",
        "malformed discovery request",
        "no authentication info in request",
        "no authentication info in request",
        "at most 32 queries",
    ]
    for answer, message in zip(refused, expected, strict=True):
        assert isinstance(answer, grpc.aio.AioRpcError)
        assert answer.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert message in (answer.details() or "")
    assert isinstance(served, discovery_pb2.Response)
    assert served.results[0].WhichOneof("result") == "config_result"


@pytest.mark.parametrize(
    ("chaincodes", "count"),
    [
        pytest.param((), 4, id="no filter lists every member's peer"),
        pytest.param(("basic", "visit"), 4, id="a filter of defined chaincodes keeps their peers"),
        pytest.param(("basic", "no-such-cc"), 0, id="a filter naming an undefined chaincode keeps none"),
    ],
)  # fmt: skip
def test_a_peer_query_filter_keeps_the_peers_with_those_chaincodes(
    network: EmbeddedNetwork, knowledge: PeerKnowledge, chaincodes: tuple[str, ...], count: int
) -> None:
    (result,) = ask(
        knowledge,
        signed_request(network.signer("HospCMSP"), peer_query("alliance", *chaincodes)),
        network.now(),
    )
    assert sum(len(p.peers) for p in result.members.peers_by_org.values()) == count
