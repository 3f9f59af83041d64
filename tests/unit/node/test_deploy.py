"""Deploying contracts through the lifecycle: approvals by every member, then one commit."""

from __future__ import annotations

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
