"""Resource and result sharing and settlement through the hospital's JSON API and pages, on the
demo alliance: a clerk publishes a resource, another hospital books a slot and the owner
confirms; a recognised result is recorded (form and API), found, requested and ordered again
with a reason (issue 19); the demo's agreement shows in the statement and
balance. And the refusals: booking one's own resource (the contract's words), a doctor proposing
an agreement (the clerks' role), a month that is not YYYY-MM — each changing nothing."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from medalliance.audit.facts import facts_of_block
from medalliance.web.backend import WebBackend
from tests.web.conftest import StaffClient

API = "/api/v1/hospital"
MONTH = dt.datetime.now(dt.UTC).strftime("%Y-%m")
HB = "718-7"  # LOINC haemoglobin


def post(client: StaffClient, path: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(f"{API}{path}", json=body or {}, headers={"X-CSRF-Token": client.csrf_token})


@pytest.fixture(scope="module")
def published(web_app: Any, web_backend: WebBackend) -> dict[str, Any]:
    from tests.web.conftest import login

    def client(username: str) -> StaffClient:
        made = StaffClient(web_app)
        assert login(made, username).status_code == 303  # type: ignore[attr-defined]
        made.csrf_token = made.get("/api/v1/me").json()["csrf_token"]
        return made

    owner, requester = client("clerk.tertiaryb"), client("clerk.secondarya")
    resource = post(owner, "/resources", {"kind": "EQUIPMENT", "description": "3.0T MRI",
                                          "slots": ["2026-12-20T09:00", "2026-12-20T10:00"]}).json()  # fmt: skip
    return {"owner": owner, "requester": requester, "resource": resource}


def test_a_slot_is_booked_and_confirmed_each_step_with_its_block(
    published: dict[str, Any],
) -> None:
    owner, requester = published["owner"], published["requester"]
    resource_id = published["resource"]["id"]
    assert published["resource"]["block"] > 0
    listed = {r["resourceId"]: r for r in requester.get(f"{API}/resources").json()}
    assert listed[resource_id]["freeSlots"] == ["2026-12-20T09:00", "2026-12-20T10:00"]
    booked = post(requester, "/bookings", {"resource_id": resource_id, "slot": "2026-12-20T09:00"}).json()  # fmt: skip
    confirmed = post(owner, f"/bookings/{booked['id']}/confirm").json()
    assert confirmed["block"] > booked["block"] > published["resource"]["block"]
    mine = {b["bookingId"]: b for b in requester.get(f"{API}/bookings").json()}
    assert mine[booked["id"]]["status"] == "CONFIRMED"


def test_booking_ones_own_resource_is_refused_and_the_slot_stays_free(
    published: dict[str, Any],
) -> None:
    owner, resource_id = published["owner"], published["resource"]["id"]
    refused = post(owner, "/bookings", {"resource_id": resource_id, "slot": "2026-12-20T10:00"})
    assert refused.status_code == 400  # the contract's own status: bad input
    assert "cannot book its own resource" in refused.json()["message"]
    listed = {r["resourceId"]: r for r in owner.get(f"{API}/resources").json()}
    assert "2026-12-20T10:00" in listed[resource_id]["freeSlots"]


@pytest.fixture(scope="module")
def recognition_rules(web_backend: WebBackend) -> str:
    """The district's recognition rules: haemoglobin valid 30 days from a level B laboratory;
    SecondaryA's is graded B. Returns the code."""
    rules = {"catalogue": {HB: {"validityDays": 30, "minLevel": "B"}}, "levels": {"SecondaryAMSP": {HB: "B"}}}  # fmt: skip
    web_backend.network.submit("DistrictHCMSP", "Reviewer1", "resource", "SetRecognitionRules", json.dumps(rules))  # fmt: skip
    return HB


