"""The asset-transfer-private-data port on the embedded network: the sample application's calls
through the embedded clients (endorsed as Fabric's gateway plans it), values only on member
peers, and what DeliverWithPrivateData would send each organisation."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.conftest import CONFIG

from medalliance.errors import ContractError
from medalliance.gateway.private_delivery import held_private_data, readable_private_data
from medalliance.node.config import NetworkConfig
from medalliance.node.embedded import EmbeddedNetwork
from medalliance.node.peer import Peer

CHANNEL = "alliance"
A, B, C = "HospAMSP", "HospBMSP", "HospCMSP"


def _collection(
    name: str, members: list[str], block_to_live: int, write: bool
) -> dict[str, object]:
    policy = "OR(" + ", ".join(f"'{m}.member'" for m in members) + ")"
    return {
        "name": name,
        "policy": policy,
        "requiredPeerCount": 0 if len(members) == 1 else 1,
        "maxPeerCount": 1,
        "blockToLive": block_to_live,
        "memberOnlyRead": True,
        "memberOnlyWrite": write,
        "endorsementPolicy": {"signaturePolicy": policy},
    }


def _config() -> NetworkConfig:
    """The sample's collections config with the alliance's tertiary hospitals as Org1/Org2."""
    config = copy.deepcopy(CONFIG)
    config["channels"][0]["contracts"].append(  # type: ignore[index]
        {
            "name": "private",
            "package": "medalliance.samples.asset_transfer_private_data:AssetTransferPrivateData",
            "endorsement_policy": f"OR('{A}.peer', '{B}.peer')",
            "collections": [
                _collection("assetCollection", [A, B], 1000000, True),
                _collection(f"{A}PrivateCollection", [A], 3, False),
                _collection(f"{B}PrivateCollection", [B], 3, False),
            ],
        }
    )
    return NetworkConfig.model_validate(config)


@pytest.fixture
def network(tmp_path: Path) -> Iterator[EmbeddedNetwork]:
    with EmbeddedNetwork.open(_config(), tmp_path / "net") as net:
        yield net


def submit(network: EmbeddedNetwork, msp: str, function: str, key: str, value: object) -> int:
    data = json.dumps(value, separators=(",", ":")).encode()
    return network.client(msp).submit(CHANNEL, "private", function, transient={key: data}).code


def peer_of(network: EmbeddedNetwork, msp_id: str) -> Peer:
    return next(p for p in network.peers if p.msp_id == msp_id)


def test_the_sample_runs_and_each_organisation_reads_only_what_it_may(
    network: EmbeddedNetwork,
) -> None:
    asset = {"objectType": "ValuableAsset", "assetID": "asset1", "color": "green", "size": 20}
    assert (
        submit(network, A, "CreateAsset", "asset_properties", {**asset, "appraisedValue": 100}) == 0
    )
    assert (
        submit(
            network,
            B,
            "AgreeToTransfer",
            "asset_value",
            {"assetID": "asset1", "appraisedValue": 100},
        )
        == 0
    )
    assert (
        submit(network, A, "TransferAsset", "asset_owner", {"assetID": "asset1", "buyerMSP": B})
        == 0
    )
    read = json.loads(network.client(B).evaluate(CHANNEL, "private", "ReadAsset", "asset1"))
    assert read["owner"].startswith("x509::CN=User1@hospb.example.com,")
    details = network.client(B).evaluate(
        CHANNEL, "private", "ReadAssetPrivateDetails", f"{B}PrivateCollection", "asset1"
    )
    assert json.loads(details) == {"assetID": "asset1", "appraisedValue": 100}
    with pytest.raises(ContractError):  # memberOnlyRead: HospA reads no HospB collection
        network.client(A).evaluate(
            CHANNEL, "private", "ReadAssetPrivateDetails", f"{B}PrivateCollection", "asset1"
        )
    # HospC's peer (no member) holds no value; the ledger's hashes only.
    secret = b'{"assetID":"asset1","appraisedValue":100}'
    network.close()
    for msp in (C, "RegMSP"):
        peer = peer_of(network, msp)
        assert not [
            p for p in peer.directory.rglob("*") if p.is_file() and secret in p.read_bytes()
        ]


def test_deliver_with_private_data_gives_each_organisation_its_collections(
    network: EmbeddedNetwork,
) -> None:
    created = {"objectType": "T", "assetID": "a9", "color": "red", "size": 1, "appraisedValue": 7}
    assert submit(network, A, "CreateAsset", "asset_properties", created) == 0
    ledger = peer_of(network, A).channel(CHANNEL)
    assert ledger.private is not None
    block = ledger.store.get_block(ledger.height - 1)
    held = held_private_data(block, ledger.private.committed_set)

    def collections(msp: str) -> list[str]:
        return sorted(
            c.collection_name
            for pvt in readable_private_data(held, msp, ledger.collections_of).values()
            for ns in pvt.ns_pvt_rwset
            for c in ns.collection_pvt_rwset
        )

    assert collections(A) == ["HospAMSPPrivateCollection", "assetCollection"]
    assert collections(B) == ["assetCollection"]
    assert collections(C) == []  # hostile reader of the channel: blocks, never values
