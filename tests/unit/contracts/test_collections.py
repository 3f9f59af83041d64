"""Collections configs: Fabric's collections_config.json, its checks, and the lifecycle's digest."""

from __future__ import annotations

import json

import pytest
from fabric_protos.peer import collection_pb2
from fabric_protos.peer.lifecycle import lifecycle_pb2
from tests.conftest import Org, make_org
from tests.unit.contracts.fakes import DictState, tx_context

from medalliance.contracts.collections import (
    CollectionConfigError,
    check_collections,
    load_collections_config,
    parse_collections,
)
from medalliance.contracts.lifecycle import (
    LIFECYCLE_NAMESPACE,
    LifecycleContract,
    application_policy,
    approve_args,
    commit_args,
    committed_collections,
    committed_definition,
)
from medalliance.contracts.simulation import SimulationResult, simulate
from medalliance.identity.msp import MspManager

# asset-transfer-private-data's collections_config.json
SAMPLE = [
    {
        "name": "assetCollection",
        "policy": "OR('Org1MSP.member', 'Org2MSP.member')",
        "requiredPeerCount": 1,
        "maxPeerCount": 1,
        "blockToLive": 1000000,
        "memberOnlyRead": True,
        "memberOnlyWrite": True,
    },
    {
        "name": "Org1MSPPrivateCollection",
        "policy": "OR('Org1MSP.member')",
        "requiredPeerCount": 0,
        "maxPeerCount": 1,
        "blockToLive": 3,
        "memberOnlyRead": True,
        "memberOnlyWrite": False,
        "endorsementPolicy": {"signaturePolicy": "OR('Org1MSP.member')"},
    },
]


def test_fabrics_sample_config_loads_as_a_collection_config_package() -> None:
    data = load_collections_config(json.dumps(SAMPLE), ["Org1MSP", "Org2MSP"])
    package = collection_pb2.CollectionConfigPackage.FromString(data)
    first = package.config[0].static_collection_config
    assert (first.name, first.required_peer_count, first.maximum_peer_count) == (
        "assetCollection",
        1,
        1,
    )
    collections = parse_collections(data)
    asset = collections["assetCollection"]
    assert asset.members == {"Org1MSP", "Org2MSP"}
    assert (asset.block_to_live, asset.member_only_read, asset.member_only_write) == (
        1000000,
        True,
        True,
    )
    assert asset.endorsement_policy is None
    own = collections["Org1MSPPrivateCollection"]
    assert own.endorsement_policy is not None
    assert own.is_member("Org1MSP")
    assert not own.is_member("Org2MSP")


def _with(**changes: object) -> str:
    entry = {**SAMPLE[0], **changes}
    return json.dumps([{k: v for k, v in entry.items() if v is not None}])


@pytest.mark.parametrize(
    ("config", "message"),
    [
        pytest.param("{", "not JSON", id="not-json"),
        pytest.param("[]", "non-empty JSON array", id="empty"),
        pytest.param(json.dumps([SAMPLE[0], SAMPLE[0]]), "defined twice", id="duplicate"),
        pytest.param(_with(name="a b"), "may only contain", id="bad-name"),
        pytest.param(_with(policy=None), "policy must be", id="no-policy"),
        pytest.param(_with(policy="OR('Org1MSP.member'"), "assetCollection", id="bad-policy"),
        pytest.param(_with(requiredPeerCount=2), r"maxPeerCount \(1\) cannot be less", id="counts"),
        pytest.param(_with(requiredPeerCount=-1), "less than zero", id="negative"),
        pytest.param(_with(blockToLive="10"), "must be an integer", id="ttl-type"),
        pytest.param(_with(memberOnlyRead="yes"), "true or false", id="bool-type"),
        pytest.param(_with(maxPeer=1), "unknown field", id="unknown-field"),
        pytest.param(
            _with(
                endorsementPolicy={
                    "signaturePolicy": "OR('Org1MSP.member')",
                    "channelConfigPolicy": "E",
                }
            ),
            "exactly one",
            id="two-endorsement-policies",
        ),
        pytest.param(
            _with(policy="OR('Org9MSP.member')"),
            "not an organisation of the channel",
            id="outsider",
        ),
    ],
)
def test_configs_fabric_refuses_are_refused_with_a_clear_error(config: str, message: str) -> None:
    with pytest.raises(CollectionConfigError, match=message):
        load_collections_config(config, ["Org1MSP", "Org2MSP"])


