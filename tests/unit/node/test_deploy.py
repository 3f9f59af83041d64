"""Deploying contracts through the lifecycle: approvals by every member, then one commit."""

from __future__ import annotations

import json

import pytest
from tests.networks import TEST_NETWORK

from medalliance.errors import PreconditionFailed
from medalliance.ledger.tx import Code
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