def test_a_doctor_records_a_result_through_the_page_form(
    client_as: Callable[[str], StaffClient], web_backend: WebBackend, recognition_rules: str
) -> None:
    doctor = client_as("doctor.secondarya")
    visit = post(doctor, "/visits", {"patient_id": "sa-p1"}).json()
    reports = doctor.get(f"{API}/patients/sa-p1/records").json()
    record = [c["reference"] for c in reports if c["kind"] in ("DiagnosticReport", "Observation")][-1]  # fmt: skip
    form = {"csrf_token": doctor.csrf_token, "visit_no": visit["visit_no"], "code": recognition_rules,
            "performed_on": dt.datetime.now(dt.UTC).date().isoformat(), "record": record}  # fmt: skip
    page = doctor.post("/hospital/sharing/results", data=form)
    assert page.status_code == 200, page.text
    ref = json.loads(web_backend.network.evaluate("SecondaryAMSP", "User1", "visit", "GetVisit", visit["visit_no"]))["patientRef"]  # fmt: skip
    today = dt.datetime.now(dt.UTC).date().isoformat()
    seen = json.loads(web_backend.network.evaluate("DistrictHCMSP", "Auditor1", "resource", "RecognisedResults", ref, recognition_rules, today, ""))  # fmt: skip
    assert [r["hospital"] for r in seen] == ["SecondaryAMSP"]
    refused = doctor.post("/hospital/sharing/results", data={**form, "code": "Hb low, 7.1"})
    assert refused.status_code == 400  # the form's own check: nothing sealed, nothing recorded
    again = json.loads(web_backend.network.evaluate("DistrictHCMSP", "Auditor1", "resource", "RecognisedResults", ref, recognition_rules, today, ""))  # fmt: skip
    assert again == seen


def test_a_result_is_recorded_found_requested_and_a_duplicate_keeps_its_reason(
    client_as: Callable[[str], StaffClient], web_backend: WebBackend, recognition_rules: str
) -> None:
    """Issue 19 through the JSON API: SecondaryA records a report of its patient; TertiaryA,
    holding a visit of the same patient, finds it recognised, requests it, and orders a
    duplicate with a coded reason; a hospital without a visit of the patient is refused."""
    hb, today = recognition_rules, dt.datetime.now(dt.UTC).date()
    performer, requester = client_as("doctor.secondarya"), client_as("doctor.tertiarya")
    visit = post(performer, "/visits", {"patient_id": "sa-p1"}).json()
    reports = performer.get(f"{API}/patients/sa-p1/records").json()
    record = next(c["reference"] for c in reports if c["kind"] in ("DiagnosticReport", "Observation"))  # fmt: skip
    recorded = post(performer, "/recognised-results", {"visit_no": visit["visit_no"], "record": record, "code": hb, "performed_on": today.isoformat()}).json()  # fmt: skip
    ref = json.loads(web_backend.network.evaluate("SecondaryAMSP", "User1", "visit", "GetVisit", visit["visit_no"]))["patientRef"]  # fmt: skip
    web_backend.network.submit("TertiaryAMSP", "User1", "visit", "RegisterVisit", "V-RECOG", ref, "TertiaryAMSP")  # fmt: skip
    ask = f"{API}/visits/V-RECOG/recognised-results?code={hb}"
    # the patient may have an earlier result of the page test: both are recognised
    assert recorded["id"] in [r["resultId"] for r in requester.get(ask).json()]
    later = (today + dt.timedelta(days=31)).isoformat()
    assert requester.get(f"{ask}&as_of={later}").json() == []
    page = requester.get("/hospital/sharing", params={"recognised_visit": "V-RECOG", "recognised_code": hb})  # fmt: skip
    assert f'data-testid="recognised-{recorded["id"]}"' in page.text
    not_ours = client_as("doctor.secondarya").get("/hospital/sharing", params={"recognised_visit": "V-RECOG", "recognised_code": hb})  # fmt: skip
    assert not_ours.status_code == 400
    assert 'data-testid="error-recognised"' in not_ours.text
    searchset = requester.get("/fhir/$recognised-results", params={"visit": "V-RECOG", "code": hb})
    bundle = Bundle.model_validate(searchset.json())  # valid FHIR R4
    assert recorded["id"] in [e.resource.id for e in bundle.entry or []]
    stranger = client_as("clerk.secondarya").get(ask)
    assert stranger.status_code == 400
    assert "the patient of this visit is not at your hospital" in stranger.json()["message"]
    taken = post(requester, f"/recognised-results/{recorded['id']}/request", {"visit_no": "V-RECOG"})  # fmt: skip
    assert taken.json()["block"] > recorded["block"]
    free_text = post(requester, "/duplicate-orders", {"visit_no": "V-RECOG", "code": hb, "reason_code": "anxious patient"})  # fmt: skip
    assert free_text.status_code == 400
    order = post(requester, "/duplicate-orders", {"visit_no": "V-RECOG", "code": hb, "reason_code": "CONDITION_CHANGED"}).json()  # fmt: skip
    blocks = web_backend.network.blocks("DistrictHCMSP", recorded["block"], None)
    duplicates = [f for b in blocks for f in facts_of_block(b, "alliance") if f.kind == "result.duplicate"]  # fmt: skip
    # One order on the chain, with its reason: the refused free-text order wrote nothing.
    assert [(f.subject, f.attribute("reason_code")) for f in duplicates] == [(order["id"], "CONDITION_CHANGED")]  # fmt: skip


