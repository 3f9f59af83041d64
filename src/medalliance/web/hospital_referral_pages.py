"""The hospital's referral pages: outgoing (applications and referrals), incoming (updated live
when /events announces a referral or a decision), one referral with its timeline and the actions
open to the reader (accept, reject with a reason, complete with the feedback, refer back down).

Every list first runs the hospital's connector (the import of new incoming referrals into the
store, app/connector.py), so what the live event announced is there. Another hospital's referral
is 404 on every route (the services never look it up on the chain). Stable element ids and
`data-testid`s are documented in docs/web.md ("Hospital pages") for the browser tests.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from medalliance.alliance.referral import REJECTION_REASONS
from medalliance.web.core_routes import backend_of
from medalliance.web.hospital_pages import (
    REFUSED,
    HospitalStaff,
    done,
    form_of,
    referral_form_page,
    run,
)
from medalliance.web.i18n import N_
from medalliance.web.services import hospital_holds as holds
from medalliance.web.services import hospital_referral_views as views
from medalliance.web.services import hospital_referrals as referrals
from medalliance.web.services.hospital_forms import (
    ApplicationChoice,
    CompleteForm,
    FormInvalid,
    RejectForm,
    parse_form,
)
from medalliance.web.templating import render

router = APIRouter(prefix="/hospital", include_in_schema=False)
# The chain events after which the incoming list is fetched again (htmx, web/static/app.js).
LIVE = ", ".join(
    f"alliance:{name} from:body"
    for name in ("ReferralCreated", "ReferralAccepted", "ReferralRejected", "ReferralCompleted")
)


@router.get("/incoming")
async def incoming(request: Request, staff: HospitalStaff, offset: int = 0) -> HTMLResponse:
    page = await _synced_page(request, staff, "incoming", offset)
    context = {"page": page, "live": LIVE, "names": org_names(request)}
    return render(request, "hospital/incoming.html", context, staff)


@router.post("/incoming/sync")
async def sync_now(request: Request, staff: HospitalStaff) -> Response:
    """The import button: run the hospital's connector now, then show the list."""
    await form_of(request)
    await run(referrals.sync_referrals, backend_of(request), staff)
    return RedirectResponse("/hospital/incoming", status_code=303)


@router.get("/incoming/rows")
async def incoming_rows(request: Request, staff: HospitalStaff, offset: int = 0) -> HTMLResponse:
    """The incoming list's rows alone: what htmx swaps in on a live event."""
    page = await _synced_page(request, staff, "incoming", offset)
    context = {"page": page, "names": org_names(request)}
    return render(request, "hospital/incoming_rows.html", context, staff)


@router.get("/outgoing")
async def outgoing(request: Request, staff: HospitalStaff, offset: int = 0) -> HTMLResponse:
    page = await _synced_page(request, staff, "outgoing", offset)
    applications = await run(views.applications, backend_of(request), staff)
    context = {"page": page, "applications": applications, "names": org_names(request)}
    return render(request, "hospital/outgoing.html", context, staff)


@router.get("/outgoing/applications")
async def application_rows(request: Request, staff: HospitalStaff) -> HTMLResponse:
    """The applications table's rows alone: swapped in when a commission's decision arrives."""
    applications = await run(views.applications, backend_of(request), staff)
    context = {"applications": applications, "names": org_names(request)}
    return render(request, "hospital/application_rows.html", context, staff)


@router.post("/applications/{application_id}/refer")
async def refer(request: Request, staff: HospitalStaff, application_id: str) -> Response:
    backend = backend_of(request)
    try:
        choice = parse_form(ApplicationChoice, {"application_id": application_id})
        started = await run(referrals.refer_with_application, backend, staff, choice)
    except REFUSED as exc:
        page = await _synced_page(request, staff, "outgoing", 0)
        applications = await run(views.applications, backend, staff)
        context = {"page": page, "applications": applications, "refusal": str(exc),
                   "names": org_names(request)}  # fmt: skip
        return render(request, "hospital/outgoing.html", context, staff, status_code=exc.status.http)  # fmt: skip
    links = [(f"/hospital/referrals/{started.referral_id}", "Open the referral")]
    return done(request, staff, "Patient referred", started, links)


@router.get("/referrals/{referral_id}")
async def referral_page(request: Request, staff: HospitalStaff, referral_id: str) -> HTMLResponse:
    return await _detail(request, staff, referral_id)


