"""Attack: a member that owns its peer's keys signs a read-write set of its own making.

Issue 11 item 1, played on the demo alliance as processes. A tertiary hospital (an endorsing
organisation) writes its district commission's decision itself: the application set to APPROVED,
a referral to COMPLETED, or the key's endorsement policy replaced — or, with the other tertiary
hospital, creates an application APPROVED at birth — and endorses the result with
its own peer's key (taken from the network folder, as a hostile member can). The transaction
reaches the ordering service through the hospital's own gateway and every peer validates it:
each forgery must be INVALID (ENDORSEMENT_POLICY_FAILURE) and change nothing (the district's
recognition rules included: no hospital raises its own quality level), a referral that
relies on it must be refused, the honest workflow must still commit, and `ledger verify` must
find every ledger intact (re-validation agrees with the recorded codes).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import transaction_pb2

from medalliance.alliance.referral import referral_key
from medalliance.alliance.report import application_key
from medalliance.app.session import connect_as, own_peer, user_signer
from medalliance.contracts import create_composite_key
from medalliance.contracts.key_policy import key_policy
from medalliance.identity.cryptogen import load_signer
from medalliance.identity.signing import Signer
from medalliance.ledger.state import VALIDATION_PARAMETER
from medalliance.ledger.tx import (
    new_proposal_response,
    new_signed_proposal,
    new_transaction_payload,
    parse_envelope,
    parse_signed_proposal,
    sign_envelope,
)
from medalliance.node.bootstrap import NetworkLayout
from medalliance.sdk import GatewayError
from medalliance.sdk.messages import signed_commit_status_request
from tests.networks import (
    DEMO_ALLIANCE,
    cli_json,
    running,
    submit_everywhere,
    wait_until,
    with_free_ports,
)

CHANNEL = "alliance"
TA, TB, SA, DISTRICT = "TertiaryAMSP", "TertiaryBMSP", "SecondaryAMSP", "DistrictHCMSP"
POLICY_FAILURE = transaction_pb2.TxValidationCode.Value("ENDORSEMENT_POLICY_FAILURE")
VALID = transaction_pb2.TxValidationCode.Value("VALID")


@dataclass(frozen=True)
class Scenario:
    """The demo's workflow has run; `attacked` is a new SUBMITTED application of SecondaryA's
    patient to TertiaryA, awaiting the district commission's review."""

    directory: Path
    layout: NetworkLayout
    run: str  # the demo's id suffix
    attacked: str

    @property
    def visit(self) -> str:
        return f"V-{self.run}"

    @property
    def summary(self) -> str:
        return f"R-{self.run}-1"  # shared with TertiaryA and the district commission


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    base = tmp_path_factory.mktemp("forged")
    with running(with_free_ports(DEMO_ALLIANCE, base / "network.yaml"), base) as directory:
        result = cli_json("demo", "--network", str(directory))
        assert result["ok"], [s for s in result["steps"] if not s["ok"]]
        run = next(s for s in result["steps"] if "registers visit V-" in s["title"])
        run_id = run["title"].split("visit V-")[1].split()[0]
        layout = NetworkLayout.load(directory)
        scenario = Scenario(directory, layout, run_id, f"APP-{run_id}-3")
        submit(layout, SA, "report", "SubmitApplication", scenario.attacked, scenario.visit,
               TA, scenario.summary)  # fmt: skip
        yield scenario


# --- the attacker's tools: its own keys, its own disk, its own gateway ------------------------


def peer_signer(layout: NetworkLayout, msp_id: str) -> Signer:
    """The organisation's peer signing key, read from the network folder as its owner can."""
    return load_signer(layout.peer_dir(msp_id, "peer0") / "msp", msp_id)


def committed(
    layout: NetworkLayout, msp_id: str, ns: str, key: str
) -> tuple[bytes, dict[str, bytes]]:
    """A key's value and metadata as the organisation's peer holds them (read-only)."""
    host = f"peer0.{layout.config.organization(msp_id).domain}"
    path = layout.directory / "nodes" / host / "ledgers" / CHANNEL / "state.db"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT value FROM state WHERE ns = ? AND key = ?", (ns, key)).fetchone()
        meta = db.execute(
            "SELECT name, value FROM metadata WHERE ns = ? AND key = ?", (ns, key)
        ).fetchall()
    finally:
        db.close()
    return (bytes(row[0]) if row else b""), {str(n): bytes(v) for n, v in meta}


