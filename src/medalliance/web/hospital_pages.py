"""The hospital's pages (`/hospital/...`) for doctors and referral clerks: home with the referral
chart, patients, a patient's record, visit registration and the referral application form.

A shell (style.md §9): a route reads its form, calls one service function (web/services/
hospital_*.py) in the thread pool, and renders a template of templates/hospital/. A form with
field errors comes back with the errors beside the fields and what was typed; a contract's
refusal shows the contract's words on the page it came from; a write shows its transaction id and
block (templates/hospital/done.html). Patient searches are posted, never put in a URL.
Referral lists, a referral's page and its actions are web/hospital_referral_pages.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from medalliance.errors import Conflict, InvalidArgument, PreconditionFailed
from medalliance.hospital.code_systems import DEPARTMENTS
from medalliance.node.config import HOSPITAL_TYPES
from medalliance.web.auth import require_role
from medalliance.web.core_routes import backend_of
from medalliance.web.services import hospital_holds as holds
from medalliance.web.services import hospital_patients as patients
from medalliance.web.services import hospital_referrals as referrals
from medalliance.web.services.hospital_forms import (
    URGENCIES,
    FormInvalid,
    PatientSearch,
    ReferralForm,
    VisitForm,
    parse_form,
)
from medalliance.web.staff import Staff
from medalliance.web.templating import render

router = APIRouter(prefix="/hospital", include_in_schema=False)
HospitalStaff = Annotated[Staff, Depends(require_role("doctor", "clerk"))]
T = TypeVar("T")
REFUSED = (Conflict, PreconditionFailed)  # shown on the page: a contract's refusal in its words


async def run(fn: Callable[..., T], *args: Any) -> T:
    """A service call off the event loop (services block on the alliance and the store)."""
    return await run_in_threadpool(fn, *args)


async def form_of(request: Request, lists: tuple[str, ...] = ()) -> dict[str, Any]:
    """The posted form without the CSRF field; fields in `lists` as lists (checkboxes)."""
    form = await request.form()
    data: dict[str, Any] = {k: v for k, v in form.items() if k != "csrf_token" and k not in lists}
    for name in lists:
        data[name] = [str(v) for v in form.getlist(name)]
    return data


def done(
    request: Request, staff: Staff, title: str, written: Any, links: list[tuple[str, str]]
) -> HTMLResponse:
    """The page after a write: what was done, its transaction id and block, where to go next."""
    return render(
        request, "hospital/done.html",
        {"title": title, "written": written, "links": links}, staff,
    )  # fmt: skip


def hospitals(request: Request, staff: Staff) -> list[tuple[str, str]]:
    """(MSP id, name) of the other hospitals of the alliance: referral targets."""
    config = backend_of(request).config
    return [(o.msp_id, o.name) for o in config.organizations
            if o.type in HOSPITAL_TYPES and o.msp_id != staff.msp_id]  # fmt: skip


@router.get("/")
def home(request: Request, staff: HospitalStaff) -> HTMLResponse:
    return render(request, "hospital/home.html", {}, staff)


@router.get("/patients")
async def patient_list(request: Request, staff: HospitalStaff) -> HTMLResponse:
    rows = await run(patients.search_patients, backend_of(request), staff, PatientSearch())
    return render(request, "hospital/patients.html", {"rows": rows, "search": {}, "errors": {}}, staff)  # fmt: skip


@router.post("/patients")
async def patient_search(request: Request, staff: HospitalStaff) -> HTMLResponse:
    data = await form_of(request)
    try:
        search = parse_form(PatientSearch, data)
    except FormInvalid as exc:
        context = {"rows": (), "search": data, "errors": exc.fields}
        return render(request, "hospital/patients.html", context, staff, status_code=400)
    rows = await run(patients.search_patients, backend_of(request), staff, search)
    return render(request, "hospital/patients.html", {"rows": rows, "search": data, "errors": {}}, staff)  # fmt: skip


@router.get("/patients/{patient_id}")
async def patient_page(request: Request, staff: HospitalStaff, patient_id: str) -> HTMLResponse:
    record = await run(patients.patient_record, backend_of(request), staff, patient_id)
    return render(request, "hospital/patient.html", {"record": record, "errors": {}}, staff)


@router.post("/visits")
async def register_visit(request: Request, staff: HospitalStaff) -> Response:
    data = await form_of(request)
    backend = backend_of(request)
    try:
        form = parse_form(VisitForm, data)
        registered = await run(patients.register_visit, backend, staff, form)
    except (InvalidArgument, Conflict, PreconditionFailed) as exc:
        patient_id = str(data.get("patient_id", ""))
        record = await run(patients.patient_record, backend, staff, patient_id)
        errors = exc.fields if isinstance(exc, FormInvalid) else {"form": str(exc)}
        return render(request, "hospital/patient.html", {"record": record, "errors": errors},
                      staff, status_code=exc.status.http)  # fmt: skip
    links = [(f"/hospital/patients/{data['patient_id']}/refer?visit={registered.visit_no}",
              "Apply for a referral"),
             (f"/hospital/patients/{data['patient_id']}", "Back to the patient")]  # fmt: skip
    return done(request, staff, "Visit registered", registered, links)


@router.get("/patients/{patient_id}/refer")
async def referral_form(
    request: Request, staff: HospitalStaff, patient_id: str, visit: str = ""
) -> HTMLResponse:
    """The referral application form for a patient (records and images as checkboxes)."""
    values = {"patient_id": patient_id, "visit_no": visit, "urgency": "routine",
              "direction": "UP", "records": []}  # fmt: skip
    return await referral_form_page(request, staff, values, {})


@router.post("/referrals")
async def apply(request: Request, staff: HospitalStaff) -> Response:
    """Apply for a referral (or refer back down where no approval is needed)."""
    data = await form_of(request, lists=("records",))
    try:
        form = parse_form(ReferralForm, data)
        started = await run(referrals.apply_for_referral, backend_of(request), staff, form)
    except FormInvalid as exc:
        return await referral_form_page(request, staff, data, exc.fields, status=400)
    except REFUSED as exc:
        return await referral_form_page(
            request, staff, data, {"form": str(exc)}, status=exc.status.http
        )
    if started.kind == "application":
        title = "Referral application submitted"
        links = [("/hospital/outgoing", "Outgoing referrals and applications")]
    else:
        title = "Patient referred"
        links = [(f"/hospital/referrals/{started.referral_id}", "Open the referral")]
    return done(request, staff, title, started, links)


async def referral_form_page(
    request: Request,
    staff: Staff,
    values: Mapping[str, Any],
    errors: Mapping[str, str],
    status: int = 200,
) -> HTMLResponse:
    patient_id = str(values.get("patient_id", ""))
    backend = backend_of(request)
    record = await run(patients.patient_record, backend, staff, patient_id)
    choices = await run(patients.record_choices, backend, staff, patient_id)
    slots = await run(holds.holdable_slots, backend, staff)
    context = {
        "record": record, "choices": choices, "values": values, "errors": errors,
        "hospitals": hospitals(request, staff), "departments": DEPARTMENTS,
        "urgencies": tuple(URGENCIES), "slots": slots,
    }  # fmt: skip
    return render(request, "hospital/referral_form.html", context, staff, status_code=status)
