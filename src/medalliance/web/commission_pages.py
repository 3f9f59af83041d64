"""The commission's pages (/commission/...): the reviewer's queue and rules, the auditor's
trace, access log, indicators, reports and alarms. A route parses the form, calls one service
function (web/services/commission_*.py) and renders; a refused write is shown in place with
the status of its error category, and nothing was written.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from medalliance.errors import MedallianceError
from medalliance.web.auth import require_role
from medalliance.web.backend import WebBackend
from medalliance.web.commission_labels import (
    ALARM_STATUS_LABELS,
    KIND_LABELS,
    REASON_LABELS,
    RULE_LABELS,
    STEP_STATUS_LABELS,
)
from medalliance.web.core_routes import backend_of
from medalliance.web.services import (
    commission_alarms,
    commission_audit,
    commission_review,
    commission_trace,
)
from medalliance.web.staff import Staff
from medalliance.web.templating import render

router = APIRouter(prefix="/commission", include_in_schema=False)
Commissioner = Annotated[Staff, Depends(require_role("reviewer", "auditor"))]
Backend = Annotated[WebBackend, Depends(backend_of)]
# The queue refreshes its rows when the live event stream announces an application or decision.
LIVE_EVENTS = ("ApplicationSubmitted", "ApplicationReviewed")
_TRACE_LABELS: dict[str, Any] = {
    "kind_labels": KIND_LABELS,
    "status_labels": STEP_STATUS_LABELS,
    "reason_labels": REASON_LABELS,
}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _this_month() -> str:
    return _now().strftime("%Y-%m")


def _is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _page(
    request: Request, staff: Staff, template: str, status_code: int = 200, **context: Any
) -> Response:
    return render(request, template, context, staff, status_code)


@router.get("/")
def home(staff: Commissioner) -> Response:
    target = "/commission/queue" if staff.role == "reviewer" else "/commission/trace"
    return RedirectResponse(target, status_code=303)


# --- reviewer ------------------------------------------------------------------------------------


def _queue_context(backend: WebBackend, staff: Staff) -> dict[str, Any]:
    return {
        "queue": commission_review.review_queue(backend.network, staff, _now()),
        "reasons": commission_review.REVIEW_REASONS,
        "reason_labels": REASON_LABELS,
        "live_events": LIVE_EVENTS,
    }


@router.get("/queue")
def queue(request: Request, staff: Commissioner, backend: Backend) -> Response:
    return _page(request, staff, "commission/queue.html", **_queue_context(backend, staff))


@router.get("/queue/rows")
def queue_rows(
    request: Request, staff: Commissioner, backend: Backend, part: str = "own"
) -> Response:
    """The queue's rows alone (`part` own or watched): what the page swaps in on a live event."""
    template = (
        "commission/_watched_rows.html" if part == "watched" else "commission/_queue_rows.html"
    )
    return _page(request, staff, template, **_queue_context(backend, staff))


@router.post("/applications/{application_id}/review")
def review(
    request: Request,
    application_id: str,
    staff: Commissioner,
    backend: Backend,
    decision: Annotated[str, Form(max_length=16)] = "",
    reason_code: Annotated[str, Form(max_length=64)] = "",
    note: Annotated[str, Form(max_length=commission_review.NOTE_CHARS_MAX)] = "",
) -> Response:
    reason = reason_code if decision == "REJECTED" else ""
    asked = commission_review.ReviewInput(application_id, decision, reason, note)
    try:
        done = commission_review.decide(backend.network, staff, asked)
    except MedallianceError as exc:
        context = _queue_context(backend, staff)
        if _is_htmx(request):
            # htmx swaps only 2xx answers: the refusal goes into the row with 200, so the
            # reviewer reads it where they clicked (a plain form POST gets the real status).
            item = next(
                (i for i in context["queue"].items if i.application_id == application_id), None
            )
            return _page(request, staff, "commission/_refused_row.html", item=item,
                         application_id=application_id, error=str(exc), **context)  # fmt: skip
        return _page(request, staff, "commission/queue.html", exc.status.http,
                     error=str(exc), **context)  # fmt: skip
    if _is_htmx(request):
        return _page(request, staff, "commission/_decided_row.html",
                     decision=done, reason_labels=REASON_LABELS)  # fmt: skip
    return _page(request, staff, "commission/queue.html", decision=done,
                 **_queue_context(backend, staff))  # fmt: skip


def _rules_context(backend: WebBackend, staff: Staff) -> dict[str, Any]:
    return {
        "downward": commission_review.downward_rule(backend.network, staff),
        "deadlines": commission_review.deadline_rules(backend.network, staff),
        "rules": commission_review.DOWNWARD_RULES,
        "rule_labels": RULE_LABELS,
        "may_set": staff.role == "reviewer",
    }


@router.get("/rules")
def rules(request: Request, staff: Commissioner, backend: Backend) -> Response:
    return _page(request, staff, "commission/rules.html", **_rules_context(backend, staff))


