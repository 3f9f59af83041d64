"""The hospital's pages for resource and result sharing and for settlement: the alliance's open
resources and this hospital's bookings, publishing a resource, booking a slot, deciding a booking,
recording an examination result for recognition (issue 19); the benefit-sharing agreements, this month's balance and each
agreement's statement. A shell over web/services/hospital_sharing.py, like hospital_pages.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from medalliance.alliance.resource import DECLINE_REASONS, KINDS
from medalliance.errors import InvalidArgument, MedallianceError
from medalliance.web.core_routes import backend_of
from medalliance.web.hospital_pages import REFUSED, HospitalStaff, done, form_of, hospitals, run
from medalliance.web.services import hospital_recognition as recognition
from medalliance.web.services import hospital_settlement as settlement
from medalliance.web.services import hospital_sharing as sharing
from medalliance.web.services.hospital_forms import FormInvalid, parse_form
from medalliance.web.templating import render

router = APIRouter(prefix="/hospital", include_in_schema=False)
SHARING, SETTLEMENT = "/hospital/sharing", "/hospital/settlement"


@router.get("/sharing")
async def sharing_page(
    request: Request, staff: HospitalStaff, recognised_visit: str = "", recognised_code: str = ""
) -> HTMLResponse:
    """The page; with `recognised_visit` and `recognised_code`, also "already done?" (issue 19)
    for the patient of that visit of this hospital."""
    query = {"visit": recognised_visit, "code": recognised_code}
    return await _sharing(request, staff, {}, {}, recognised=query)


@router.post("/sharing/resources")
async def publish(request: Request, staff: HospitalStaff) -> Response:
    data = await form_of(request)
    data["slots"] = [s for s in str(data.get("slots", "")).split() if s]
    return await _write(request, staff, sharing.ResourceForm, sharing.publish_resource, data,
                        "Resource published", SHARING, _sharing)  # fmt: skip


@router.post("/sharing/bookings")
async def book(request: Request, staff: HospitalStaff) -> Response:
    return await _write(request, staff, sharing.BookingForm, sharing.request_booking,
                        await form_of(request), "Booking requested", SHARING, _sharing)  # fmt: skip


@router.post("/sharing/bookings/decide")
async def decide(request: Request, staff: HospitalStaff) -> Response:
    data = await form_of(request)
    backend = backend_of(request)
    try:
        written = await run(sharing.decide_booking, backend, staff, str(data.get("booking_id", "")),
                            data.get("decision") == "confirm", str(data.get("reason_code", "")))  # fmt: skip
    except FormInvalid as exc:
        return await _sharing(request, staff, data, exc.fields, 400)
    except (*REFUSED, InvalidArgument) as exc:
        return await _sharing(request, staff, data, {"form": str(exc)}, exc.status.http)
    return done(request, staff, "Booking decided", written, [(SHARING, "Back")])


@router.post("/sharing/results")
async def record_result(request: Request, staff: HospitalStaff) -> Response:
    """Register a result of this hospital for recognition by the others (issue 19)."""
    data = await form_of(request)
    return await _write(request, staff, recognition.RecordResultForm, recognition.record_result,
                        data, "Result recorded", SHARING, _sharing)  # fmt: skip


@router.get("/settlement")
async def settlement_page(request: Request, staff: HospitalStaff, period: str = "") -> HTMLResponse:
    return await _settlement(request, staff, {"period": period}, {})


@router.post("/settlement/agreements")
async def propose(request: Request, staff: HospitalStaff) -> Response:
    data = await form_of(request)
    try:
        data = {**data, "up_cents": _cents(data.get("up")), "down_cents": _cents(data.get("down"))}
    except ValueError:
        return await _settlement(request, staff, data, {"up": "an amount like 50.00"}, 400)
    data.pop("up", None), data.pop("down", None)
    return await _write(request, staff, sharing.AgreementForm, sharing.propose_agreement, data,
                        "Agreement proposed", SETTLEMENT, _settlement)  # fmt: skip


@router.post("/settlement/agreements/{agreement_id}/accept")
async def accept(request: Request, staff: HospitalStaff, agreement_id: str) -> Response:
    await form_of(request)
    try:
        written = await run(sharing.accept_agreement, backend_of(request), staff, agreement_id)
    except REFUSED as exc:
        return await _settlement(request, staff, {}, {"form": str(exc)}, exc.status.http)
    return done(request, staff, "Agreement accepted", written, [(SETTLEMENT, "Back")])


@router.post("/settlement/agreements/{agreement_id}/declare")
async def declare(request: Request, staff: HospitalStaff, agreement_id: str) -> Response:
    """The paying clerk declares a completed referral's amount (in yuan on the form)."""
    data = await form_of(request)
    try:
        cents = _cents(data.get("amount"))
    except ValueError:
        return await _settlement(request, staff, data, {"amount": "an amount like 1234.56"}, 400)
    fields = {"referral_id": data.get("referral_id", ""), "amount_cents": cents}
    try:
        form = parse_form(settlement.DeclareForm, fields)
        written = await run(
            settlement.declare_amount, backend_of(request), staff, agreement_id, form
        )
    except FormInvalid as exc:
        return await _settlement(request, staff, data, exc.fields, 400)
    except REFUSED as exc:
        return await _settlement(request, staff, data, {"form": str(exc)}, exc.status.http)
    return done(request, staff, "Amount declared", written, [(SETTLEMENT, "Back")])