def forge(
    layout: NetworkLayout,
    attacker: str,
    endorsers: Sequence[str],
    *,
    contract: str,
    args: Sequence[str],
    writes: Mapping[str, bytes] = {},
    metadata: Mapping[str, bytes] = {},
) -> bytes:
    """A transaction whose read-write set (blind writes to `contract`'s namespace) the attacker
    made up, endorsed by the peers of `endorsers` with their own keys, signed by its user."""
    client = user_signer(layout, attacker, "User1")
    signed, _ = new_signed_proposal(
        client,
        channel_id=CHANNEL,
        chaincode=contract,
        args=[a.encode() for a in args],
        nonce=os.urandom(24),
        timestamp_ms=int(time.time() * 1000),
    )
    proposal = parse_signed_proposal(signed)
    kv = kv_rwset_pb2.KVRWSet()
    for key, value in writes.items():
        kv.writes.add(key=key, value=value)
    for key, policy in metadata.items():
        kv.metadata_writes.add(key=key).entries.add(name=VALIDATION_PARAMETER, value=policy)
    rwset = rwset_pb2.TxReadWriteSet(
        data_model=rwset_pb2.TxReadWriteSet.DataModel.Value("KV"),
        ns_rwset=[rwset_pb2.NsReadWriteSet(namespace=contract, rwset=kv.SerializeToString())],
    ).SerializeToString()
    responses = [
        new_proposal_response(
            proposal,
            peer_signer(layout, org),
            chaincode_version="1.0",
            status=200,
            message="",
            payload=b"",
            rwset=rwset,
            event=None,
        )
        for org in endorsers
    ]
    return sign_envelope(new_transaction_payload(proposal, responses), client)


def submit_envelope(layout: NetworkLayout, org: str, envelope: bytes) -> tuple[str, int]:
    """Submit through the organisation's own gateway; (tx id, validation code on its peer)."""
    tx_id = parse_envelope(envelope).tx_id
    endpoint, tls_ca, server_name = own_peer(layout, org)
    credentials = grpc.ssl_channel_credentials(root_certificates=tls_ca)
    options = [("grpc.ssl_target_name_override", server_name)]
    with grpc.secure_channel(endpoint, credentials, options=options) as channel:
        gateway = gateway_pb2_grpc.GatewayStub(channel)
        gateway.Submit(
            gateway_pb2.SubmitRequest(
                transaction_id=tx_id,
                channel_id=CHANNEL,
                prepared_transaction=common_pb2.Envelope.FromString(envelope),
            ),
            timeout=30,
        )
        status = gateway.CommitStatus(
            signed_commit_status_request(
                user_signer(layout, org, "User1"), transaction_id=tx_id, channel_id=CHANNEL
            ),
            timeout=60,
        )
    return tx_id, int(status.result)


def user_of(layout: NetworkLayout, org: str) -> str:
    return "Reviewer1" if layout.config.organization(org).type == "regulator" else "User1"


def codes_at(layout: NetworkLayout, orgs: Sequence[str], tx_id: str) -> dict[str, int]:
    """The validation code each organisation's peer recorded (waiting until it committed)."""
    codes = {}
    for org in orgs:
        with connect_as(layout, org, user_of(layout, org)) as gateway:
            codes[org] = int(gateway.get_network(CHANNEL).get_commit_status(tx_id).code)
    return codes


def agreed(
    layout: NetworkLayout, orgs: Sequence[str], ns: str, key: str
) -> dict[str, tuple[bytes, dict[str, bytes]]]:
    """The key as each organisation's peer holds it, once all hold the same existing value
    (peers commit a block at slightly different times); fails after a deadline."""
    held: dict[str, tuple[bytes, dict[str, bytes]]] = {}

    def all_agree() -> bool:
        held.update({org: committed(layout, org, ns, key) for org in orgs})
        return len(set(map(repr, held.values()))) == 1 and bool(held[orgs[0]][0])

    wait_until(all_agree, f"every peer holds the same {ns} {key!r}", timeout_s=30)
    return held


def submit(layout: NetworkLayout, org: str, contract: str, function: str, *args: str) -> bytes:
    """An honest transaction through the organisation's gateway (doctor or reviewer), once
    every peer has committed it (the next step is often another organisation's)."""
    with connect_as(layout, org, user_of(layout, org)) as gateway:
        target = gateway.get_network(CHANNEL).get_contract(contract)
        return submit_everywhere(layout, target, function, *args)


