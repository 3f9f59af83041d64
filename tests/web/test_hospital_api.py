"""The doctor's referral path through the hospital JSON API (paper fig. 5) on the demo alliance,
each step's transaction id and block; and what a hostile or careless hospital user tries: another
hospital's referral or patient, a duplicate accept, the clerk acting as doctor, a malformed form.
Every refusal is checked to have changed nothing on the chain or in the store."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from medalliance.app.demo_records import example_bundle
from medalliance.hospital.bundle_import import import_bundle
from medalliance.web.backend import WebBackend
from medalliance.web.services.hospital_access import access_events
from tests.web.conftest import StaffClient, login

API = "/api/v1/hospital"


def post(client: StaffClient, path: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(f"{API}{path}", json=body or {}, headers={"X-CSRF-Token": client.csrf_token})


def on_chain(backend: WebBackend, referral_id: str) -> dict[str, Any]:
    raw = backend.network.evaluate("CityHCMSP", "Auditor1", "referral", "GetReferral", referral_id)
    return dict(json.loads(raw))


@pytest.fixture(scope="module")
def path(web_backend: WebBackend, web_app: Any) -> dict[str, Any]:
    """The referral path run once through the API; what each step answered."""

    def client(username: str) -> StaffClient:
        made = StaffClient(web_app)
        assert login(made, username).status_code == 303  # type: ignore[attr-defined]
        made.csrf_token = made.get("/api/v1/me").json()["csrf_token"]
        return made

    a, b = client("doctor.secondarya"), client("doctor.tertiaryb")
    found = post(a, "/patients/search", {"identifier": ""}).json()
    patient_id = "sa-p2"  # examples/fhir/secondary-hospital-a.json, not in the demo's referral
    assert patient_id in {p["id"] for p in found}
    visit = post(a, "/visits", {"patient_id": patient_id}).json()
    choices = a.get(f"{API}/patients/{patient_id}/records").json()
    form = {
        "patient_id": patient_id, "visit_no": visit["visit_no"], "target": "TertiaryBMSP",
        "department": "03.04", "urgency": "emergency", "diagnosis_code": "I21.0",
        "diagnosis_display": "急性前壁心肌梗死", "purpose": "急诊PCI",
        "records": [c["reference"] for c in choices if c["kind"] in ("Condition", "Observation")],
    }  # fmt: skip
    applied = post(a, "/referrals", form).json()
    assert "application_id" in applied, (applied, found, visit)
    web_backend.network.submit("DistrictHCMSP", "Reviewer1", "report", "ReviewApplication",
                               applied["application_id"], "APPROVED", "", "")  # fmt: skip
    referred = post(a, f"/applications/{applied['application_id']}/refer").json()
    incoming = b.get(f"{API}/referrals", params={"side": "incoming"}).json()
    accepted = post(b, f"/referrals/{referred['referral_id']}/accept").json()
    return {"a": a, "b": b, "patient_id": patient_id, "visit": visit, "form": form,
            "applied": applied, "referred": referred, "incoming": incoming,
            "accepted": accepted}  # fmt: skip


def test_each_step_of_the_doctors_path_names_its_transaction_and_block(
    path: dict[str, Any], web_backend: WebBackend
) -> None:
    steps = [path["visit"], path["applied"], path["referred"], path["accepted"]]
    assert all(len(s["tx_id"]) == 64 and s["block"] > 0 for s in steps), steps
    blocks = [s["block"] for s in steps]
    assert blocks == sorted(blocks)
    assert path["applied"]["kind"] == "application"
    referral = on_chain(web_backend, path["referred"]["referral_id"])
    assert (referral["status"], referral["fromHospital"], referral["toHospital"]) == (
        "ACCEPTED", "SecondaryAMSP", "TertiaryBMSP",
    )  # fmt: skip
    rows = [r["referral_id"] for r in path["incoming"]["rows"]]
    assert path["referred"]["referral_id"] in rows


def test_the_timeline_names_every_step_with_its_block(path: dict[str, Any]) -> None:
    referral_id = path["referred"]["referral_id"]
    for side in ("a", "b"):
        detail = path[side].get(f"{API}/referrals/{referral_id}").json()
        steps = {s["status"]: s for s in detail["steps"]}
        assert steps["REFERRED"]["block"] == path["referred"]["block"]
        assert steps["ACCEPTED"]["block"] == path["accepted"]["block"]
    assert path["b"].get(f"{API}/referrals/{referral_id}").json()["actions"] == ["complete"]


def test_a_second_accept_is_refused_in_the_contracts_words_and_changes_nothing(
    path: dict[str, Any], web_backend: WebBackend
) -> None:
    referral_id = path["referred"]["referral_id"]
    before = on_chain(web_backend, referral_id)
    again = post(path["b"], f"/referrals/{referral_id}/accept")
    assert again.status_code == 409
    assert "is ACCEPTED" in again.json()["message"]
    assert on_chain(web_backend, referral_id) == before


@pytest.mark.parametrize(
    ("username", "status"),
    [
        pytest.param("doctor.secondaryb", 404, id="another hospital's doctor gets not found"),
        pytest.param("doctor.tertiarya", 404, id="another tertiary hospital gets not found"),
        pytest.param("clerk.tertiaryb", 403, id="the target's clerk may not act as its doctor"),
    ],
)
def test_others_cannot_open_or_act_on_a_referral(
    path: dict[str, Any], web_backend: WebBackend, client_as: Callable[[str], StaffClient],
    username: str, status: int,
) -> None:  # fmt: skip
    referral_id = path["referred"]["referral_id"]
    before = on_chain(web_backend, referral_id)
    client = client_as(username)
    if status == 404:  # the same answer as for a referral that does not exist: nothing leaks
        for url in (f"{API}/referrals/{{}}", "/hospital/referrals/{}"):
            found, missing = (client.get(url.format(r)) for r in (referral_id, "REF-NONE"))
            assert found.status_code == missing.status_code == 404
            assert found.text.replace(referral_id, "X") == missing.text.replace("REF-NONE", "X")
    feedback = {"feedback": "出院", "title": "出院小结"}
    assert post(client, f"/referrals/{referral_id}/complete", feedback).status_code == status
    assert on_chain(web_backend, referral_id) == before


def test_another_hospital_cannot_read_or_enumerate_our_patients(
    path: dict[str, Any], client_as: Callable[[str], StaffClient], web_backend: WebBackend
) -> None:
    import_bundle(web_backend.store("SecondaryBMSP"), example_bundle("SecondaryHospitalB") or {})
    other = client_as("doctor.secondaryb")
    assert other.get(f"{API}/patients/{path['patient_id']}").status_code == 404
    assert other.get(f"{API}/patients/{path['patient_id']}/records").status_code == 404
    theirs = {p["id"] for p in post(other, "/patients/search", {"name": ""}).json()}
    ours = {p["id"] for p in post(path["a"], "/patients/search", {"name": ""}).json()}
    assert theirs, "SecondaryHospitalB has patients of its own"
    assert not theirs & ours


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"diagnosis_code": "heart attack"}, "diagnosis_code", id="a diagnosis that is not ICD-10"),
        pytest.param({"department": "99"}, "department", id="a department not in the list"),
        pytest.param({"urgency": "whenever"}, "urgency", id="an urgency not in the list"),
        pytest.param({"records": ["../etc/passwd"]}, "records", id="a record that is not Type/id"),
        pytest.param({"target": "SecondaryAMSP"}, "target", id="our own hospital as the target"),
        pytest.param({"visit_no": "V-NOT-REGISTERED"}, "visit_no", id="a visit not on the chain"),
    ],
)  # fmt: skip
def test_a_bad_referral_form_is_refused_by_field_and_applies_for_nothing(
    path: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    a = path["a"]
    before = a.get(f"{API}/applications").json()
    refused = post(a, "/referrals", {**path["form"], **change})
    assert refused.status_code in (400, 422)
    assert field in refused.json()["message"]
    assert a.get(f"{API}/applications").json() == before


def test_a_malformed_id_in_a_path_is_a_clear_400(path: dict[str, Any]) -> None:
    refused = post(path["a"], "/applications/a:b/refer")
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid")
    assert "application_id" in refused.json()["message"]


def test_viewing_a_patients_record_is_an_access_event_of_the_hospitals_log(
    path: dict[str, Any], web_backend: WebBackend
) -> None:
    store = web_backend.store("SecondaryAMSP")
    reference = f"Patient/{path['patient_id']}"
    before = len(access_events(store, reference))
    assert path["a"].get(f"{API}/patients/{path['patient_id']}").status_code == 200
    logged = access_events(store, reference)
    assert len(logged) == before + 1
    assert (logged[-1]["user"], logged[-1]["identity"], logged[-1]["view"]) == (
        "doctor.secondarya", "User1", "patient record",
    )  # fmt: skip


def test_a_rejection_with_a_sealed_note_returns_the_patient_to_the_origin(
    path: dict[str, Any], web_backend: WebBackend
) -> None:
    a, b = path["a"], path["b"]
    visit = post(a, "/visits", {"patient_id": "sa-p1"}).json()
    applied = post(a, "/referrals", {**path["form"], "patient_id": "sa-p1", "records": [],
                                     "visit_no": visit["visit_no"]}).json()  # fmt: skip
    web_backend.network.submit("DistrictHCMSP", "Reviewer1", "report", "ReviewApplication",
                               applied["application_id"], "APPROVED", "", "")  # fmt: skip
    referral_id = post(a, f"/applications/{applied['application_id']}/refer").json()["referral_id"]
    b.get(f"{API}/referrals", params={"side": "incoming"})  # imports it
    rejected = post(b, f"/referrals/{referral_id}/reject", {"reason_code": "OTHER", "note": "导管室检修"})  # fmt: skip
    assert rejected.status_code == 200, rejected.text
    on_chain_now = on_chain(web_backend, referral_id)
    assert (on_chain_now["status"], on_chain_now["reasonCode"]) == ("REJECTED", "OTHER")
    note = on_chain_now["noteRef"]
    for reader in ("SecondaryAMSP", "DistrictHCMSP"):
        authorised = web_backend.network.evaluate("CityHCMSP", "Auditor1", "records", "IsAuthorised", note, reader)  # fmt: skip
        assert json.loads(authorised) is True
    visit_now = json.loads(web_backend.network.evaluate(
        "SecondaryAMSP", "User1", "visit", "GetVisit", visit["visit_no"]))  # fmt: skip
    assert visit_now["hospital"] == "SecondaryAMSP"
    again = post(b, f"/referrals/{referral_id}/reject", {"reason_code": "NO_BED"})
    assert again.status_code == 400
    assert on_chain(web_backend, referral_id) == on_chain_now


@pytest.mark.parametrize("offset", [2**63, 10**30])
def test_an_offset_beyond_any_database_integer_is_refused_or_clamped(
    path: dict[str, Any], offset: int
) -> None:
    a = path["a"]
    refused = a.get(f"{API}/referrals", params={"side": "outgoing", "offset": str(offset)})
    assert refused.status_code == 422, refused.text
    page = a.get("/hospital/outgoing", params={"offset": str(offset)})
    assert page.status_code == 200, page.text
