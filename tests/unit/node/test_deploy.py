"""Deploying contracts through the lifecycle: approvals by every member, then one commit."""

from __future__ import annotations

import json

import pytest
from fabric_protos.peer.lifecycle import lifecycle_pb2
from tests.networks import DEMO_ALLIANCE, TEST_NETWORK

from medalliance.contracts.package import build_package, package_id
from medalliance.errors import ContractError, PreconditionFailed
from medalliance.ledger.tx import Code
from medalliance.node import deploy
from medalliance.node.config import load_network_config
from medalliance.node.deploy import COMMIT_ATTEMPTS, MVCC_READ_CONFLICT, deploy_contracts


class Session:
    """One admin's lifecycle calls, answering commits with the codes it is given in turn."""

    def __init__(self, log: list[str], commit_codes: list[int]) -> None:
        self._log = log
        self._commit_codes = commit_codes

    def submit(self, channel: str, function: str, arg: bytes) -> str:
        self._log.append(function)
        return f"tx{len(self._log)}"

    def wait(self, channel: str, tx_id: str) -> int:
        if self._log[int(tx_id[2:]) - 1] == "CommitChaincodeDefinition":
            return self._commit_codes.pop(0)
        return 0

    def query(self, channel: str, function: str, arg: str | bytes) -> bytes | None:
        return None  # nothing committed yet


@pytest.mark.parametrize(
    ("codes", "commits"),
    [
        pytest.param([0], 1, id="a commit that lands is submitted once"),
        pytest.param(
            [MVCC_READ_CONFLICT, 0], 2, id="one read at stale approvals is submitted again"
        ),
    ],
)
def test_a_commit_invalidated_by_a_lagging_endorser_is_submitted_again(
    codes: list[int], commits: int
) -> None:
    log: list[str] = []
    session = Session(log, codes)
    changed = deploy_contracts(load_network_config(TEST_NETWORK), lambda _msp: session)
    assert changed == ["mychannel/basic"]
    assert log.count("CommitChaincodeDefinition") == commits
    assert log.count("ApproveChaincodeDefinitionForMyOrg") == 2


@pytest.mark.parametrize(
    "codes",
    [
        pytest.param([MVCC_READ_CONFLICT] * COMMIT_ATTEMPTS, id="conflicts every time"),
        pytest.param([Code.Value("ENDORSEMENT_POLICY_FAILURE")], id="another failure at once"),
    ],
)
def test_a_commit_that_keeps_failing_is_reported(codes: list[int]) -> None:
    log: list[str] = []
    session = Session(log, list(codes))
    with pytest.raises(PreconditionFailed, match="committing basic on mychannel failed"):
        deploy_contracts(load_network_config(TEST_NETWORK), lambda _msp: session)
    assert log.count("CommitChaincodeDefinition") == len(codes)


class ReadinessSession(Session):
    """An admin's session whose peer shows these organisations' approvals."""

    def __init__(self, log: list[str], approved: dict[str, bool]) -> None:
        super().__init__(log, [0])
        self._approved = approved

    def query(self, channel: str, function: str, arg: str | bytes) -> bytes | None:
        if function == "CheckCommitReadiness":
            return json.dumps({"approvals": self._approved}).encode()
        return None


@pytest.mark.parametrize(
    ("approved", "commits"),
    [
        pytest.param({"Org1MSP": True, "Org2MSP": False}, 0, id="one approval of two waits for the other"),
        pytest.param({"Org1MSP": True, "Org2MSP": True}, 1, id="the approval completing a majority commits"),
    ],
)  # fmt: skip
def test_an_organisation_deploying_alone_approves_for_itself_only(
    approved: dict[str, bool], commits: int
) -> None:
    log: list[str] = []
    sessions: list[str] = []

    def session(msp_id: str) -> ReadinessSession:
        sessions.append(msp_id)
        return ReadinessSession(log, approved)

    changed = deploy_contracts(
        load_network_config(TEST_NETWORK), session, organizations=["Org1MSP"]
    )
    assert set(sessions) == {"Org1MSP"}
    assert log.count("ApproveChaincodeDefinitionForMyOrg") == 1
    assert log.count("CommitChaincodeDefinition") == commits
    assert changed == (["mychannel/basic"] if commits else [])


class OrderedSession:
    """Admin sessions of several organisations sharing one log of (event, msp, function, name),
    answering a commit of a contract named in `conflicts` with MVCC_READ_CONFLICT once."""

    def __init__(self, msp_id: str, log: list[tuple[str, ...]], conflicts: set[str]) -> None:
        self._msp_id, self._log, self._conflicts = msp_id, log, conflicts
        self._txs: dict[str, tuple[str, str]] = {}

    def submit(self, channel: str, function: str, arg: bytes) -> str:
        name = _contract_name(function, arg)
        self._log.append(("submit", self._msp_id, function, name))
        tx_id = f"{self._msp_id}-{len(self._log)}"
        self._txs[tx_id] = (function, name)
        return tx_id

    def wait(self, channel: str, tx_id: str) -> int:
        function, name = self._txs.pop(tx_id)
        self._log.append(("wait", self._msp_id, function, name))
        if function == "CommitChaincodeDefinition" and name in self._conflicts:
            self._conflicts.discard(name)
            return MVCC_READ_CONFLICT
        return 0

    def query(self, channel: str, function: str, arg: str) -> bytes | None:
        return None


