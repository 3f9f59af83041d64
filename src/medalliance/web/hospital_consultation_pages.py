"""The hospital's pages for remote consultation (远程会诊, issue 19): the consultations this
hospital requested or was asked for, requesting one for a visit with the records to grant,
answering one (accept, decline, schedule, report), reading the verified report and closing. A
shell over web/services/hospital_consultations.py, like hospital_sharing_pages.py.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from medalliance.web.core_routes import backend_of
from medalliance.web.hospital_pages import REFUSED, HospitalStaff, done, form_of, hospitals, run
from medalliance.web.services import hospital_consultations as consulting
from medalliance.web.services.hospital_forms import FormInvalid, parse_form
from medalliance.web.templating import render

router = APIRouter(prefix="/hospital", include_in_schema=False)
PAGE = "/hospital/consultations"


@router.get("/consultations")
async def consultations_page(request: Request, staff: HospitalStaff) -> HTMLResponse:
    return await _page(request, staff, {}, {})


@router.post("/consultations")
async def request_consultation(request: Request, staff: HospitalStaff) -> Response:
    data = await form_of(request)
    data["record_ids"] = [r for r in str(data.get("record_ids", "")).split() if r]
    return await _write(request, staff, data, "Consultation requested",
                        lambda form: (consulting.request, form), consulting.ConsultationForm)  # fmt: skip


@router.post("/consultations/{consultation_id}/decide")
async def decide(request: Request, staff: HospitalStaff, consultation_id: str) -> Response:
    data = await form_of(request)
    return await _write(request, staff, data, "Consultation updated",
                        lambda form: (consulting.decide, consultation_id, form),
                        consulting.DecideForm)  # fmt: skip


@router.post("/consultations/{consultation_id}/report")
async def report(request: Request, staff: HospitalStaff, consultation_id: str) -> Response:
    data = await form_of(request)
    return await _write(request, staff, data, "Report submitted",
                        lambda form: (consulting.report, consultation_id, form),
                        consulting.ReportForm)  # fmt: skip


@router.get("/consultations/{consultation_id}/report")
async def report_page(request: Request, staff: HospitalStaff, consultation_id: str) -> Response:
    """The verified report; opening it is an access event on the ledger."""
    try:
        opened = await run(consulting.open_report, backend_of(request), staff, consultation_id)
    except REFUSED as exc:
        return await _page(request, staff, {}, {"form": str(exc)}, exc.status.http)
    context = {"report": opened}
    return render(request, "hospital/consultation_report.html", context, staff)


async def _write(
    request: Request, staff: Any, data: dict[str, Any], title: str, call: Any, model: Any
) -> Response:
    try:
        form = parse_form(model, data)
        service, *args = call(form)
        written = await run(service, backend_of(request), staff, *args)
    except FormInvalid as exc:
        return await _page(request, staff, data, exc.fields, 400)
    except REFUSED as exc:
        return await _page(request, staff, data, {"form": str(exc)}, exc.status.http)
    return done(request, staff, title, written, [(PAGE, "Back")])


async def _page(
    request: Request, staff: Any, values: dict[str, Any], errors: dict[str, str], status: int = 200
) -> HTMLResponse:
    context = {
        "consultations": await run(consulting.listed, backend_of(request), staff),
        "decline_reasons": consulting.DECLINE_REASONS,
        "hospitals": hospitals(request, staff), "values": values, "errors": errors,
    }  # fmt: skip
    return render(request, "hospital/consultations.html", context, staff, status_code=status)
