"""The asset-transfer-private-data port answers the sample application's calls as Fabric does.

Two organisations' peers share one ledger (hashes) and keep their own private stores: a peer
stores a collection's values only when its organisation is a member. Each call runs at the
client's own organisation's peer, as the sample's application-gateway-typescript does.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from tests.ccaas_chaincode import InProcess, contract_behaviour
from tests.conftest import NOW, Org
from tests.unit.contracts.fakes import DictState
from tests.unit.contracts.test_private_stub import DictPrivate  # one private store per peer

from medalliance.contracts.collections import load_collections_config, parse_collections
from medalliance.contracts.composite_key import create_composite_key
from medalliance.contracts.external import ExternalContract
from medalliance.contracts.simulation import SimulationResult, TxContext, simulate
from medalliance.identity.client_id import client_id
from medalliance.identity.msp import MspManager
from medalliance.ledger.private_hashing import hashed_namespace, key_hash
from medalliance.ledger.state import Version, VersionedValue
from medalliance.ledger.tx import new_signed_proposal
from medalliance.samples.asset_transfer_private_data import (
    AssetTransferPrivateData,
    collections_config,
)

NS = "private"
COLLECTIONS = parse_collections(load_collections_config(collections_config()))


class Channel:
    """The ledger's hashes and each organisation's private store; successful submits commit."""

    def __init__(self, msps: MspManager, *orgs: Org, as_service: bool = False) -> None:
        self.msps = msps
        self.as_service = as_service
        self.state = DictState()
        self.orgs = {org.msp_id: org for org in orgs}
        self.private = {org.msp_id: DictPrivate() for org in orgs}
        self.calls = 0

    def call(
        self, msp_id: str, *args: str, transient: dict[str, str] | None = None, peer: str = ""
    ) -> SimulationResult:
        """One simulation at `peer` (the client's own organisation's by default); run as a
        service too when `as_service`, whose result must equal the Python port's."""
        self.calls += 1
        peer = peer or msp_id
        signer = self.orgs[msp_id].signer("User1", ou="client")
        raw_args = [a.encode() for a in args]
        transient_bytes = {k: v.encode() for k, v in (transient or {}).items()}
        signed, _ = new_signed_proposal(
            signer,
            channel_id="alliance",
            chaincode=NS,
            args=raw_args,
            nonce=b"n" * 24,
            timestamp_ms=1,
            transient=transient_bytes,
        )
        tx = TxContext(
            "alliance",
            f"tx{self.calls}",
            1_764_331_200_123,
            self.msps.deserialize(signer.serialized_identity, at=NOW),
            transient=transient_bytes,
            channel_orgs=tuple(self.orgs),
            signed_proposal=signed.SerializeToString(),
            peer_msp_id=peer,
            private=self.private[peer],
            collections=lambda ns: COLLECTIONS if ns == NS else {},
        )
        result = simulate(AssetTransferPrivateData(), NS, raw_args, self.state, tx)
        if self.as_service:
            behaviour = contract_behaviour(AssetTransferPrivateData(), peer_msp_id=peer)
            remote = ExternalContract("private_1.0:" + "a" * 64, InProcess(behaviour))
            assert simulate(remote, NS, raw_args, self.state, tx) == result, args[0]
        return result

    def submit(self, msp_id: str, function: str, key: str, value: object) -> None:
        result = self.call(msp_id, function, transient={key: stringify(value)})
        assert result.status == 200, result.message
        self.commit(result)

    def evaluate(self, msp_id: str, *args: str) -> str:
        result = self.call(msp_id, *args)
        assert result.status == 200, result.message
        return result.payload.decode()

    def refused(self, msp_id: str, function: str, key: str, value: object) -> str:
        result = self.call(msp_id, function, transient={key: stringify(value)})
        assert result.status == 500
        return result.message

    def commit(self, result: SimulationResult) -> None:
        """Hashes to the shared state; values to the stores of member organisations only."""
        self.state.block += 1
        version = Version(self.state.block, 0)
        for ns in rwset_pb2.TxReadWriteSet.FromString(result.rwset).ns_rwset:
            for coll in ns.collection_hashed_rwset:
                hashed = kv_rwset_pb2.HashedRWSet.FromString(coll.hashed_rwset)
                space = hashed_namespace(ns.namespace, coll.collection_name)
                for w in hashed.hashed_writes:
                    if w.is_delete:
                        self.state.data.pop((space, w.key_hash.hex()), None)
                    else:
                        self.state.data[(space, w.key_hash.hex())] = VersionedValue(
                            bytes(w.value_hash), version
                        )
        if not result.private_rwset:
            return
        for ns in rwset_pb2.TxPvtReadWriteSet.FromString(result.private_rwset).ns_pvt_rwset:
            for coll in ns.collection_pvt_rwset:
                for msp_id, store in self.private.items():
                    if not COLLECTIONS[coll.collection_name].is_member(msp_id):
                        continue
                    for w in kv_rwset_pb2.KVRWSet.FromString(coll.rwset).writes:
                        where = (ns.namespace, coll.collection_name, w.key)
                        if w.is_delete:
                            store.data.pop(where, None)
                        else:
                            store.data[where] = VersionedValue(bytes(w.value), version)


