"""Attacks on the demo alliance as processes (issue 11, items 5 and 6).

Item 5: a hospital that is no party to a referral reads every file of its own node (blocks,
state database, logs) and of every other node, looking for the clinical free text of the
referral: the reason, the regulator's note, the target's rejection note and the outcomes. Each is
a unique marker in Chinese and English; the chain holds only codes and record ids, the text
itself is sealed for the parties. Positive controls show that the scan finds text where it is
(a hospital's own database, any base64 alignment) and that the parties do open every marker.

Item 6: an approval is bound to the hospital that applied. A's approved application for a visit
is not a pass for whoever holds the visit later: once the visit has moved to secondary hospital
S2, S2's upward referral with A's approval is refused and the application stays unused.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medalliance.app.alliance_network import GatewayAlliance
from medalliance.app.packages import open_as
from medalliance.app.referral_demo import DOCTOR, REVIEWER, Narrative, run_referral, seal_note
from medalliance.errors import ContractError
from medalliance.privacy.envelope import SealedPackage
from tests.networks import DEMO_ALLIANCE, running, with_free_ports

CHANNEL = "alliance"
A, B, B2, S2 = "SecondaryAMSP", "TertiaryAMSP", "TertiaryBMSP", "SecondaryBMSP"
C = "DistrictHCMSP"
MARKERS = Narrative(
    reason="MARK-REASON-7f3a 急性前壁心肌梗死，需急诊PCI acute anterior STEMI",
    review_note="MARK-REVIEW-91c2 乙院导管室本周已满 cath lab full this week",
    outcome_up="MARK-OUTCOME-5d8e 植入支架一枚，病情稳定 one stent, stable",
    outcome_down="MARK-DISCHARGE-2b6f 康复出院 discharged home",
)
REJECTION_NOTE = "MARK-REJECT-c4d1 重症监护室无床位 no ICU bed tonight"
TEXTS = (MARKERS.reason, MARKERS.review_note, MARKERS.outcome_up, MARKERS.outcome_down,
         REJECTION_NOTE)  # fmt: skip
# From the sealed referral Bundle itself (the demo patient's diagnosis in the shipped example
# data, examples/fhir/secondary-hospital-a.json), and the patient's identity.
DIAGNOSIS = "Acute transmural myocardial infarction of anterior wall"
ID_NUMBER = "990101194912310036"


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, GatewayAlliance]]:
    base = tmp_path_factory.mktemp("ledgertext")
    with running(with_free_ports(DEMO_ALLIANCE, base / "network.yaml"), base) as directory:
        network = GatewayAlliance(directory, CHANNEL)
        try:
            yield directory, network
        finally:
            network.close()


def test_no_node_holds_the_clinical_text_of_a_referral(
    alliance: tuple[Path, GatewayAlliance],
) -> None:
    directory, network = alliance
    steps = run_referral(network, lambda step: None, MARKERS)
    assert all(step.ok for step in steps), [s for s in steps if not s.ok]
    visit = re.search(r"registers visit (V-[0-9a-f]+)", steps[0].title)
    assert visit is not None
    rejection_note = _reject_with_a_note(network)

    # Every file of every node (the non-party SecondaryB's included) and every log: no marker.
    scanned = [p for p in (directory / "nodes").rglob("*") if p.is_file()]
    scanned += [p for p in (directory / "logs").rglob("*") if p.is_file()]
    non_party = directory / "nodes" / "peer0.secondaryb.example.com"
    assert any(p.is_relative_to(non_party) and "blockfile" in p.name for p in scanned)
    assert any(p.is_relative_to(non_party) and p.suffix == ".db" for p in scanned)
    assert any(p.is_relative_to(directory / "logs") for p in scanned)
    for text in (*TEXTS, DIAGNOSIS, ID_NUMBER):
        found = [str(p.relative_to(directory)) for p in scanned if _holds(p.read_bytes(), text)]
        assert found == [], (text[:16], found)

    # Positive controls: the scan finds clinical text where it is, in the hospitals' own
    # databases, and the parties open every marker from its sealed package.
    hospitals = directory / "hospitals"
    assert _holds((hospitals / f"{B}.db").read_bytes(), DIAGNOSIS)
    assert _holds((hospitals / f"{A}.db").read_bytes(), ID_NUMBER)
    opened = _opened_by_regulator(network, visit.group(1), rejection_note)
    for text in TEXTS:  # feedback documents carry their text as a base64 FHIR attachment
        assert _holds(opened, text), text[:16]


def test_another_hospitals_referral_cannot_consume_an_approval(
    alliance: tuple[Path, GatewayAlliance],
) -> None:
    _, network = alliance
    run, patient = secrets.token_hex(3), secrets.token_hex(16)
    visit, approval = f"V-{run}", f"APP-{run}-A"
    network.submit(A, DOCTOR, "visit", "RegisterVisit", visit, patient, A)
    summary = f"S-{run}"
    seal_note(network, A, DOCTOR, [B, B2], summary, patient, "summary", "referral summary")
    for app_id, target in ((approval, B), (f"APP-{run}-B2", B2)):
        network.submit(A, DOCTOR, "report", "SubmitApplication", app_id, visit, target, summary)
        network.submit(C, REVIEWER, "report", "ReviewApplication", app_id, "APPROVED", "", "")
    # The visit goes up to B2 (on the other approval), then down to S2.
    _refer_and_complete(network, f"REF-{run}-1", f"APP-{run}-B2", visit, A, B2, "UP", summary)
    discharge = f"D-{run}"
    seal_note(network, B2, DOCTOR, [S2, B], discharge, patient, "discharge", "discharge")
    _refer_and_complete(network, f"REF-{run}-2", "", visit, B2, S2, "DOWN", discharge)
    before = _json(network, C, "report", "GetApplication", approval)

    with pytest.raises(ContractError) as refused:
        network.submit(S2, DOCTOR, "referral", "Refer", f"REF-{run}-3", approval, visit, S2, B,
                       "UP", discharge)  # fmt: skip
    assert refused.value.status_code == 403
    assert str(refused.value) == (
        f"application {approval} was made by another hospital, not {S2}; a referral needs the "
        "origin's own approved application"
    )
    assert _json(network, C, "report", "GetApplication", approval) == before
    assert before["status"] == "APPROVED"
    assert _json(network, S2, "visit", "GetVisit", visit)["hospital"] == S2
    with pytest.raises(ContractError, match="does not exist"):
        network.evaluate(S2, DOCTOR, "referral", "GetReferral", f"REF-{run}-3")


def _reject_with_a_note(network: GatewayAlliance) -> str:
    """A referral from A to B that B rejects (code OTHER) with a sealed note; the note's id."""
    run, patient = secrets.token_hex(3), secrets.token_hex(16)
    visit, summary, note = f"V-{run}", f"S-{run}", f"N-{run}"
    network.submit(A, DOCTOR, "visit", "RegisterVisit", visit, patient, A)
    seal_note(network, A, DOCTOR, [B], summary, patient, "summary", MARKERS.reason)
    network.submit(A, DOCTOR, "report", "SubmitApplication", f"APP-{run}", visit, B, summary)
    network.submit(C, REVIEWER, "report", "ReviewApplication", f"APP-{run}", "APPROVED", "", "")
    network.submit(A, DOCTOR, "referral", "Refer", f"REF-{run}", f"APP-{run}", visit, A, B, "UP",
                   summary)  # fmt: skip
    seal_note(network, B, DOCTOR, [A], note, patient, "rejection-note", REJECTION_NOTE)
    rejected = json.loads(
        network.submit(B, DOCTOR, "referral", "RejectReferral", f"REF-{run}", "OTHER", note).payload
    )
    assert (rejected["status"], rejected["reasonCode"], rejected["noteRef"]) == (
        "REJECTED", "OTHER", note
    )  # fmt: skip
    return note


