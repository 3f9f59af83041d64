"""Facts read from the blocks of a real embedded alliance after a full referral workflow."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter

from tests.integration.audit.conftest import REGULATOR

from medalliance.app.alliance_network import EmbeddedAlliance
from medalliance.audit.facts import FACT_KINDS, Fact, facts_of_block
from medalliance.contracts import create_composite_key
from medalliance.contracts.key_policy import key_policy
from medalliance.ledger.state import VALIDATION_PARAMETER


def ledger_facts(alliance: EmbeddedAlliance) -> list[Fact]:
    return [
        fact
        for block in alliance.blocks(REGULATOR, 0, None)
        for fact in facts_of_block(block, "alliance")
    ]


def test_a_referral_workflow_gives_the_facts_of_each_step(alliance: EmbeddedAlliance) -> None:
    facts = ledger_facts(alliance)
    kinds = Counter(f.kind for f in facts)
    assert kinds["application.submitted"] == 2
    assert kinds["application.reviewed"] == 2
    assert kinds["application.used"] == 1
    assert kinds["referral.created"] == 2
    assert kinds["referral.accepted"] == 2
    assert kinds["referral.completed"] == 2
    assert kinds["settlement.entry"] == 2
    assert kinds["visit.registered"] == 1
    # each target decrypts the package it was sent, and the origin the feedback on its referral
    assert kinds["record.accessed"] == 3
    deployed = sorted(f.subject for f in facts if f.kind == "contract.changed")
    assert deployed == sorted(["visit", "report", "referral", "resource", "settlement",
                               "reporting", "registry", "records", "alarm", "consultation"])  # fmt: skip
    assert kinds["record.shared"] >= 2
    assert set(kinds) <= set(FACT_KINDS)
    reviewed = sorted(
        (f.attribute("status"), f.attribute("reason_code"))
        for f in facts
        if f.kind == "application.reviewed"
    )
    assert reviewed == [("APPROVED", ""), ("REJECTED", "TARGET_NO_CAPACITY")]
    created = [f for f in facts if f.kind == "referral.created"]
    assert [f.attribute("direction") for f in created] == ["UP", "DOWN"]
    assert created[0].attribute("from_hospital") == created[1].attribute("to_hospital")
    assert {f.creator_role for f in created} == {"doctor"}
    review = next(f for f in facts if f.kind == "application.reviewed")
    assert (review.creator_msp, review.creator_role) == (REGULATOR, "reviewer")


def test_facts_carry_their_transaction_and_never_a_patient_reference(
    alliance: EmbeddedAlliance,
) -> None:
    facts = ledger_facts(alliance)
    assert facts
    assert all(f.tx_id and f.timestamp.endswith("Z") for f in facts)
    assert all(f.block > 0 for f in facts)  # the genesis configuration is no change
    names = {name for f in facts for name, _ in f.attributes}
    assert not names & {"patient_ref", "patientRef", "summary_ref", "note_ref"}
    assert [(f.block, f.tx_index) for f in facts] == sorted((f.block, f.tx_index) for f in facts)


def test_settlement_amounts_are_exact_yuan_text(alliance: EmbeddedAlliance) -> None:
    amounts = [
        f.attribute("amount") for f in ledger_facts(alliance) if f.kind == "settlement.entry"
    ]
    assert amounts == ["50.00", "20.00"]  # the demo agreement: UP 5000 cents, DOWN 2000 cents


def test_blocks_of_another_channel_give_no_facts(alliance: EmbeddedAlliance) -> None:
    blocks = list(alliance.blocks(REGULATOR, 0, None))
    assert all(facts_of_block(block, "tertiary") == [] for block in blocks)


def test_an_invalidated_transaction_gives_only_a_tx_invalid_fact(
    alliance: EmbeddedAlliance,
) -> None:
    client = alliance.network.client("SecondaryAMSP", "User1")
    ref = "ab" * 16
    first, _ = client.submit_async("alliance", "visit", "RegisterVisit", "V-twice", ref,
                                   "SecondaryAMSP")  # fmt: skip
    second, _ = client.submit_async("alliance", "visit", "RegisterVisit", "V-twice", ref,
                                    "SecondaryAMSP")  # fmt: skip
    alliance.network.cut_blocks("alliance")
    facts = [f for f in ledger_facts(alliance) if f.tx_id in (first, second)]
    assert [(f.kind, f.tx_id) for f in facts] == [
        ("visit.registered", first),
        ("tx.invalid", second),
    ]
    assert facts[1].attribute("code") == "MVCC_READ_CONFLICT"
    assert facts[1].attribute("contract") == "visit"


def test_recognition_gives_facts_and_the_rules_key_needs_the_regulators_peer(
    alliance: EmbeddedAlliance,
) -> None:
    """Issue 19 on the embedded demo alliance: rules, a recorded result, one taken over and one
    ordered again become facts; the published rules' key carries the district's key policy, so
    no hospital (nor both tertiary hospitals together) can rewrite its quality levels."""
    ref, hb = "5e" * 16, "718-7"
    rules = {"catalogue": {hb: {"validityDays": 30, "minLevel": "B"}},
             "levels": {"TertiaryAMSP": {hb: "A"}}}  # fmt: skip
    alliance.submit(REGULATOR, "Reviewer1", "resource", "SetRecognitionRules", json.dumps(rules))
    digest = hashlib.sha256(b"sealed report").hexdigest()
    alliance.submit("TertiaryAMSP", "User1", "records", "RegisterRecord", "R-RC", ref, digest, "[]", "[]")  # fmt: skip
    today = dt.datetime.now(dt.UTC).date().isoformat()
    alliance.submit("TertiaryAMSP", "User1", "resource", "RecordResult", "RES-RC", ref, hb, today, "R-RC", "TertiaryAMSP")  # fmt: skip
    alliance.submit("SecondaryAMSP", "User1", "visit", "RegisterVisit", "V-RC", ref, "SecondaryAMSP")  # fmt: skip
    alliance.submit("SecondaryAMSP", "User1", "resource", "RequestResult", "RES-RC", "V-RC")
    alliance.submit("SecondaryAMSP", "User1", "resource", "OrderDespiteRecognised", "ORD-RC", "V-RC", hb, "RESULT_UNREADABLE", "")  # fmt: skip
    facts = {f.kind: f for f in ledger_facts(alliance) if f.kind.startswith("result.")}
    assert facts["result.recorded"].attributes == (("code", hb), ("hospital", "TertiaryAMSP"), ("record_id", "R-RC"))  # fmt: skip
    assert facts["result.reused"].attribute("requester") == "SecondaryAMSP"
    assert facts["result.duplicate"].attribute("reason_code") == "RESULT_UNREADABLE"
    state = alliance.network.peers[0].channel("alliance").state
    key = create_composite_key("recogrules", [REGULATOR])
    policy = key_policy("AND('DistrictHCMSP.peer', OutOf(1, 'TertiaryAMSP.peer', 'TertiaryBMSP.peer'))")  # fmt: skip
    assert state.get_metadata("resource", key) == {VALIDATION_PARAMETER: policy}