def stringify(value: object) -> str:
    """JavaScript's JSON.stringify, as the sample application builds its transient values."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@pytest.fixture(params=["python", "service"])
def channel(request: pytest.FixtureRequest, org1: Org, org2: Org, msps: MspManager) -> Channel:
    """The port run in the peer, or as a service over the shim protocol (chaincode as a
    service): every call's result must be the same."""
    return Channel(msps, org1, org2, as_service=request.param == "service")


def owner_id(channel: Channel, msp_id: str) -> str:
    signer = channel.orgs[msp_id].signer("User1", ou="client")
    return client_id(channel.msps.deserialize(signer.serialized_identity, at=NOW).certificate)


def asset(asset_id: str, color: str, size: int, value: int) -> dict[str, object]:
    return {
        "objectType": "ValuableAsset",
        "assetID": asset_id,
        "color": color,
        "size": size,
        "appraisedValue": value,
    }


def test_the_sample_applications_call_sequence(channel: Channel) -> None:
    """application-gateway-typescript's main(), step by step, with its expected outcomes."""
    org1, org2 = owner_id(channel, "Org1MSP"), owner_id(channel, "Org2MSP")
    channel.submit("Org1MSP", "CreateAsset", "asset_properties", asset("asset1", "green", 20, 100))
    channel.submit("Org1MSP", "CreateAsset", "asset_properties", asset("asset2", "blue", 35, 727))
    listed = json.loads(channel.evaluate("Org1MSP", "GetAssetByRange", "asset1", "asset3"))
    assert [a["assetID"] for a in listed] == ["asset1", "asset2"]
    assert listed[0] == {
        "objectType": "ValuableAsset",
        "assetID": "asset1",
        "color": "green",
        "size": 20,
        "owner": org1,
    }
    # Transfer before the buyer agreed: refused.
    message = channel.refused(
        "Org1MSP", "TransferAsset", "asset_owner", {"assetID": "asset1", "buyerMSP": "Org2MSP"}
    )
    assert message == (
        "failed transfer verification: hash of appraised value for asset1 does not exist in "
        "collection Org2MSPPrivateCollection. AgreeToTransfer must be called by the buyer first"
    )
    # Org2 reads the shared part, agrees to the value.
    assert json.loads(channel.evaluate("Org2MSP", "ReadAsset", "asset1"))["owner"] == org1
    agreed = {"assetID": "asset1", "appraisedValue": 100}
    channel.submit("Org2MSP", "AgreeToTransfer", "asset_value", agreed)
    assert json.loads(channel.evaluate("Org1MSP", "ReadTransferAgreement", "asset1")) == {
        "assetID": "asset1",
        "buyerID": org2,
    }
    channel.submit(
        "Org1MSP", "TransferAsset", "asset_owner", {"assetID": "asset1", "buyerMSP": "Org2MSP"}
    )
    assert json.loads(channel.evaluate("Org1MSP", "ReadAsset", "asset1"))["owner"] == org2
    details = ("ReadAssetPrivateDetails", "Org1MSPPrivateCollection", "asset1")
    assert channel.evaluate("Org1MSP", *details) == ""  # removed from the seller's collection
    assert channel.evaluate(
        "Org2MSP", "ReadAssetPrivateDetails", "Org2MSPPrivateCollection", "asset1"
    ) == stringify(agreed)
    # Org2 may not delete Org1's asset2: its own collection lacks it.
    message = channel.refused("Org2MSP", "DeleteAsset", "asset_delete", {"assetID": "asset2"})
    assert (
        message == "asset not found in owner's private Collection Org2MSPPrivateCollection: asset2"
    )
    channel.submit("Org1MSP", "DeleteAsset", "asset_delete", {"assetID": "asset2"})
    channel.submit("Org1MSP", "PurgeAsset", "asset_purge", {"assetID": "asset2"})
    assert channel.evaluate("Org1MSP", "ReadAsset", "asset2") == ""