def application(scenario: Scenario, application_id: str) -> dict[str, object]:
    with connect_as(scenario.layout, DISTRICT, "Auditor1") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract("report")
        found: dict[str, object] = json.loads(
            contract.evaluate_transaction("GetApplication", application_id)
        )
    return found


# --- the attacks ---------------------------------------------------------------------------------


def approved(scenario: Scenario, application_id: str) -> bytes:
    value, _ = committed(scenario.layout, TA, "report", application_key(application_id))
    forged = json.loads(value)
    forged.update(status="APPROVED", reasonCode="", noteRef="", reviewedAt=forged["submittedAt"])
    return json.dumps(forged, sort_keys=True, separators=(",", ":")).encode()


def test_one_tertiary_hospital_cannot_approve_its_commissions_application(
    scenario: Scenario,
) -> None:
    layout, key = scenario.layout, application_key(scenario.attacked)
    before = agreed(layout, (TA, DISTRICT, SA), "report", key)
    envelope = forge(layout, TA, [TA], contract="report",
                     args=["ReviewApplication", scenario.attacked, "APPROVED", "", ""],
                     writes={key: approved(scenario, scenario.attacked)})  # fmt: skip

    tx_id, code = submit_envelope(layout, TA, envelope)

    assert code == POLICY_FAILURE
    assert set(codes_at(layout, list(before), tx_id).values()) == {POLICY_FAILURE}
    assert {org: committed(layout, org, "report", key) for org in before} == before
    assert application(scenario, scenario.attacked)["status"] == "SUBMITTED"
    # The referral that would rely on the forged approval is refused by the contract.
    with pytest.raises(GatewayError) as refused:
        submit(layout, SA, "referral", "Refer", f"REF-{scenario.run}-F", scenario.attacked,
               scenario.visit, SA, TA, "UP", scenario.summary)  # fmt: skip
    assert f"application {scenario.attacked} is SUBMITTED" in str(refused.value)


def test_both_tertiary_hospitals_colluding_cannot_approve_it(scenario: Scenario) -> None:
    layout, key = scenario.layout, application_key(scenario.attacked)
    before = agreed(layout, (TA, TB, DISTRICT), "report", key)
    envelope = forge(layout, TA, [TA, TB], contract="report",
                     args=["ReviewApplication", scenario.attacked, "APPROVED", "", ""],
                     writes={key: approved(scenario, scenario.attacked)})  # fmt: skip

    _, code = submit_envelope(layout, TA, envelope)

    # Two organisations satisfy the contract's policy; the key's policy needs the commission.
    assert code == POLICY_FAILURE
    assert {org: committed(layout, org, "report", key) for org in before} == before
    assert application(scenario, scenario.attacked)["status"] == "SUBMITTED"


def test_one_organisation_cannot_replace_a_keys_endorsement_policy(scenario: Scenario) -> None:
    layout, key = scenario.layout, application_key(scenario.attacked)
    before = agreed(layout, (TA, DISTRICT), "report", key)
    assert VALIDATION_PARAMETER in before[TA][1]  # the decision is protected
    envelope = forge(layout, TA, [TA], contract="report",
                     args=["ReviewApplication", scenario.attacked, "APPROVED", "", ""],
                     metadata={key: key_policy(f"OutOf(1, '{TA}.peer')")})  # fmt: skip

    tx_id, code = submit_envelope(layout, TA, envelope)

    assert code == POLICY_FAILURE
    assert set(codes_at(layout, list(before), tx_id).values()) == {POLICY_FAILURE}
    assert {org: committed(layout, org, "report", key) for org in before} == before