@router.post("/rules/downward")
def set_downward(
    request: Request,
    staff: Commissioner,
    backend: Backend,
    rule: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    try:
        change = commission_review.set_downward_rule(backend.network, staff, rule)
    except MedallianceError as exc:
        return _page(request, staff, "commission/rules.html", exc.status.http, error=str(exc),
                     **_rules_context(backend, staff))  # fmt: skip
    return _page(request, staff, "commission/rules.html", change=change,
                 **_rules_context(backend, staff))  # fmt: skip


@router.post("/rules/deadlines")
def set_deadlines(
    request: Request,
    staff: Commissioner,
    backend: Backend,
    review_hours: Annotated[int, Form(ge=1, le=720)],
    accept_hours: Annotated[int, Form(ge=1, le=720)],
    complete_days: Annotated[int, Form(ge=1, le=365)],
) -> Response:
    try:
        change = commission_review.set_deadline_rules(
            backend.network, staff, review_hours, accept_hours, complete_days
        )
    except MedallianceError as exc:
        return _page(request, staff, "commission/rules.html", exc.status.http, error=str(exc),
                     **_rules_context(backend, staff))  # fmt: skip
    return _page(request, staff, "commission/rules.html", change=change,
                 **_rules_context(backend, staff))  # fmt: skip


# --- auditor -------------------------------------------------------------------------------------


@router.get("/trace")
def trace_form(request: Request, staff: Commissioner) -> Response:
    return _page(request, staff, "commission/trace.html", trace=None, query="",
                 **_TRACE_LABELS)  # fmt: skip


@router.post("/trace")
def trace(
    request: Request,
    staff: Commissioner,
    backend: Backend,
    query: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        found = commission_trace.trace(backend.network, staff, query)
    except MedallianceError as exc:
        return _page(request, staff, "commission/trace.html", exc.status.http, trace=None,
                     query=query[:64], error=str(exc), **_TRACE_LABELS)  # fmt: skip
    return _page(request, staff, "commission/trace.html", trace=found, query=found.query,
                 **_TRACE_LABELS)  # fmt: skip


@router.get("/access")
def access(
    request: Request, staff: Commissioner, backend: Backend, org: str = "", record: str = ""
) -> Response:
    try:
        log = commission_audit.access_log(backend.network, staff, org=org, record=record)
    except MedallianceError as exc:
        return _page(request, staff, "commission/access.html", exc.status.http, log=None,
                     hospitals=(), selected_org="", selected_record="", error=str(exc))  # fmt: skip
    return _page(request, staff, "commission/access.html", log=log, hospitals=log.hospitals,
                 selected_org=org, selected_record=record, status_labels=STEP_STATUS_LABELS)  # fmt: skip


@router.get("/indicators")
def indicators(
    request: Request, staff: Commissioner, backend: Backend, period: str = ""
) -> Response:
    period = period or _this_month()
    try:
        found = commission_audit.indicators(backend.network, staff, period)
    except MedallianceError as exc:
        return _page(request, staff, "commission/indicators.html", exc.status.http,
                     found=None, period=_this_month(), error=str(exc))  # fmt: skip
    return _page(request, staff, "commission/indicators.html", found=found, period=period)


@router.get("/report")
def report(
    staff: Commissioner, backend: Backend, period: str = "", format: str = "json"
) -> Response:
    made = commission_audit.signed_report(
        backend.network, staff, period or _this_month(), format, _now()
    )
    return Response(
        made.content,
        media_type=made.media_type,
        headers={"Content-Disposition": f'attachment; filename="{made.filename}"'},
    )


def _reports_page(
    request: Request, backend: WebBackend, staff: Staff, period: str, status_code: int = 200,
    **extra: Any,
) -> Response:  # fmt: skip
    try:
        view = commission_audit.reports_to(backend.network, staff, period)
    except MedallianceError as exc:
        return _page(request, staff, "commission/reports.html", exc.status.http, view=None,
                     period=_this_month(), error=str(exc))  # fmt: skip
    return _page(request, staff, "commission/reports.html", status_code, view=view,
                 period=period, may_aggregate=staff.role == "reviewer", **extra)  # fmt: skip


@router.get("/reports")
def reports(request: Request, staff: Commissioner, backend: Backend, period: str = "") -> Response:
    return _reports_page(request, backend, staff, period or _this_month())


@router.post("/reports/aggregate")
def aggregate(
    request: Request,
    staff: Commissioner,
    backend: Backend,
    period: Annotated[str, Form(max_length=7)] = "",
) -> Response:
    try:
        done = commission_audit.aggregate_reports(backend.network, staff, period)
    except MedallianceError as exc:
        return _reports_page(request, backend, staff, period or _this_month(),
                             exc.status.http, error=str(exc))  # fmt: skip
    return _reports_page(request, backend, staff, period, aggregated=done)


def _alarms_page(
    request: Request, backend: WebBackend, staff: Staff, status: str = "",
    status_code: int = 200, template: str = "commission/alarms.html", **extra: Any,
) -> Response:  # fmt: skip
    try:
        rows = commission_alarms.alarms(backend.network, staff, status)
    except MedallianceError as exc:
        rows, status_code, extra = (), exc.status.http, {**extra, "error": str(exc)}
    return _page(request, staff, template, status_code, alarms=rows,
                 status=status, statuses=commission_alarms.STATUSES,
                 status_labels=ALARM_STATUS_LABELS, **extra)  # fmt: skip


@router.get("/alarms")
def alarms(request: Request, staff: Commissioner, backend: Backend, status: str = "") -> Response:
    return _alarms_page(request, backend, staff, status)


@router.get("/alarms/rows")
def alarm_rows(
    request: Request, staff: Commissioner, backend: Backend, status: str = ""
) -> Response:
    """The alarm rows alone: what the page swaps in when an alarm is raised or handled."""
    return _alarms_page(request, backend, staff, status, template="commission/_alarm_rows.html")


@router.post("/alarms/{alarm_id}/{action}")
def alarm_act(
    request: Request,
    alarm_id: str,
    action: str,
    staff: Commissioner,
    backend: Backend,
    note: Annotated[str, Form(max_length=commission_alarms.NOTE_CHARS_MAX)] = "",
) -> Response:
    try:
        acted = commission_alarms.act(
            backend.network, staff, commission_alarms.AlarmAct(alarm_id, action, note)
        )
    except MedallianceError as exc:
        return _alarms_page(request, backend, staff, "", exc.status.http, error=str(exc))
    return _alarms_page(request, backend, staff, acted=acted)