def test_a_non_member_peer_holds_only_hashes(channel: Channel) -> None:
    channel.submit("Org1MSP", "CreateAsset", "asset_properties", asset("asset1", "red", 5, 4242))
    org2_store = channel.private["Org2MSP"].data
    assert (NS, "Org1MSPPrivateCollection", "asset1") not in org2_store
    assert (NS, "assetCollection", "asset1") in org2_store
    space = hashed_namespace(NS, "Org1MSPPrivateCollection")
    stored = channel.state.data[(space, key_hash("asset1").hex())].value
    assert stored == hashlib.sha256(b'{"assetID":"asset1","appraisedValue":4242}').digest()
    assert b"4242" not in repr(channel.state.data).encode()


@pytest.mark.parametrize(
    ("msp_id", "function", "key", "value", "peer", "message"),
    [
        pytest.param(
            "Org2MSP",
            "CreateAsset",
            "asset_properties",
            asset("a", "red", 1, 1),
            "Org1MSP",
            "CreateAsset cannot be performed: Error client from org Org2MSP is not authorized "
            "to read or write private data from an org Org1MSP peer",
            id="a client writes only through its own organisation's peer",
        ),
        pytest.param(
            "Org1MSP",
            "CreateAsset",
            "wrong_key",
            {},
            "",
            "asset not found in the transient map input",
            id="inputs come only in the transient map",
        ),
        pytest.param(
            "Org1MSP",
            "CreateAsset",
            "asset_properties",
            {**asset("a", "red", 1, 1), "size": "big"},
            "",
            "failed to unmarshal JSON: json: cannot unmarshal string into Go struct field "
            "assetTransientInput.size of type int",
            id="a wrongly typed field is refused in Go's words",
        ),
        pytest.param(
            "Org1MSP",
            "CreateAsset",
            "asset_properties",
            asset("a", "red", 0, 1),
            "",
            "size field must be a positive integer",
            id="a zero size is refused",
        ),
        pytest.param(
            "Org1MSP",
            "AgreeToTransfer",
            "asset_value",
            {"assetID": "nope", "appraisedValue": 5},
            "",
            "nope does not exist",
            id="one cannot agree to buy a missing asset",
        ),
    ],
)
def test_refusals(
    channel: Channel,
    msp_id: str,
    function: str,
    key: str,
    value: object,
    peer: str,
    message: str,
) -> None:
    result = channel.call(msp_id, function, transient={key: stringify(value)}, peer=peer)
    assert (result.status, result.message) == (500, message)
    assert not result.rwset


def test_a_buyer_agreeing_to_another_value_cannot_take_the_asset(channel: Channel) -> None:
    """Hostile buyer: agrees to a lower value; the owner's transfer compares hashes and stops."""
    channel.submit("Org1MSP", "CreateAsset", "asset_properties", asset("asset1", "red", 5, 100))
    channel.submit(
        "Org2MSP", "AgreeToTransfer", "asset_value", {"assetID": "asset1", "appraisedValue": 1}
    )
    message = channel.refused(
        "Org1MSP", "TransferAsset", "asset_owner", {"assetID": "asset1", "buyerMSP": "Org2MSP"}
    )
    assert message.startswith("failed transfer verification: hash for appraised value for owner ")
    assert (
        channel.refused(
            "Org2MSP", "TransferAsset", "asset_owner", {"assetID": "asset1", "buyerMSP": "Org2MSP"}
        )
        == "failed transfer verification: error: submitting client identity does not own asset"
    )


def test_a_non_member_cannot_read_another_organisations_collection(channel: Channel) -> None:
    channel.submit("Org1MSP", "CreateAsset", "asset_properties", asset("asset1", "red", 5, 100))
    result = channel.call(
        "Org2MSP", "ReadAssetPrivateDetails", "Org1MSPPrivateCollection", "asset1"
    )
    assert result.status == 500
    assert result.message.startswith("failed to read asset details: ")


def test_the_transfer_agreement_key_is_composite(channel: Channel) -> None:
    channel.submit("Org1MSP", "CreateAsset", "asset_properties", asset("asset1", "red", 5, 100))
    channel.submit(
        "Org2MSP", "AgreeToTransfer", "asset_value", {"assetID": "asset1", "appraisedValue": 100}
    )
    key = create_composite_key("transferAgreement", ["asset1"])
    assert (NS, "assetCollection", key) in channel.private["Org1MSP"].data
    channel.submit("Org2MSP", "DeleteTranferAgreement", "agreement_delete", {"assetID": "asset1"})
    assert (NS, "assetCollection", key) not in channel.private["Org1MSP"].data
    assert channel.evaluate("Org1MSP", "ReadTransferAgreement", "asset1") == ""