@router.post("/referrals/{referral_id}/accept")
async def accept(request: Request, staff: HospitalStaff, referral_id: str) -> Response:
    await form_of(request)
    try:
        written = await run(referrals.accept_referral, backend_of(request), staff, referral_id)
    except REFUSED as exc:
        return await _detail(request, staff, referral_id, {"form": str(exc)}, exc.status.http)
    return _after(request, staff, "Referral accepted", written, referral_id)


@router.post("/referrals/{referral_id}/reject")
async def reject(request: Request, staff: HospitalStaff, referral_id: str) -> Response:
    data = await form_of(request)
    try:
        form = parse_form(RejectForm, data)
        written = await run(referrals.reject_referral, backend_of(request), staff, referral_id, form)  # fmt: skip
    except FormInvalid as exc:
        return await _detail(request, staff, referral_id, exc.fields, 400, data)
    except REFUSED as exc:
        return await _detail(request, staff, referral_id, {"form": str(exc)}, exc.status.http, data)  # fmt: skip
    return _after(request, staff, "Referral rejected", written, referral_id)


@router.post("/referrals/{referral_id}/complete")
async def complete(request: Request, staff: HospitalStaff, referral_id: str) -> Response:
    data = await form_of(request)
    try:
        form = parse_form(CompleteForm, data)
        completed = await run(referrals.complete_referral, backend_of(request), staff, referral_id, form)  # fmt: skip
    except FormInvalid as exc:
        return await _detail(request, staff, referral_id, exc.fields, 400, data)
    except REFUSED as exc:
        return await _detail(request, staff, referral_id, {"form": str(exc)}, exc.status.http, data)  # fmt: skip
    return _after(request, staff, "Referral completed", completed, referral_id)


@router.post("/referrals/{referral_id}/cancel-hold")
async def cancel_hold(request: Request, staff: HospitalStaff, referral_id: str) -> Response:
    return await _hold_step(request, staff, referral_id, holds.cancel_hold, N_("Slot given back"))


@router.post("/referrals/{referral_id}/no-show")
async def no_show(request: Request, staff: HospitalStaff, referral_id: str) -> Response:
    return await _hold_step(request, staff, referral_id, holds.no_show, N_("No-show recorded"))


async def _hold_step(
    request: Request, staff: Any, referral_id: str, step: Any, title: str
) -> Response:
    await form_of(request)
    try:
        written = await run(step, backend_of(request), staff, referral_id)
    except REFUSED as exc:
        return await _detail(request, staff, referral_id, {"form": str(exc)}, exc.status.http)
    return _after(request, staff, title, written, referral_id)


@router.get("/referrals/{referral_id}/return")
async def return_form(request: Request, staff: HospitalStaff, referral_id: str) -> HTMLResponse:
    """The referral form, filled in for referring this incoming referral's patient back down."""
    values: dict[str, Any] = await run(
        views.return_referral_defaults, backend_of(request), staff, referral_id
    )
    return await referral_form_page(request, staff, {**values, "records": []}, {})


def org_names(request: Request) -> dict[str, str]:
    """MSP id → organisation name, for showing hospitals by name."""
    return {o.msp_id: o.name for o in backend_of(request).config.organizations}


def _after(
    request: Request, staff: Any, title: str, written: Any, referral_id: str
) -> HTMLResponse:
    return done(request, staff, title, written,
                [(f"/hospital/referrals/{referral_id}", "Back to the referral")])  # fmt: skip


async def _synced_page(request: Request, staff: Any, side: str, offset: int) -> views.ReferralPage:
    backend = backend_of(request)
    await run(referrals.sync_referrals, backend, staff)
    return await run(views.referral_page, backend, staff, side, offset, 50)


async def _detail(
    request: Request,
    staff: Any,
    referral_id: str,
    errors: dict[str, str] | None = None,
    status: int = 200,
    values: dict[str, Any] | None = None,
) -> HTMLResponse:
    backend = backend_of(request)
    await run(referrals.sync_referrals, backend, staff)
    detail = await run(views.referral_detail, backend, staff, referral_id)
    hold = await run(holds.referral_hold, backend, staff, referral_id)
    context = {"detail": detail, "hold": hold, "errors": errors or {}, "values": values or {},
               "reasons": REJECTION_REASONS, "names": org_names(request)}  # fmt: skip
    return render(request, "hospital/referral.html", context, staff, status_code=status)
