"""The gateway's checks of the caller, in process, over a real embedded network.

CommitStatus asks the channel's Readers policy of the identity that signed the request, once
that identity is valid and its signature verified (the policy is not asked to deserialize and
verify it a second time). The hostile cases: a forged signature, a signature over another
request, a valid identity that is not a Reader, a member of another channel, an expired
certificate; a reader's answer first
must never let any of them through.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import grpc
import pytest
from fabric_protos.gateway import gateway_pb2
from tests.conftest import make_org

from medalliance.gateway.errors import RpcFailure
from medalliance.gateway.service import READERS_POLICY, GatewayService
from medalliance.identity.cryptogen import load_signer
from medalliance.identity.signing import Signer
from medalliance.node.embedded import EmbeddedNetwork
from medalliance.node.endorsers import LocalEndorser
from medalliance.node.served import ServedChannel


def gateway(
    network: EmbeddedNetwork, now: dt.datetime, channel: str = "alliance"
) -> tuple[GatewayService, str]:
    """HospA's peer's gateway on `channel`, and a transaction's id committed there (an id
    never committed when the channel has no transaction: only refusals are asked then)."""
    peer = next(p for p in network.peers_of(channel) if p.msp_id == "HospAMSP")
    served = ServedChannel.of(peer.channel(channel))
    local = LocalEndorser(peer, "peer0.hospa.example.com:8151", lambda: now)

    async def broadcast(channel_id: str, envelope: bytes) -> None:
        raise AssertionError("not submitted here")

    service = GatewayService(
        local=local,
        channel_for=lambda channel_id: served,
        peers_for=lambda channel_id: {"HospAMSP": [local]},
        endorsing=frozenset({"HospAMSP"}),
        broadcast=broadcast,
        now=lambda: now,
    )
    committed = served.store.tx_locations(served.ledger.height - 1)
    return service, committed[0][0] if committed else "tx-never-committed"


def status_request(
    signer: Signer, tx_id: str, *, signed_by: Signer | None = None, channel: str = "alliance"
) -> gateway_pb2.SignedCommitStatusRequest:
    request = gateway_pb2.CommitStatusRequest(
        transaction_id=tx_id, channel_id=channel, identity=signer.serialized_identity
    ).SerializeToString()
    return gateway_pb2.SignedCommitStatusRequest(
        request=request, signature=(signed_by or signer).sign(request)
    )


def denied(service: GatewayService, request: gateway_pb2.SignedCommitStatusRequest) -> str:
    with pytest.raises(RpcFailure) as failure:
        asyncio.run(service._commit_status(request))
    assert failure.value.code == grpc.StatusCode.PERMISSION_DENIED
    return failure.value.message


def test_commit_status_answers_readers_and_refuses_every_other_caller(
    network: EmbeddedNetwork,
) -> None:
    service, tx_id = gateway(network, network.now())
    reader = network.signer("HospAMSP")
    answer = asyncio.run(service._commit_status(status_request(reader, tx_id)))
    assert answer.block_number > 0

    refused = f"access denied: {READERS_POLICY} not satisfied"
    other_reader = network.signer("HospBMSP")  # a reader, signing for HospA's identity
    assert denied(service, status_request(reader, tx_id, signed_by=other_reader)) == refused
    replayed = status_request(reader, tx_id)
    replayed.signature = status_request(reader, "other-tx").signature  # another request's
    assert denied(service, replayed) == refused
    # HospA's ordering node: a valid HospA identity, its own signature, but not a Reader
    orderer = load_signer(network.layout.orderer_dir("HospAMSP", "orderer0") / "msp", "HospAMSP")
    assert denied(service, status_request(orderer, tx_id)) == refused
    stranger = make_org("HospAMSP").signer("mallory")  # HospA's name, another CA
    assert "access denied" in denied(service, status_request(stranger, tx_id))
    # a reader again: its earlier answer was not spoiled by the refusals, nor did it help them
    again = asyncio.run(service._commit_status(status_request(reader, tx_id)))
    assert again.block_number == answer.block_number


def test_commit_status_refuses_a_member_of_another_channel_and_an_expired_reader(
    network: EmbeddedNetwork,
) -> None:
    service, tx_id = gateway(network, network.now(), "tertiary")
    reader = network.signer("HospAMSP")
    hosp_c = network.signer("HospCMSP")  # reads channel alliance, not tertiary
    alliance, committed = gateway(network, network.now())
    asyncio.run(alliance._commit_status(status_request(hosp_c, committed)))
    assert "unknown MSP" in denied(service, status_request(hosp_c, tx_id, channel="tertiary"))
    late, _ = gateway(network, network.now() + dt.timedelta(days=3650 * 3), "tertiary")
    assert "expired" in denied(late, status_request(reader, tx_id, channel="tertiary"))
