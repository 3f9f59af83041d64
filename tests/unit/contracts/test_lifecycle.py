"""The `_lifecycle` contract: approvals per organisation, commit by majority, deregistration."""

from __future__ import annotations

import json

import pytest
from fabric_protos.peer import policy_pb2
from fabric_protos.peer.lifecycle import lifecycle_pb2
from tests.conftest import Org, make_org
from tests.unit.contracts.fakes import DictState, tx_context

from medalliance.contracts.lifecycle import (
    LIFECYCLE_NAMESPACE,
    ChaincodeDefinition,
    LifecycleContract,
    approved_package,
    committed_definition,
)
from medalliance.contracts.simulation import SimulationResult, simulate
from medalliance.identity.msp import MspManager

ORGS = ("Org1MSP", "Org2MSP", "Org3MSP")
POLICY = policy_pb2.ApplicationPolicy(
    channel_config_policy_reference="/Channel/Application/Endorsement"
).SerializeToString()
PACKAGE = "visit_1:" + "ab" * 32


@pytest.fixture(scope="module")
def org3() -> Org:
    return make_org("Org3MSP")


@pytest.fixture
def orgs(org1: Org, org2: Org, org3: Org) -> dict[str, Org]:
    return {o.msp_id: o for o in (org1, org2, org3)}


@pytest.fixture
def all_msps(org1: Org, org2: Org, org3: Org) -> MspManager:
    return MspManager([org1.msp, org2.msp, org3.msp])


class Channel:
    """Three organisations calling `_lifecycle` on one committed state, one tx per block."""

    def __init__(self, orgs: dict[str, Org], msps: MspManager) -> None:
        self.orgs, self.msps, self.state = orgs, msps, DictState()

    def call(
        self, msp_id: str, *args: bytes | str, admin: bool = True, commit: bool = True
    ) -> SimulationResult:
        tx = tx_context(self.orgs[msp_id], self.msps, admin=admin, channel_orgs=ORGS)
        raw = [a.encode() if isinstance(a, str) else a for a in args]
        result = simulate(LifecycleContract(), LIFECYCLE_NAMESPACE, raw, self.state, tx)
        if commit and result.status == 200:
            self.state.commit(result)
        return result

    def approve(
        self, msp_id: str, sequence: int = 1, package_id: str = PACKAGE, **kw: bool
    ) -> SimulationResult:
        approve = lifecycle_pb2.ApproveChaincodeDefinitionForMyOrgArgs(
            name="visit", sequence=sequence, version="1.0", validation_parameter=POLICY
        )
        approve.source.local_package.package_id = package_id
        return self.call(
            msp_id, "ApproveChaincodeDefinitionForMyOrg", approve.SerializeToString(), **kw
        )

    def commit(self, msp_id: str = "Org1MSP", sequence: int = 1) -> SimulationResult:
        args = lifecycle_pb2.CommitChaincodeDefinitionArgs(
            name="visit", sequence=sequence, version="1.0", validation_parameter=POLICY
        )
        return self.call(msp_id, "CommitChaincodeDefinition", args.SerializeToString())

    def readiness(self, sequence: int = 1) -> dict[str, bool]:
        args = lifecycle_pb2.CheckCommitReadinessArgs(
            name="visit", sequence=sequence, version="1.0", validation_parameter=POLICY
        )
        result = self.call("Org1MSP", "CheckCommitReadiness", args.SerializeToString())
        assert result.status == 200, result.message
        approvals: dict[str, bool] = json.loads(result.payload)["approvals"]
        return approvals


@pytest.fixture
def channel(orgs: dict[str, Org], all_msps: MspManager) -> Channel:
    return Channel(orgs, all_msps)


