"""Remote consultation on an embedded demo alliance: the consultant opens the granted records
during the consultation and loses access when it closes; the signed report is verified by the
requester, and a report whose signature does not hold is refused."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.networks import DEMO_ALLIANCE

from medalliance.app import consultations
from medalliance.app.alliance_network import EmbeddedAlliance
from medalliance.app.consultations import ConsultationRequest, ReportNotAuthentic
from medalliance.app.packages import open_as
from medalliance.app.referral_packages import seal_and_share
from medalliance.audit.facts import facts_of_block
from medalliance.errors import ContractError
from medalliance.node.config import load_network_config
from medalliance.node.embedded import EmbeddedNetwork
from medalliance.privacy.envelope import SealedPackage

A, T, B2 = "SecondaryAMSP", "TertiaryAMSP", "TertiaryBMSP"
PATIENT = "9f86d081884c7d65"
CLINICAL = b'{"resourceType": "Bundle", "note": "the visit\'s examinations"}'


@pytest.fixture
def alliance(tmp_path: Path) -> Iterator[EmbeddedAlliance]:
    with EmbeddedNetwork.open(load_network_config(DEMO_ALLIANCE), tmp_path / "net") as network:
        alliance = EmbeddedAlliance(network, "alliance")
        alliance.submit(A, "User1", "visit", "RegisterVisit", "V-1", PATIENT, A)
        seal_and_share(alliance, A, "User1", [], "R-1", PATIENT, CLINICAL)
        yield alliance
        alliance.close()


def requested(alliance: EmbeddedAlliance, consultation_id: str) -> None:
    draft = ConsultationRequest(
        consultation_id, "V-1", "TertiaryHospitalA", "03", ("R-1",),
        consultations.deadline_in(24), question="Is surgery indicated?",
    )  # fmt: skip
    consultations.request(alliance, A, "User1", draft)
    alliance.submit(T, "User1", "consultation", "AcceptConsultation", consultation_id)


def opens(alliance: EmbeddedAlliance, org: str) -> bool:
    try:
        held = alliance.pull(org, "User1", "R-1", 1)
        data, _ = open_as(alliance.layout, org, SealedPackage.from_bytes(held.sealed))
    except Exception:
        return False
    return data == CLINICAL


def test_a_consultation_runs_with_access_granted_then_revoked(alliance: EmbeddedAlliance) -> None:
    assert not opens(alliance, T)
    requested(alliance, "C-1")
    assert opens(alliance, T)
    assert not opens(alliance, B2)  # a third hospital gets nothing
    consultations.submit_report(alliance, T, "User1", "C-1", "Surgery is indicated.")
    report = consultations.verify_report(alliance, A, "User1", "C-1")
    assert (report.text, report.signed_by) == ("Surgery is indicated.", T)
    closed = json.loads(
        alliance.submit(A, "User1", "consultation", "CloseConsultation", "C-1").payload
    )
    assert closed["status"] == "CLOSED"
    record = json.loads(alliance.evaluate(A, "User1", "records", "GetRecord", "R-1"))
    assert T not in record["authorised"]
    with pytest.raises(ContractError, match="consultation C-1 is CLOSED"):
        alliance.submit(A, "User1", "consultation", "CloseConsultation", "C-1")
    # the regulator's audit sees every step, with the records granted
    facts = [f for b in alliance.blocks("DistrictHCMSP", 0, None)
             for f in facts_of_block(b, "alliance") if f.kind == "consultation.changed"]  # fmt: skip
    assert [f.attribute("status") for f in facts] == ["REQUESTED", "ACCEPTED", "REPORTED", "CLOSED"]
    assert {f.attribute("granted") for f in facts} == {"R-1"}


def test_a_report_whose_signature_does_not_hold_is_not_authentic(
    alliance: EmbeddedAlliance,
) -> None:
    requested(alliance, "C-2")
    body = json.dumps({"consultationId": "C-2", "text": "forged", "signerCertificate": ""})
    seal_and_share(alliance, T, "User1", [A], "C-2.report", PATIENT, body.encode())
    digest = json.loads(alliance.evaluate(T, "User1", "records", "GetVersion", "C-2.report", "1"))
    signature = base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode()
    alliance.submit(T, "User1", "consultation", "SubmitReport", "C-2", digest["digest"], signature)
    with pytest.raises(ReportNotAuthentic, match="not signed by a member of TertiaryAMSP"):
        consultations.verify_report(alliance, A, "User1", "C-2")
