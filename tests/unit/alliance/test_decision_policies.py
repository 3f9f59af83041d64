"""Who must endorse a decision's key (`alliance/common.py:protect`): the decider's proxy and one
other endorsing organisation, and never a secondary hospital (paper §3)."""

from __future__ import annotations

import json

import pytest
from fabric_protos.common import policies_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.msp import msp_principal_pb2
from tests.unit.alliance.harness import ORGS, Alliance
from tests.unit.contracts.fakes import DictState

from medalliance.alliance.common import decision_policy
from medalliance.alliance.records import RecordsContract
from medalliance.alliance.report import ReportContract, application_key
from medalliance.alliance.visit import VisitContract
from medalliance.contracts.api import ClientIdentity, Context
from medalliance.contracts.stub import Stub
from medalliance.identity.policy import format_policy, parse_policy
from medalliance.ledger.state import VALIDATION_PARAMETER

TA, TB = "'TertiaryAMSP.peer'", "'TertiaryBMSP.peer'"
DISTRICT = "'DistrictHCMSP.peer'"


def context() -> Context:
    stub = Stub(DictState(), "report", tx_id="t", channel_id="alliance", timestamp_ms=0,
                transient={})  # fmt: skip
    client = ClientIdentity("TertiaryAMSP", "doctor", "client", False, "00")
    return Context(stub, client, "alliance", "t", 0, tuple(ORGS), {}, ORGS)


@pytest.mark.parametrize(
    ("deciders", "expected"),
    [
        pytest.param(["TertiaryAMSP"], f"AND({TA}, OutOf(1, {TB}))", id="a tertiary hospital endorses its own decision, with another"),
        pytest.param(["SecondaryAMSP"], f"AND({DISTRICT}, OutOf(1, {TA}, {TB}))", id="a secondary hospital's regulator endorses for it"),
        pytest.param(["DistrictHCMSP"], f"AND({DISTRICT}, OutOf(1, {TA}, {TB}))", id="a regulator endorses its own review"),
        pytest.param(["SecondaryCMSP"], f"AND('OtherHCMSP.peer', OutOf(1, {TA}, {TB}))", id="the hospital's own regulator, not another district"),
        pytest.param(["SecondaryAMSP", "TertiaryAMSP"], f"AND({DISTRICT}, {TA})", id="two parties: both proxies"),
        pytest.param(["SecondaryAMSP", "SecondaryBMSP"], f"AND({DISTRICT}, OutOf(1, {TA}, {TB}))", id="two parties with one proxy: and another"),
    ],
)  # fmt: skip
def test_the_decider_and_one_other_organisation_endorse(deciders: list[str], expected: str) -> None:
    text = decision_policy(context(), *deciders)
    assert format_policy(parse_policy(text)) == format_policy(parse_policy(expected))


def test_no_decision_ever_needs_a_secondary_hospital() -> None:
    ctx = context()
    for msp_id in ORGS:
        envelope = parse_policy(decision_policy(ctx, msp_id))
        named = {msp_principal_pb2.MSPRole.FromString(p.principal).msp_identifier
                 for p in envelope.identities}  # fmt: skip
        assert all(ORGS[n].type != "secondary" for n in named), msp_id


def test_an_application_is_protected_for_its_regulator_when_it_is_created() -> None:
    alliance = Alliance(
        {"visit": VisitContract(), "report": ReportContract(), "records": RecordsContract()}
    )
    a = "SecondaryAMSP"
    alliance.ok(a, "doctor", "visit", "RegisterVisit", "V-1", "9f86d081884c7d65", a)
    alliance.ok(a, "doctor", "records", "RegisterRecord", "R-1", "9f86d081884c7d65", "ab" * 32,
                "[]", json.dumps(["TertiaryAMSP"]))  # fmt: skip
    result = alliance.call(a, "doctor", "report", "SubmitApplication", "APP-1", "V-1",
                           "TertiaryAMSP", "R-1", commit=False)  # fmt: skip
    assert result.status == 200, result.message
    txrw = rwset_pb2.TxReadWriteSet.FromString(result.rwset)
    report = next(ns for ns in txrw.ns_rwset if ns.namespace == "report")
    writes = kv_rwset_pb2.KVRWSet.FromString(report.rwset).metadata_writes
    assert [w.key for w in writes] == [application_key("APP-1")]
    (entry,) = writes[0].entries
    assert entry.name == VALIDATION_PARAMETER
    envelope = policies_pb2.SignaturePolicyEnvelope.FromString(entry.value)
    assert format_policy(envelope) == format_policy(
        parse_policy(f"AND({DISTRICT}, OutOf(1, {TA}, {TB}))")
    )