def test_the_honest_workflow_commits_and_a_forged_completion_does_not(
    scenario: Scenario,
) -> None:
    layout, run = scenario.layout, scenario.run
    honest, referral = f"APP-{run}-4", f"REF-{run}-4"
    submit(layout, SA, "report", "SubmitApplication", honest, scenario.visit, TA,
           scenario.summary)  # fmt: skip
    submit(layout, DISTRICT, "report", "ReviewApplication", honest, "APPROVED", "", "")
    submit(layout, SA, "referral", "Refer", referral, honest, scenario.visit, SA, TA, "UP",
           scenario.summary)  # fmt: skip
    key = referral_key(referral)
    before = agreed(layout, (TA, TB, DISTRICT), "referral", key)
    forged = json.loads(before[TA][0])
    forged.update(status="COMPLETED", feedbackRef=scenario.summary)
    envelope = forge(layout, TA, [TA], contract="referral",
                     args=["CompleteReferral", referral, scenario.summary],
                     writes={key: json.dumps(forged, sort_keys=True).encode()})  # fmt: skip

    tx_id, code = submit_envelope(layout, TA, envelope)

    assert code == POLICY_FAILURE
    assert set(codes_at(layout, list(before), tx_id).values()) == {POLICY_FAILURE}
    assert {org: committed(layout, org, "referral", key) for org in before} == before
    # The target's honest acceptance commits (its peer, another tertiary's, and the key policy).
    accepted = json.loads(submit(layout, TA, "referral", "AcceptReferral", referral))
    assert accepted["status"] == "ACCEPTED"
    used = agreed(layout, (TA, TB, DISTRICT), "report", application_key(honest))
    assert json.loads(used[DISTRICT][0])["status"] == "USED"


def test_tertiary_hospitals_cannot_raise_their_own_quality_level(scenario: Scenario) -> None:
    """Issue 19: the district grades TertiaryB's laboratory C for haemoglobin; TertiaryB, with
    TertiaryA colluding (two endorsing organisations: the contract's policy), rewrites the
    published rules to grade itself A. The rules key's policy needs the district's peer."""
    layout, hb = scenario.layout, "718-7"
    rules = {"catalogue": {hb: {"validityDays": 30, "minLevel": "B"}}, "levels": {TB: {hb: "C"}}}
    submit(layout, DISTRICT, "resource", "SetRecognitionRules", json.dumps(rules))
    key = create_composite_key("recogrules", [DISTRICT])
    before = agreed(layout, (TA, TB, DISTRICT), "resource", key)
    raised = json.loads(before[TB][0])
    raised["levels"][TB][hb] = "A"
    envelope = forge(layout, TB, [TB, TA], contract="resource",
                     args=["SetRecognitionRules", json.dumps(raised)],
                     writes={key: json.dumps(raised, sort_keys=True).encode()})  # fmt: skip

    tx_id, code = submit_envelope(layout, TB, envelope)

    assert code == POLICY_FAILURE
    assert set(codes_at(layout, list(before), tx_id).values()) == {POLICY_FAILURE}
    assert {org: committed(layout, org, "resource", key) for org in before} == before
    with connect_as(layout, TB, "User1") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract("resource")
        in_force = json.loads(contract.evaluate_transaction("RecognitionRules", DISTRICT))
    assert in_force["levels"][TB][hb] == "C"


def test_two_colluding_hospitals_cannot_create_an_application_already_approved(
    scenario: Scenario,
) -> None:
    """TertiaryA and TertiaryB write SecondaryA a new application, APPROVED at birth and under a
    key policy of their own, so that a referral could use it with no commission's review. A new
    key has no key-level policy yet: the contract's policy decides, and it needs a commission."""
    layout, run = scenario.layout, scenario.run
    forged_id, key = f"APP-{run}-9", application_key(f"APP-{run}-9")
    birth = json.loads(approved(scenario, scenario.attacked))
    birth.update(applicationId=forged_id)
    envelope = forge(layout, TA, [TA, TB], contract="report",
                     args=["SubmitApplication", forged_id, scenario.visit, TA, scenario.summary],
                     writes={key: json.dumps(birth, sort_keys=True).encode()},
                     metadata={key: key_policy(f"OutOf(2, '{TA}.peer', '{TB}.peer')")})  # fmt: skip

    tx_id, code = submit_envelope(layout, TA, envelope)

    assert code == POLICY_FAILURE
    assert set(codes_at(layout, [TA, TB, DISTRICT], tx_id).values()) == {POLICY_FAILURE}
    assert {org: committed(layout, org, "report", key) for org in (TA, TB, DISTRICT)} == {
        org: (b"", {}) for org in (TA, TB, DISTRICT)
    }
    with pytest.raises(GatewayError) as missing:  # so no referral can use it
        application(scenario, forged_id)
    assert f"application {forged_id}" in str(missing.value)


def test_ledger_verify_finds_every_ledger_intact_after_the_attacks(scenario: Scenario) -> None:
    report = cli_json("ledger", "verify", str(scenario.directory / "nodes"))
    assert report["intact"], [v for v in report["ledgers"] if not v["intact"]]