@pytest.mark.parametrize(
    ("approvers", "committed"),
    [
        pytest.param(["Org1MSP", "Org2MSP", "Org3MSP"], True, id="all approvals commit"),
        pytest.param(["Org1MSP", "Org3MSP"], True, id="two of three is a majority"),
        pytest.param(["Org2MSP"], False, id="one of three is not a majority"),
        pytest.param([], False, id="no approvals cannot commit"),
    ],
)
def test_commit_needs_a_majority_of_channel_orgs(
    channel: Channel, approvers: list[str], committed: bool
) -> None:
    for msp_id in approvers:
        assert channel.approve(msp_id).status == 200
    assert channel.readiness() == {m: m in approvers for m in ORGS}
    result = channel.commit()
    assert (result.status == 200) is committed, result.message
    definition = committed_definition(channel.state, "visit")
    if committed:
        assert definition is not None
        assert (definition.sequence, definition.version, definition.package_id) == (
            1,
            "1.0",
            PACKAGE,
        )
        assert (definition.endorsement_policy, definition.deregistered) == (POLICY, False)
    else:
        assert definition is None
        assert "approvals it needs" in result.message


def test_a_refused_commit_names_who_approved(channel: Channel) -> None:
    channel.approve("Org2MSP")
    message = channel.commit().message
    assert "1 of the 2 approvals" in message
    assert "Org2MSP" in message


def test_approvals_of_different_packages_do_not_add_up(channel: Channel) -> None:
    channel.approve("Org1MSP", package_id="visit_1:" + "cd" * 32)
    channel.approve("Org2MSP")
    assert channel.commit().status == 409
    channel.approve("Org3MSP")  # now Org2 and Org3 agree on PACKAGE
    assert channel.commit().status == 200
    definition = committed_definition(channel.state, "visit")
    assert definition is not None
    assert definition.package_id == PACKAGE


@pytest.mark.parametrize(
    ("sequence", "status"),
    [
        pytest.param(1, 200, id="the first definition has sequence 1"),
        pytest.param(2, 409, id="a sequence may not skip ahead"),
        pytest.param(0, 409, id="a sequence may not go back"),
    ],
)
def test_approvals_need_the_next_sequence(channel: Channel, sequence: int, status: int) -> None:
    assert channel.approve("Org1MSP", sequence=sequence).status == status


def test_an_upgrade_uses_the_next_sequence(channel: Channel) -> None:
    for msp_id in ORGS[:2]:
        channel.approve(msp_id)
    assert channel.commit().status == 200
    assert channel.approve("Org1MSP", sequence=1).status == 409
    for msp_id in ORGS[:2]:
        assert channel.approve(msp_id, sequence=2).status == 200
    assert channel.commit(sequence=2).status == 200
    definition = committed_definition(channel.state, "visit")
    assert definition is not None
    assert definition.sequence == 2


def test_only_an_admin_approves_for_its_organisation(channel: Channel) -> None:
    result = channel.approve("Org1MSP", admin=False)
    assert (result.status, result.message) == (403, "only an admin of Org1MSP may approve for it")


def test_approvals_of_different_orgs_write_different_keys(channel: Channel) -> None:
    from fabric_protos.ledger.rwset import rwset_pb2
    from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2

    def written(result: SimulationResult) -> set[str]:
        (ns,) = rwset_pb2.TxReadWriteSet.FromString(result.rwset).ns_rwset
        return {w.key for w in kv_rwset_pb2.KVRWSet.FromString(ns.rwset).writes}

    # Concurrent approvals must not conflict at commit (no shared list of approvers).
    first = written(channel.approve("Org1MSP", commit=False))
    second = written(channel.approve("Org2MSP", commit=False))
    assert first
    assert second
    assert not first & second


def test_a_malformed_argument_is_refused(channel: Channel) -> None:
    result = channel.call("Org1MSP", "ApproveChaincodeDefinitionForMyOrg", b"\xff\xff")
    assert result.status == 400