def test_the_demo_agreement_settles_in_the_statement_and_balance(
    client_as: Callable[[str], StaffClient],
) -> None:
    clerk = client_as("clerk.secondarya")
    agreements = clerk.get(f"{API}/agreements").json()
    active = [a for a in agreements if a["status"] == "ACTIVE"]
    assert active, agreements
    statement = clerk.get(f"{API}/agreements/{active[0]['agreement_id']}/statement", params={"period": MONTH}).json()  # fmt: skip
    balance = clerk.get(f"{API}/balance", params={"period": MONTH}).json()
    assert statement["entries"]
    assert balance["netCents"] == statement["netCents"]["SecondaryAMSP"]
    assert clerk.get(f"{API}/balance", params={"period": "2026-13"}).status_code == 422


def test_a_doctor_may_not_propose_an_agreement_and_nothing_is_proposed(
    client_as: Callable[[str], StaffClient],
) -> None:
    doctor = client_as("doctor.secondaryb")
    refused = post(doctor, "/agreements", {"partner": "TertiaryBMSP", "up_cents": 1, "down_cents": 1})  # fmt: skip
    assert refused.status_code == 403
    clerk = client_as("clerk.secondaryb")
    assert clerk.get(f"{API}/agreements").json() == []


@pytest.mark.parametrize("language", ["zh_CN", "en"])
@pytest.mark.parametrize(
    "page",
    ["/hospital/", "/hospital/patients", "/hospital/outgoing", "/hospital/incoming",
     "/hospital/sharing", "/hospital/settlement"],
)  # fmt: skip
def test_every_hospital_page_renders_in_both_languages(
    client_as: Callable[[str], StaffClient], page: str, language: str
) -> None:
    client = client_as("clerk.secondarya")
    switched = client.post_form("/language", {"language": language, "next": "/"}, follow_redirects=False)  # fmt: skip
    assert switched.status_code == 303  # type: ignore[attr-defined]
    shown = client.get(page)
    assert shown.status_code == 200, shown.text[:500]
    assert ("转入" in shown.text) is (language == "zh_CN")


def test_the_referral_chart_counts_this_hospitals_referrals_by_month_and_direction(
    client_as: Callable[[str], StaffClient],
) -> None:
    option = client_as("doctor.secondarya").get(f"{API}/charts/referral-volumes").json()
    series = {s["name"]: s["data"] for s in option["series"]}
    assert option["xAxis"]["data"] == [MONTH]
    assert series["上转"] == [1]  # the demo's upward referral, in Chinese by default
    assert sum(sum(data) for data in series.values()) == 2  # and its return referral