def _contract_name(function: str, arg: bytes) -> str:
    args = (
        lifecycle_pb2.CommitChaincodeDefinitionArgs()
        if function == "CommitChaincodeDefinition"
        else lifecycle_pb2.ApproveChaincodeDefinitionForMyOrgArgs()
    )
    args.ParseFromString(arg)
    return args.name


def test_a_channels_contracts_are_approved_together_then_committed_together() -> None:
    config = load_network_config(DEMO_ALLIANCE)
    log: list[tuple[str, ...]] = []
    sessions: dict[str, OrderedSession] = {}
    changed = deploy_contracts(
        config,
        lambda msp: sessions.setdefault(msp, OrderedSession(msp, log, {"referral"})),
    )
    (channel,) = config.channels
    names = [c.name for c in channel.contracts]
    assert changed == [f"{channel.name}/{n}" for n in names]
    members = len(config.members(channel))
    kinds = [(event, function) for event, _msp, function, _name in log]
    approve, commit = "ApproveChaincodeDefinitionForMyOrg", "CommitChaincodeDefinition"
    # every approval is in flight before the first is waited for, every commit likewise
    approvals = len(names) * members
    assert kinds[:approvals] == [("submit", approve)] * approvals
    assert kinds[approvals : 2 * approvals] == [("wait", approve)] * approvals
    commits = kinds[2 * approvals :]
    assert commits[: len(names)] == [("submit", commit)] * len(names)
    # only the commit that read stale approvals is submitted again
    assert [e[3] for e in log[2 * approvals + 2 * len(names) :]] == ["referral", "referral"]


class RacingSession(ReadinessSession):
    """An admin's session racing another organisation's deploy: its `refused` call is refused
    (the definition committed meanwhile, as the lifecycle contract says), and from then on its
    peer shows that definition committed when `committed_by_other`."""

    def __init__(self, log: list[str], refused: str, committed_by_other: bool) -> None:
        super().__init__(log, {"Org1MSP": True, "Org2MSP": True})
        self._refused, self._committed_by_other, self._committed = (
            refused,
            committed_by_other,
            False,
        )

    def submit(self, channel: str, function: str, arg: bytes) -> str:
        if function == self._refused:
            self._log.append(function)
            self._committed = self._committed_by_other
            raise ContractError(
                "contract basic is at sequence 1; the next definition must use 2", 409
            )
        return super().submit(channel, function, arg)

    def query(self, channel: str, function: str, arg: str | bytes) -> bytes | None:
        if function == self._refused:
            self._log.append(function)
            self._committed = self._committed_by_other
            raise ContractError(
                "contract basic is at sequence 1; the next definition must use 2", 409
            )
        if function == "QueryChaincodeDefinition" and self._committed:
            spec = load_network_config(TEST_NETWORK).channels[0].contracts[0]
            label = spec.package_label
            definition = {
                "sequence": 1, "version": spec.version, "deregistered": False,
                "package_id": package_id(build_package(label, spec.package), label),
            }  # fmt: skip
            return json.dumps(definition).encode()
        return super().query(channel, function, arg)


@pytest.mark.parametrize(
    "refused",
    [
        pytest.param("ApproveChaincodeDefinitionForMyOrg", id="an approval refused because another organisation committed meanwhile is no error"),
        pytest.param("CommitChaincodeDefinition", id="a commit refused because another organisation committed first is no error"),
        pytest.param("CheckCommitReadiness", id="a readiness check refused because another organisation committed meanwhile is no error"),
    ],
)  # fmt: skip
def test_a_deploy_racing_another_organisations_commit_goes_on(refused: str) -> None:
    log: list[str] = []
    session = RacingSession(log, refused, committed_by_other=True)
    changed = deploy_contracts(
        load_network_config(TEST_NETWORK), lambda _msp: session, organizations=["Org1MSP"]
    )
    assert changed == []  # committed, but not by this run
    assert log[-1] == refused  # nothing submitted after the refusal


def test_a_refusal_while_nobody_committed_the_definition_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deploy, "CATCH_UP_S", 0.0)  # no other organisation's commit to wait for
    log: list[str] = []
    session = RacingSession(log, "CommitChaincodeDefinition", committed_by_other=False)
    with pytest.raises(ContractError, match="next definition must use 2"):
        deploy_contracts(
            load_network_config(TEST_NETWORK), lambda _msp: session, organizations=["Org1MSP"]
        )
    assert log.count("CommitChaincodeDefinition") == 1