@router.post("/settlement/agreements/{agreement_id}/sign")
async def sign(request: Request, staff: HospitalStaff, agreement_id: str) -> Response:
    data = await form_of(request)
    period = str(data.get("period", ""))
    try:
        written = await run(
            settlement.sign_statement, backend_of(request), staff, agreement_id, period
        )
    except FormInvalid as exc:
        return await _settlement(request, staff, {}, exc.fields, 400)
    except REFUSED as exc:
        return await _settlement(request, staff, data, {"form": str(exc)}, exc.status.http)
    return done(
        request, staff, "Statement signed", written, [(f"{SETTLEMENT}?period={period}", "Back")]
    )


async def _write(
    request: Request, staff: Any, model: Any, service: Any, data: dict[str, Any], title: str,
    back: str, page: Any,
) -> Response:  # fmt: skip
    try:
        form = parse_form(model, data)
        written = await run(service, backend_of(request), staff, form)
    except FormInvalid as exc:
        return await page(request, staff, data, exc.fields, 400)  # type: ignore[no-any-return]
    except REFUSED as exc:
        return await page(request, staff, data, {"form": str(exc)}, exc.status.http)  # type: ignore[no-any-return]
    return done(request, staff, title, written, [(back, "Back")])


async def _sharing(
    request: Request, staff: Any, values: dict[str, Any], errors: dict[str, str], status: int = 200,
    recognised: dict[str, str] | None = None,
) -> HTMLResponse:  # fmt: skip
    backend = backend_of(request)
    query, found = recognised or {}, None
    if query.get("visit") and query.get("code"):
        try:
            found = await run(recognition.recognised_for_visit, backend, staff, query["visit"],
                              query["code"], "")  # fmt: skip
        except MedallianceError as exc:  # a refusal's words (never patient data) on the page
            errors, status = {**errors, "recognised": str(exc)}, exc.status.http
    context = {
        "recognised_query": query, "recognised": found,
        "resources": await run(sharing.open_resources, backend, staff, ""),
        "bookings": await run(sharing.my_bookings, backend, staff),
        "kinds": KINDS, "decline_reasons": DECLINE_REASONS,
        "hospitals": hospitals(request, staff), "values": values, "errors": errors,
    }  # fmt: skip
    return render(request, "hospital/sharing.html", context, staff, status_code=status)


async def _settlement(
    request: Request, staff: Any, values: dict[str, Any], errors: dict[str, str], status: int = 200
) -> HTMLResponse:
    backend = backend_of(request)
    period = str(values.get("period") or "") or dt.datetime.now(dt.UTC).strftime("%Y-%m")
    if not sharing.PERIOD.fullmatch(period):
        period, errors = dt.datetime.now(dt.UTC).strftime("%Y-%m"), {**errors, "period": "YYYY-MM"}
    agreements = await run(sharing.agreements, backend, staff)
    statements = [await run(sharing.statement, backend, staff, a.agreement_id, period)
                  for a in agreements if a.status == "ACTIVE"]  # fmt: skip
    context = {
        "agreements": agreements, "statements": statements, "period": period,
        "balance": await run(sharing.balance, backend, staff, period),
        "hospitals": hospitals(request, staff), "values": values, "errors": errors,
    }  # fmt: skip
    return render(request, "hospital/settlement.html", context, staff, status_code=status)


def _cents(value: Any) -> int:
    amount = round(float(str(value or "0")) * 100)
    if amount < 0:
        raise ValueError("negative")
    return amount
