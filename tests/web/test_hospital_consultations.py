"""Remote consultation through the hospital's JSON API and pages, on the demo alliance: a
secondary hospital's doctor requests one for a visit with a record to grant, the consultant's
doctor accepts and reports (sealed, signed); the requester reads the verified report on its page
and closes the consultation from it. A third hospital cannot read the report."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from medalliance.app.referral_packages import seal_and_share
from medalliance.web.backend import WebBackend
from tests.web.conftest import StaffClient

API = "/api/v1/hospital"
A, T = "SecondaryAMSP", "TertiaryAMSP"
PATIENT = "5e" * 8


def post(client: StaffClient, path: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(f"{API}{path}", json=body or {}, headers={"X-CSRF-Token": client.csrf_token})


def test_a_consultation_is_requested_reported_read_and_closed(
    web_backend: WebBackend, client_as: Callable[[str], StaffClient]
) -> None:
    network = web_backend.network
    network.submit(A, "User1", "visit", "RegisterVisit", "V-WEB-C", PATIENT, A)
    seal_and_share(network, A, "User1", [], "R-WEB-C", PATIENT, b'{"resourceType": "Bundle"}')
    requester, consultant = client_as("doctor.secondarya"), client_as("doctor.tertiarya")
    stranger = client_as("doctor.tertiaryb")
    asked = post(requester, "/consultations", {"visit_no": "V-WEB-C", "consultant": T,
                                              "record_ids": ["R-WEB-C"], "question": "Surgery?"})  # fmt: skip
    assert asked.status_code == 200, asked.text
    consultation_id = asked.json()["id"]
    assert post(consultant, f"/consultations/{consultation_id}/decide", {"action": "accept"}).status_code == 200  # fmt: skip
    reported = post(consultant, f"/consultations/{consultation_id}/report", {"text": "Indicated."})
    assert reported.status_code == 200, reported.text
    assert stranger.get(f"{API}/consultations/{consultation_id}/report").status_code == 403
    page = requester.get("/hospital/consultations")
    assert f'data-testid="close-{consultation_id}"' in page.text
    report = requester.get(f"/hospital/consultations/{consultation_id}/report")
    assert report.status_code == 200
    assert 'data-testid="report-text">Indicated.</pre>' in report.text
    closed = requester.post_form(f"/hospital/consultations/{consultation_id}/decide", {"action": "close"})  # fmt: skip
    assert closed.status_code == 200  # type: ignore[attr-defined]
    [found] = [c for c in requester.get(f"{API}/consultations").json() if c["consultationId"] == consultation_id]  # fmt: skip
    assert found["status"] == "CLOSED"
    record = json.loads(network.evaluate(A, "User1", "records", "GetRecord", "R-WEB-C"))
    assert T not in record["authorised"]
