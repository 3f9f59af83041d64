"""Capacity held with a referral through the hospital's pages and JSON API, on the demo
alliance: the referral form offers the target's free slots; the referral made with the approved
application holds the chosen one in its own transaction; both hospitals see it, a third does not;
the target cannot cancel it nor record a no-show before its time; the origin gives it back."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from medalliance.web.backend import WebBackend
from tests.web.conftest import StaffClient

API = "/api/v1/hospital"
SLOTS = ["2030-01-10T09:00", "2030-01-10T10:00"]


def post(client: StaffClient, path: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(f"{API}{path}", json=body or {}, headers={"X-CSRF-Token": client.csrf_token})


def test_a_referral_holds_a_slot_picked_on_the_form(
    client_as: Callable[[str], StaffClient], web_backend: WebBackend
) -> None:
    owner, a, b, other = (client_as(u) for u in ("clerk.tertiaryb", "doctor.secondarya",
                                                 "doctor.tertiaryb", "doctor.secondaryb"))  # fmt: skip
    published = post(owner, "/resources", {"kind": "OUTPATIENT", "description": "Cardiology clinic", "slots": SLOTS})  # fmt: skip
    assert published.status_code == 200, published.text
    resource = published.json()["id"]
    offered = {s["value"]: s for s in a.get(f"{API}/holdable-slots").json()}
    choice = f"{resource}:{SLOTS[0]}"
    assert offered[choice]["care_type"] == "outpatient"
    # the form's slot picker lists it
    page = a.get("/hospital/patients/sa-p3/refer")
    assert 'data-testid="field-hold-slot"' in page.text
    assert f'value="{choice}"' in page.text

    visit = post(a, "/visits", {"patient_id": "sa-p3"}).json()
    form = {"patient_id": "sa-p3", "visit_no": visit["visit_no"], "target": "TertiaryBMSP",
            "department": "03.04", "diagnosis_code": "I20.0", "diagnosis_display": "不稳定型心绞痛",
            "purpose": "门诊评估", "hold_slot": choice}  # fmt: skip
    bad = post(a, "/referrals", {**form, "hold_slot": "no slot"})
    assert (bad.status_code, "hold_slot" in bad.json()["message"]) == (422, True)
    applied = post(a, "/referrals", form).json()
    web_backend.network.submit("DistrictHCMSP", "Reviewer1", "report", "ReviewApplication",
                               applied["application_id"], "APPROVED", "", "")  # fmt: skip
    referred = post(a, f"/applications/{applied['application_id']}/refer")
    assert referred.status_code == 200, referred.text
    referral_id = referred.json()["referral_id"]

    raw = web_backend.network.evaluate("CityHCMSP", "Auditor1", "referral", "GetReferral", referral_id)  # fmt: skip
    assert json.loads(raw)["careType"] == "outpatient"
    for reader in (a, b):
        hold = reader.get(f"{API}/referrals/{referral_id}/hold").json()
        assert (hold["status"], hold["slot"]) == ("HELD", SLOTS[0])
    assert other.get(f"{API}/referrals/{referral_id}/hold").status_code == 403
    slots = b.get(f"{API}/resources/{resource}/slots").json()
    assert slots[0] == {"slot": SLOTS[0], "state": "HELD", "referralId": referral_id, "holder": "SecondaryAMSP"}  # fmt: skip
    assert choice not in {s["value"] for s in other.get(f"{API}/holdable-slots").json()}

    # hostile: the target cancels, or records a no-show before the slot's time
    assert post(b, f"/referrals/{referral_id}/cancel-hold").status_code == 403
    early = post(owner, f"/referrals/{referral_id}/no-show")
    assert early.status_code == 409, early.text
    assert a.get(f"{API}/referrals/{referral_id}/hold").json()["status"] == "HELD"
    # the referral's page shows the hold and each side's action; the origin gives it back there
    b.get(f"{API}/referrals", params={"side": "incoming"})  # imports it
    target_page = b.get(f"/hospital/referrals/{referral_id}").text
    assert 'data-testid="no-show"' in target_page
    assert 'data-testid="cancel-hold"' not in target_page
    assert 'data-testid="cancel-hold"' in a.get(f"/hospital/referrals/{referral_id}").text
    released = a.post_form(f"/hospital/referrals/{referral_id}/cancel-hold")
    assert 'data-testid="tx-id"' in released.text  # type: ignore[attr-defined]
    assert a.get(f"{API}/referrals/{referral_id}/hold").json()["status"] == "CANCELLED"
    assert a.get(f"{API}/resources/{resource}/slots").json()[0] == {"slot": SLOTS[0], "state": "FREE"}  # fmt: skip
