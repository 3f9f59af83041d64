"""`/metrics` on real node processes: Fabric's metric names, moving as transactions commit."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
from fabric_protos.peer import peer_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from medalliance.app.session import connect_as
from medalliance.identity.cryptogen import load_signer
from medalliance.ledger.tx import new_signed_proposal
from medalliance.node.bootstrap import NetworkLayout
from tests.networks import gateway_stub, wait_until

CHANNEL, BASIC = "mychannel", "basic"


def scrape(
    network_dir: Path, org: str, role: str = "peers"
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a node's /metrics as {(name, labels): value}."""
    config = NetworkLayout.load(network_dir).config.organization(org)
    node = (config.peers if role == "peers" else config.orderers)[0]
    with urllib.request.urlopen(f"http://{node.operations_endpoint}/metrics", timeout=5) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = reply.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when there is none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def test_height_and_valid_transactions_move_when_a_transaction_commits(network_dir: Path) -> None:
    before = scrape(network_dir, "Org2")
    height = value(before, "ledger_blockchain_height", channel=CHANNEL)
    valid = value(
        before,
        "ledger_transaction_count",
        channel=CHANNEL,
        chaincode=BASIC,
        validation_code="VALID",
    )
    assert height >= 3  # genesis, the approvals and the commit of `basic`
    layout = NetworkLayout.load(network_dir)
    with connect_as(layout, "Org1") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(BASIC)
        contract.submit_transaction("CreateAsset", "metrics1", "blue", "5", "Tom", "300")

    def moved() -> bool:
        after = scrape(network_dir, "Org2")
        return (
            value(after, "ledger_blockchain_height", channel=CHANNEL) == height + 1
            and value(
                after,
                "ledger_transaction_count",
                channel=CHANNEL,
                transaction_type="ENDORSER_TRANSACTION",
                chaincode=BASIC,
                validation_code="VALID",
            )
            == valid + 1
        )

    wait_until(moved, "Org2's peer counts the committed transaction")
    after = scrape(network_dir, "Org2")
    assert value(after, "ledger_block_processing_time_count", channel=CHANNEL) >= 1
    # Org2's peer endorsed it (the policy needs both organisations).
    assert value(after, "endorser_successful_proposals") >= 1
    assert value(after, "endorser_proposal_duration_count", channel=CHANNEL, chaincode=BASIC) >= 1


def test_the_ordering_node_counts_broadcasts_and_reports_consensus(network_dir: Path) -> None:
    layout = NetworkLayout.load(network_dir)
    before = value(
        scrape(network_dir, "OrdererOrg", "orderers"), "broadcast_processed_count", status="SUCCESS"
    )
    with connect_as(layout, "Org2") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(BASIC)
        contract.submit_transaction("CreateAsset", "metrics2", "red", "1", "Li", "10")
    samples = scrape(network_dir, "OrdererOrg", "orderers")
    assert (
        value(
            samples,
            "broadcast_processed_count",
            channel=CHANNEL,
            type="ENDORSER_TRANSACTION",
            status="SUCCESS",
        )
        == before + 1
    )
    assert value(samples, "blockcutter_block_fill_duration_count", channel=CHANNEL) >= 1
    assert value(samples, "consensus_smartbft_view_proposal_sequence", channel=CHANNEL) == value(
        samples, "ledger_blockchain_height", channel=CHANNEL
    )
    pool = ("consensus_smartbft_pool_count_of_elements", frozenset({("channel", CHANNEL)}))
    assert samples[pool] == 0  # the mempool is empty again once the block is decided
    assert value(samples, "medalliance_consensus_decided_blocks_total", channel=CHANNEL) >= 1


def test_a_refused_proposal_is_counted_without_the_name_it_made_up(network_dir: Path) -> None:
    layout = NetworkLayout.load(network_dir)
    received = value(scrape(network_dir, "Org1"), "endorser_proposals_received")
    successful = value(scrape(network_dir, "Org1"), "endorser_successful_proposals")
    user = load_signer(layout.user_msp_dir("Org1MSP", "User1"), "Org1MSP")
    signed, _ = new_signed_proposal(
        user,
        channel_id=CHANNEL,
        chaincode="no-such-contract-x",
        args=[b"Anything"],
        nonce=os.urandom(24),
        timestamp_ms=int(time.time() * 1000),
    )
    _, channel = gateway_stub(layout)
    try:
        with pytest.raises(grpc.RpcError):
            peer_pb2_grpc.EndorserStub(channel).ProcessProposal(signed, timeout=10)
    finally:
        channel.close()
    samples = scrape(network_dir, "Org1")
    assert value(samples, "endorser_proposals_received") == received + 1
    assert value(samples, "endorser_successful_proposals") == successful
    assert value(samples, "endorser_proposal_duration_count", success="false", chaincode="") >= 1
    labels = {v for (_, ls) in samples for _, v in ls}
    assert "no-such-contract-x" not in labels  # a client cannot grow the label set


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/metricsx", id="a misspelt path is not found"),
        pytest.param("/" + "m" * 5000, id="a huge path is not found and not echoed whole"),
    ],
)
def test_unknown_paths_are_refused(network_dir: Path, path: str) -> None:
    node = NetworkLayout.load(network_dir).config.organization("Org1").peers[0]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://{node.operations_endpoint}{path}", timeout=5)
    assert refused.value.code == 404
    assert len(refused.value.read()) < 200
