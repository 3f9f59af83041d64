"""The doctor's referral path through the hospital pages (form posts, as a browser sends them)
on the demo alliance: register a visit, apply with the two-way-referral form, refer with the
approved application, the target's incoming list, accept, complete with the feedback, refer back
down. Each write page shows its transaction id and block; a bad form comes back with the error
beside the field and what was typed; a form without its CSRF token changes nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from medalliance.web.backend import WebBackend
from tests.web.conftest import StaffClient

PATIENT = "sa-p3"  # examples/fhir/secondary-hospital-a.json, not in the demo's referral
_TX = re.compile(r'data-testid="tx-id">([0-9a-f]{64})<')
_BLOCK = re.compile(r'data-testid="tx-block">(\d+)<')
_FIELD = re.compile(r'data-testid="(visit-no|application-id|referral-id)">([^<]+)<')


def written(page: Any) -> dict[str, str]:
    """What a write page shows: tx id, block and the ids it names."""
    assert page.status_code == 200, page.text[:2000]
    found = {"tx": _TX.search(page.text), "block": _BLOCK.search(page.text)}
    assert all(found.values()), page.text[:2000]
    return {"tx": found["tx"].group(1), "block": found["block"].group(1),  # type: ignore[union-attr]
            **dict(_FIELD.findall(page.text))}  # fmt: skip


def referral_form(visit: str) -> dict[str, Any]:
    return {"patient_id": PATIENT, "visit_no": visit, "direction": "UP", "target": "TertiaryBMSP",
            "department": "03.04", "urgency": "urgent", "diagnosis_code": "I20.0",
            "diagnosis_display": "不稳定型心绞痛", "purpose": "冠脉造影评估",
            "records": []}  # fmt: skip


@pytest.fixture(scope="module")
def walk(web_backend: WebBackend, web_app: Any) -> dict[str, Any]:
    from tests.web.conftest import login

    def client(username: str) -> StaffClient:
        made = StaffClient(web_app)
        assert login(made, username).status_code == 303  # type: ignore[attr-defined]
        made.csrf_token = made.get("/api/v1/me").json()["csrf_token"]
        return made

    a, b = client("doctor.secondarya"), client("doctor.tertiaryb")
    steps: dict[str, Any] = {"a": a, "b": b}
    steps["visit"] = written(a.post_form("/hospital/visits", {"patient_id": PATIENT}))
    visit = steps["visit"]["visit-no"]
    steps["form_page"] = a.get(f"/hospital/patients/{PATIENT}/refer", params={"visit": visit})
    steps["applied"] = written(a.post_form("/hospital/referrals", referral_form(visit)))
    web_backend.network.submit("DistrictHCMSP", "Reviewer1", "report", "ReviewApplication",
                               steps["applied"]["application-id"], "APPROVED", "", "")  # fmt: skip
    steps["outgoing"] = a.get("/hospital/outgoing")
    app_id = steps["applied"]["application-id"]
    steps["referred"] = written(a.post_form(f"/hospital/applications/{app_id}/refer"))
    referral = steps["referred"]["referral-id"]
    steps["incoming"] = b.get("/hospital/incoming")
    steps["accepted"] = written(b.post_form(f"/hospital/referrals/{referral}/accept"))
    steps["completed"] = written(b.post_form(
        f"/hospital/referrals/{referral}/complete", {"feedback": "造影示单支病变，药物治疗", "title": "出院小结"}
    ))  # fmt: skip
    steps["return_form"] = b.get(f"/hospital/referrals/{referral}/return")
    return steps


def test_every_page_of_the_path_shows_its_transaction_and_block(walk: dict[str, Any]) -> None:
    blocks = [int(walk[k]["block"]) for k in ("visit", "applied", "referred", "accepted", "completed")]  # fmt: skip
    assert blocks == sorted(blocks)
    assert walk["applied"]["referral-id"] == walk["referred"]["referral-id"]


def test_the_form_offers_the_patients_records_as_checkboxes(walk: dict[str, Any]) -> None:
    page = walk["form_page"]
    assert page.status_code == 200
    assert 'name="records" value="Condition/' in page.text
    assert 'name="csrf_token"' in page.text


def test_lists_show_the_approved_application_and_the_incoming_referral(
    walk: dict[str, Any],
) -> None:
    app_id, referral = walk["applied"]["application-id"], walk["referred"]["referral-id"]
    assert f'data-testid="refer-{app_id}"' in walk["outgoing"].text
    assert 'hx-trigger="alliance:ApplicationReviewed from:body' in walk["outgoing"].text
    assert (
        f'data-testid="application-row-{app_id}"'
        in walk["a"].get("/hospital/outgoing/applications").text
    )
    assert f'data-testid="incoming-row-{referral}"' in walk["incoming"].text
    assert 'hx-trigger="alliance:ReferralCreated from:body' in walk["incoming"].text


def test_the_referral_page_shows_the_timeline_and_the_return_form_is_filled_in(
    walk: dict[str, Any],
) -> None:
    referral = walk["referred"]["referral-id"]
    page = walk["a"].get(f"/hospital/referrals/{referral}")
    for status in ("APPLIED", "REFERRED", "ACCEPTED", "COMPLETED"):
        assert f'data-testid="step-{status}"' in page.text
    assert walk["completed"]["block"] in page.text
    back = walk["return_form"].text
    assert 'value="DOWN" selected' in back
    assert 'value="SecondaryAMSP" selected' in back
    assert 'value="I20.0"' in back


def test_a_return_referral_is_made_from_the_form(
    walk: dict[str, Any], web_backend: WebBackend
) -> None:
    referral = walk["referred"]["referral-id"]
    b = walk["b"]
    values = {**referral_form(walk["visit"]["visit-no"]), "direction": "DOWN",
              "target": "SecondaryAMSP", "department": "17", "purpose": "康复"}  # fmt: skip
    assert 'data-testid="refer-back"' in b.get(f"/hospital/referrals/{referral}").text
    patient = re.search(r'name="patient_id" value="([^"]+)"', walk["return_form"].text)
    assert patient is not None
    done = written(b.post_form("/hospital/referrals", {**values, "patient_id": patient.group(1)}))
    down = json.loads(web_backend.network.evaluate(
        "TertiaryBMSP", "User1", "referral", "GetReferral", done["referral-id"]))  # fmt: skip
    assert (down["direction"], down["toHospital"], down["status"]) == ("DOWN", "SecondaryAMSP", "REFERRED")  # fmt: skip
    assert referral != done["referral-id"]
    assert 'data-testid="refer-back"' not in b.get(f"/hospital/referrals/{referral}").text


def test_a_bad_form_comes_back_with_the_field_error_and_what_was_typed(
    walk: dict[str, Any],
) -> None:
    a = walk["a"]
    before = a.get("/api/v1/hospital/applications").json()
    values = {
        **referral_form(walk["visit"]["visit-no"]),
        "diagnosis_code": "胸痛",
        "purpose": "请会诊",
    }
    page = a.post_form("/hospital/referrals", values)
    assert page.status_code == 400
    assert 'data-testid="error-diagnosis_code"' in page.text
    assert "请会诊" in page.text
    assert a.get("/api/v1/hospital/applications").json() == before


def test_a_form_without_its_csrf_token_is_refused_and_accepts_nothing(
    client_as: Callable[[str], StaffClient], web_backend: WebBackend, walk: dict[str, Any]
) -> None:
    values = {"feedback": "x"}
    referral = walk["referred"]["referral-id"]
    before = web_backend.network.evaluate("TertiaryBMSP", "User1", "referral", "GetReferral", referral)  # fmt: skip
    refused = walk["b"].post(f"/hospital/referrals/{referral}/complete", data=values)
    assert refused.status_code == 403
    after = web_backend.network.evaluate("TertiaryBMSP", "User1", "referral", "GetReferral", referral)  # fmt: skip
    assert after == before


def test_the_import_button_runs_the_connector_and_shows_the_list(walk: dict[str, Any]) -> None:
    answer = walk["b"].post_form("/hospital/incoming/sync", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/hospital/incoming")  # type: ignore[attr-defined]