def test_an_update_keeps_every_collection_and_its_block_to_live() -> None:
    old = load_collections_config(json.dumps(SAMPLE))
    with pytest.raises(CollectionConfigError, match="missing"):
        check_collections(load_collections_config(json.dumps(SAMPLE[:1])), previous=old)
    changed = [SAMPLE[0], {**SAMPLE[1], "blockToLive": 4}]
    with pytest.raises(CollectionConfigError, match="blockToLive cannot change"):
        check_collections(load_collections_config(json.dumps(changed)), previous=old)
    more = [*SAMPLE, {**SAMPLE[1], "name": "extra"}]
    assert set(check_collections(load_collections_config(json.dumps(more)), previous=old)) == {
        "assetCollection",
        "Org1MSPPrivateCollection",
        "extra",
    }


# --- in the chaincode definition -----------------------------------------------------------------

ORGS = ("Org1MSP", "Org2MSP", "Org3MSP")
PACKAGE = "assets_1:" + "cd" * 32


class Lifecycle:
    def __init__(self, orgs: dict[str, Org], msps: MspManager) -> None:
        self.orgs, self.msps, self.state = orgs, msps, DictState()

    def call(self, msp_id: str, function: str, arg: bytes) -> SimulationResult:
        tx = tx_context(self.orgs[msp_id], self.msps, admin=True, channel_orgs=ORGS)
        result = simulate(
            LifecycleContract(), LIFECYCLE_NAMESPACE, [function.encode(), arg], self.state, tx
        )
        if result.status == 200:
            self.state.commit(result)
        return result

    def approve(self, msp_id: str, collections: bytes, sequence: int = 1) -> SimulationResult:
        arg = approve_args(
            name="assets", version="1.0", sequence=sequence, package_id=PACKAGE,
            policy=application_policy("OR('Org1MSP.peer')"), external=False,
            collections=collections,
        )  # fmt: skip
        return self.call(msp_id, "ApproveChaincodeDefinitionForMyOrg", arg)

    def commit(self, collections: bytes, sequence: int = 1) -> SimulationResult:
        arg = commit_args(
            name="assets", version="1.0", sequence=sequence, external=False,
            policy=application_policy("OR('Org1MSP.peer')"), collections=collections,
        )  # fmt: skip
        return self.call("Org1MSP", "CommitChaincodeDefinition", arg)


@pytest.fixture
def lifecycle(org1: Org, org2: Org) -> Lifecycle:
    org3 = make_org("Org3MSP")
    return Lifecycle(
        {o.msp_id: o for o in (org1, org2, org3)}, MspManager([org1.msp, org2.msp, org3.msp])
    )


def test_organisations_must_agree_on_the_collections(lifecycle: Lifecycle) -> None:
    config = load_collections_config(json.dumps(SAMPLE))
    other = load_collections_config(json.dumps(SAMPLE[:1]))
    assert lifecycle.approve("Org1MSP", config).status == 200
    assert lifecycle.approve("Org2MSP", other).status == 200  # another definition: no majority
    refused = lifecycle.commit(config)
    assert refused.status == 409, refused.message
    assert lifecycle.approve("Org3MSP", config).status == 200
    assert lifecycle.commit(config).status == 200
    definition = committed_definition(lifecycle.state, "assets")
    assert definition is not None
    assert definition.collections == config
    assert set(committed_collections(lifecycle.state, "assets")) == {
        "assetCollection",
        "Org1MSPPrivateCollection",
    }
    query = lifecycle.call("Org1MSP", "QueryChaincodeDefinition", b"assets")
    assert json.loads(query.payload)["collections"] == [
        "Org1MSPPrivateCollection",
        "assetCollection",
    ]


def test_an_upgrade_cannot_drop_a_collection(lifecycle: Lifecycle) -> None:
    config = load_collections_config(json.dumps(SAMPLE))
    for msp in ORGS[:2]:
        lifecycle.approve(msp, config)
    assert lifecycle.commit(config).status == 200
    refused = lifecycle.approve("Org1MSP", load_collections_config(json.dumps(SAMPLE[:1])), 2)
    assert refused.status == 400
    assert "missing" in refused.message


def test_a_member_policy_naming_an_outsider_is_refused_by_the_lifecycle(
    lifecycle: Lifecycle,
) -> None:
    outsider = load_collections_config(_with(policy="OR('Org9MSP.member')"))
    refused = lifecycle.approve("Org1MSP", outsider)
    assert refused.status == 400
    assert "Org9MSP" in refused.message


def test_a_definition_without_collections_is_unchanged(lifecycle: Lifecycle) -> None:
    arg = lifecycle_pb2.ApproveChaincodeDefinitionForMyOrgArgs(name="assets")
    assert not arg.HasField("collections")
    lifecycle.approve("Org1MSP", b"")
    lifecycle.approve("Org2MSP", b"")
    assert lifecycle.commit(b"").status == 200
    definition = committed_definition(lifecycle.state, "assets")
    assert definition is not None
    assert b"collections" not in definition.to_json()
    assert committed_collections(lifecycle.state, "assets") == {}
