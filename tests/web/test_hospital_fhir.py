"""FHIR R4 REST for hospital systems, as a HIS with an API token uses it on the demo alliance:
the CapabilityStatement validates, Task search by owner/requester/status/patient pages through a
searchset, the referral moves requested → accepted → completed by PUT and PATCH of the Task; a
malformed body, an unsupported move or another hospital's Task gets an OperationOutcome and
changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from medalliance.web.backend import WebBackend

FHIR = "application/fhir+json"
API = "/api/v1/hospital"


def his(web_app: Any, backend: WebBackend, username: str) -> TestClient:
    """A hospital system's client: an API token bound to the account's identity."""
    token = backend.accounts.issue_token(username, "HIS").token
    return TestClient(web_app, headers={"Authorization": f"Bearer {token}"})


def chain(backend: WebBackend, referral_id: str) -> dict[str, Any]:
    raw = backend.network.evaluate("CityHCMSP", "Auditor1", "referral", "GetReferral", referral_id)
    return dict(json.loads(raw))


@pytest.fixture(scope="module")
def referred(web_backend: WebBackend, web_app: Any) -> dict[str, Any]:
    """A new upward referral SecondaryA → TertiaryB, REFERRED and imported at TertiaryB."""
    a = his(web_app, web_backend, "doctor.secondarya")
    visit = a.post(f"{API}/visits", json={"patient_id": "sa-p2"}).json()
    form = {"patient_id": "sa-p2", "visit_no": visit["visit_no"], "target": "TertiaryBMSP",
            "department": "03.04", "urgency": "urgent", "diagnosis_code": "I10",
            "diagnosis_display": "原发性高血压", "purpose": "难治性高血压评估"}  # fmt: skip
    applied = a.post(f"{API}/referrals", json=form).json()
    web_backend.network.submit("DistrictHCMSP", "Reviewer1", "report", "ReviewApplication",
                               applied["application_id"], "APPROVED", "", "")  # fmt: skip
    done = a.post(f"{API}/applications/{applied['application_id']}/refer").json()
    b = his(web_app, web_backend, "doctor.tertiaryb")
    found = b.get("/fhir/Task", params={"owner": "TertiaryBMSP", "status": "requested"}).json()
    task = next(e["resource"] for e in found["entry"]
                if e["resource"]["identifier"][0]["value"] == done["referral_id"])  # fmt: skip
    return {"a": a, "b": b, "referral_id": done["referral_id"], "task": task}


def test_the_capability_statement_validates_and_lists_exactly_what_is_served(
    referred: dict[str, Any],
) -> None:
    answer = referred["b"].get("/fhir/metadata")
    assert answer.headers["content-type"].startswith(FHIR)
    statement = CapabilityStatement.model_validate(answer.json())
    served = {r.type: {i.code for i in r.interaction} for r in statement.rest[0].resource}
    assert served == {
        "Patient": {"read", "search-type"},
        "Encounter": {"read", "search-type"},
        "ServiceRequest": {"read", "search-type"},
        "Task": {"read", "search-type", "update", "patch"},
    }


def test_a_search_pages_through_a_searchset_with_its_total(referred: dict[str, Any]) -> None:
    a = referred["a"]
    first = a.get("/fhir/Patient", params={"_count": "1"}).json()
    Bundle.model_validate(first)
    assert first["total"] >= 3  # the example patients of SecondaryHospitalA
    seen, page = [], first
    while True:
        seen += [e["resource"]["id"] for e in page["entry"]]
        links = {link["relation"]: link["url"] for link in page["link"]}
        if "next" not in links:
            break
        page = a.get(links["next"].removeprefix("http://testserver")).json()
    assert len(seen) == len(set(seen)) == first["total"]
    assert "previous" in links


@pytest.mark.parametrize(
    ("who", "params", "expected"),
    [
        pytest.param("b", {"owner": "TertiaryBMSP", "status": "requested"}, True, id="the target finds it by owner and status"),
        pytest.param("b", {"owner": "TertiaryBMSP", "status": "completed"}, False, id="not among the completed"),
        pytest.param("a", {"requester": "SecondaryAMSP"}, True, id="the origin finds its outgoing Task by requester"),
        pytest.param("a", {"patient": "sa-p2"}, True, id="the origin finds it by its patient"),
        pytest.param("a", {"owner": "TertiaryAMSP"}, False, id="not owned by another hospital"),
    ],
)  # fmt: skip
def test_task_search_parameters(
    referred: dict[str, Any], who: str, params: dict[str, str], expected: bool
) -> None:
    found = referred[who].get("/fhir/Task", params=params).json()
    ids = {e["resource"]["identifier"][0]["value"] for e in found["entry"]}
    assert (referred["referral_id"] in ids) is expected


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(b"{not json", 400, id="a body that is not JSON"),
        pytest.param({"resourceType": "Task", "status": "bogus", "intent": "order"}, 400, id="a Task that is not valid FHIR"),
        pytest.param({"resourceType": "Patient"}, 400, id="another resource type"),
        pytest.param("TASK|cancelled", 400, id="a move the referral does not have"),
        pytest.param("TASK|rejected", 400, id="a rejection without its reason code"),
        pytest.param("TASK|completed", 400, id="completing before accepting"),
    ],
)  # fmt: skip
def test_a_bad_task_update_gets_an_operation_outcome_and_changes_nothing(
    referred: dict[str, Any], web_backend: WebBackend, body: Any, status: int
) -> None:
    b, task = referred["b"], referred["task"]
    if isinstance(body, str):
        body = {**task, "status": body.split("|")[1], "output": [{"type": {"text": "feedback"}, "valueString": "出院"}]}  # fmt: skip
        if body["status"] != "completed":
            body.pop("output")
    before = chain(web_backend, referred["referral_id"])
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = b.put(f"/fhir/Task/{task['id']}", content=content, headers={"Content-Type": FHIR})
    assert answer.status_code == status, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert chain(web_backend, referred["referral_id"]) == before
    assert b.get(f"/fhir/Task/{task['id']}").json()["status"] == "requested"


def test_another_hospital_gets_not_found_for_the_task(
    referred: dict[str, Any], web_backend: WebBackend, web_app: Any
) -> None:
    other = his(web_app, web_backend, "doctor.tertiarya")
    task = referred["task"]
    before = chain(web_backend, referred["referral_id"])
    assert other.get(f"/fhir/Task/{task['id']}").status_code == 404
    answer = other.put(f"/fhir/Task/{task['id']}", json={**task, "status": "accepted"})
    assert (answer.status_code, answer.json()["resourceType"]) == (404, "OperationOutcome")
    assert chain(web_backend, referred["referral_id"]) == before
    assert other.get("/fhir/Task", params={"foo": "bar"}).status_code == 400


def test_a_his_accepts_and_completes_the_referral_as_task_updates(
    referred: dict[str, Any], web_backend: WebBackend
) -> None:
    b, task = referred["b"], referred["task"]
    accepted = b.put(f"/fhir/Task/{task['id']}", json={**task, "status": "accepted"})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    assert int(accepted.headers["X-Block"]) > 0
    patch = [{"op": "replace", "path": "/status", "value": "completed"},
             {"op": "add", "path": "/output", "value": [{"type": {"text": "discharge summary"},
                                                          "valueString": "血压控制良好，转回社区"}]}]  # fmt: skip
    completed = b.patch(f"/fhir/Task/{task['id']}", content=json.dumps(patch),
                        headers={"Content-Type": "application/json-patch+json"})  # fmt: skip
    assert completed.status_code == 200, completed.text
    on_chain = chain(web_backend, referred["referral_id"])
    assert [h["status"] for h in on_chain["history"]] == ["REFERRED", "ACCEPTED", "COMPLETED"]
    assert on_chain["history"][-1]["txId"] == completed.headers["X-Transaction-Id"]


def test_a_his_creates_a_referral_by_posting_a_task_and_service_request(
    referred: dict[str, Any], web_backend: WebBackend
) -> None:
    a = referred["a"]
    visit = a.post(f"{API}/visits", json={"patient_id": "sa-p3"}).json()
    encounter = {"reference": f"Encounter/{visit['encounter_id']}"}
    request = {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
               "subject": {"reference": "Patient/sa-p3"}, "encounter": encounter,
               "priority": "stat", "note": [{"text": "胸痛待查"}],
               "code": {"coding": [{"system": "urn:medalliance:cs:department", "code": "03.04"}]},
               "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10",
                                            "code": "R07.4", "display": "胸痛"}]}]}  # fmt: skip
    task = {"resourceType": "Task", "status": "requested", "intent": "order",
            "owner": {"identifier": {"system": "urn:medalliance:id:msp", "value": "TertiaryBMSP"}}}  # fmt: skip
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"resource": task}, {"resource": request}]}  # fmt: skip
    created = a.post("/fhir", json=bundle)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "draft"
    assert a.get(created.headers["Location"].removeprefix("http://testserver")).status_code == 200
    applications = {x["application_id"]: x for x in a.get(f"{API}/applications").json()}
    assert any(x["visit_no"] == visit["visit_no"] for x in applications.values())
    broken = a.post("/fhir", json={**bundle, "entry": [{"resource": task}]})
    assert (broken.status_code, broken.json()["resourceType"]) == (400, "OperationOutcome")