def test_deregistration_needs_a_majority_and_the_next_sequence(channel: Channel) -> None:
    for msp_id in ORGS[:2]:
        channel.approve(msp_id)
    assert channel.commit().status == 200
    assert channel.call("Org1MSP", "ApproveDeregistrationForMyOrg", "visit", "3").status == 409
    assert channel.call("Org1MSP", "ApproveDeregistrationForMyOrg", "visit", "2").status == 200
    refused = channel.call("Org1MSP", "CommitDeregistration", "visit", "2")
    assert refused.status == 409
    definition = committed_definition(channel.state, "visit")
    assert definition is not None
    assert not definition.deregistered
    assert channel.call("Org3MSP", "ApproveDeregistrationForMyOrg", "visit", "2").status == 200
    assert channel.call("Org1MSP", "CommitDeregistration", "visit", "2").status == 200
    definition = committed_definition(channel.state, "visit")
    assert definition is not None
    assert (definition.deregistered, definition.sequence) == (True, 2)
    again = channel.call("Org1MSP", "ApproveDeregistrationForMyOrg", "visit", "3")
    assert (again.status, again.message) == (409, "contract visit is already deregistered")


def test_nothing_to_deregister_before_a_commit(channel: Channel) -> None:
    result = channel.call("Org1MSP", "ApproveDeregistrationForMyOrg", "visit", "1")
    assert result.status == 404


def test_queries_report_committed_definitions(channel: Channel) -> None:
    for msp_id in ORGS[:2]:
        channel.approve(msp_id)
    channel.commit()
    one = channel.call("Org2MSP", "QueryChaincodeDefinition", "visit", admin=False)
    assert json.loads(one.payload)["sequence"] == 1
    listed = channel.call("Org2MSP", "QueryChaincodeDefinitions", admin=False)
    assert [d["name"] for d in json.loads(listed.payload)] == ["visit"]
    missing = channel.call("Org2MSP", "QueryChaincodeDefinition", "nope", admin=False)
    assert missing.status == 404


# --- chaincode as a service: the package id is each organisation's own ----------------------


def external_args(kind: type, package_id: str = "", plugin: str = "ccaas") -> bytes:
    args = kind(
        name="visit",
        sequence=1,
        version="1.0",
        validation_parameter=POLICY,
        endorsement_plugin=plugin,
    )
    if package_id:
        args.source.local_package.package_id = package_id
    return bytes(args.SerializeToString())


def test_external_approvals_with_each_orgs_own_package_add_up(channel: Channel) -> None:
    own = {msp: f"basic_{i}:" + f"{i}" * 64 for i, msp in enumerate(ORGS[:2])}
    for msp, package_id in own.items():
        approve = external_args(lifecycle_pb2.ApproveChaincodeDefinitionForMyOrgArgs, package_id)
        result = channel.call(msp, "ApproveChaincodeDefinitionForMyOrg", approve)
        assert result.status == 200, result.message
    commit = external_args(lifecycle_pb2.CommitChaincodeDefinitionArgs)
    result = channel.call("Org1MSP", "CommitChaincodeDefinition", commit)
    assert result.status == 200, result.message
    definition = committed_definition(channel.state, "visit")
    assert definition is not None
    assert (definition.external, definition.package_id) == (True, "")
    for msp, package_id in own.items():
        assert approved_package(channel.state, definition, msp) == package_id
    assert approved_package(channel.state, definition, "Org3MSP") is None


def test_an_external_approval_does_not_count_for_a_python_definition(channel: Channel) -> None:
    """Python approvals still agree on one package: external approvals of another digest do
    not add to them, so a Python contract's code stays what a majority approved."""
    channel.approve("Org1MSP")
    for msp in ("Org2MSP", "Org3MSP"):
        approve = external_args(lifecycle_pb2.ApproveChaincodeDefinitionForMyOrgArgs, PACKAGE)
        assert channel.call(msp, "ApproveChaincodeDefinitionForMyOrg", approve).status == 200
    assert channel.readiness() == {"Org1MSP": True, "Org2MSP": False, "Org3MSP": False}
    before = dict(channel.state.data)
    result = channel.commit()
    assert (result.status, "1 of the 2 approvals" in result.message) == (409, True)
    assert channel.state.data == before
    assert committed_definition(channel.state, "visit") is None


def test_a_python_definitions_json_is_unchanged_by_the_external_flag() -> None:
    definition = ChaincodeDefinition("visit", 1, "1.0", PACKAGE, POLICY)
    assert b"external" not in definition.to_json()
    assert ChaincodeDefinition.from_json(definition.to_json()) == definition