def _refer_and_complete(
    network: GatewayAlliance,
    referral: str,
    application: str,
    visit: str,
    origin: str,
    target: str,
    direction: str,
    clinical: str,
) -> None:
    network.submit(origin, DOCTOR, "referral", "Refer", referral, application, visit, origin,
                   target, direction, clinical)  # fmt: skip
    network.submit(target, DOCTOR, "referral", "AcceptReferral", referral)
    patient = _json(network, target, "visit", "GetVisit", visit)["patientRef"]
    feedback = f"F-{referral}"
    seal_note(network, target, DOCTOR, [origin], feedback, patient, "feedback", "feedback")
    network.submit(target, DOCTOR, "referral", "CompleteReferral", referral, feedback)


def _opened_by_regulator(network: GatewayAlliance, visit: str, *extra: str) -> bytes:
    """The plaintext of every sealed record of the visit's workflow (summary, notes,
    feedback), as the district regulator (a recipient of each) opens them."""
    applications = _json(network, C, "report", "ApplicationsForVisit", visit)
    referrals = _json(network, C, "referral", "ReferralHistory", visit)
    records = {a["summaryRef"] for a in applications} | {a["noteRef"] for a in applications}
    records |= {r["feedbackRef"] for r in referrals} | set(extra)
    opened = b""
    for record_id in sorted(records - {""}):
        held = network.pull(C, "Auditor1", record_id, 1)
        package = SealedPackage.from_bytes(held.sealed)
        data, _ = open_as(network.layout, C, package, held.attachments)
        opened += data
    return opened


def _json(network: GatewayAlliance, org: str, contract: str, function: str, *args: str) -> Any:
    user = "Auditor1" if org == C else DOCTOR
    return json.loads(network.evaluate(org, user, contract, function, *args))


def _holds(data: bytes, text: str) -> bool:
    """`text` in `data` as UTF-8, as JSON's \\u escapes, or base64-encoded at any alignment."""
    return any(form in data for form in _forms(text))


def _forms(text: str) -> list[bytes]:
    raw = text.encode()
    forms = [raw, json.dumps(text).strip('"').encode()]
    for shift in range(3):
        # The middle of an encoding depends only on the text and its offset modulo 3.
        encoded = base64.b64encode(b"\x00" * shift + raw)
        forms += [encoded[4:-4], base64.urlsafe_b64encode(b"\x00" * shift + raw)[4:-4]]
    return forms


def test_the_scan_finds_text_in_any_form() -> None:
    """The scan's own control: each form of a marker is found inside other bytes."""
    text = REJECTION_NOTE
    for prefix in (b"", b"a", b"ab", b"abc"):
        assert _holds(b"xx" + base64.b64encode(prefix + text.encode()) + b"yy", text)
    assert _holds(json.dumps({"note": text}).encode(), text)
    assert _holds(b"\x0a\x20" + text.encode() + b"\x12", text)
    assert not _holds(json.dumps({"reasonCode": "OTHER"}).encode(), text)
