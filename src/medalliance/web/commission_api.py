"""The commission side of the JSON API (/api/v1/commission/...): the same service functions
as the pages, pydantic models in and out (web/commission_models.py), errors as the one
`{"error": {"category", "message"}}` document with the status of their category."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from medalliance.web import i18n
from medalliance.web.auth import require_role
from medalliance.web.backend import WebBackend
from medalliance.web.commission_charts import (
    downward_share_chart,
    queue_age_chart,
    volume_chart,
)
from medalliance.web.commission_models import (
    AccessLogModel,
    AggregatedModel,
    AggregateRequest,
    AlarmActedModel,
    AlarmActRequest,
    AlarmModel,
    DeadlineRulesModel,
    DeadlineRulesRequest,
    DecisionModel,
    DownwardRuleModel,
    DownwardRuleRequest,
    IndicatorsModel,
    ReportsModel,
    ReviewQueueModel,
    ReviewRequest,
    RuleChangeModel,
    TraceModel,
    TraceRequest,
)
from medalliance.web.core_routes import backend_of
from medalliance.web.services import (
    commission_alarms,
    commission_audit,
    commission_review,
    commission_trace,
)
from medalliance.web.staff import Staff
from medalliance.web.templating import language_of

router = APIRouter(prefix="/api/v1/commission", tags=["commission"])
Commissioner = Annotated[Staff, Depends(require_role("reviewer", "auditor"))]
Backend = Annotated[WebBackend, Depends(backend_of)]
Period = Annotated[str, Query(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _translator(request: Request, staff: Staff) -> Callable[[str], str]:
    translate: Callable[[str], str] = i18n.translations(language_of(request, staff)).ugettext
    return translate


@router.get("/queue")
def queue(staff: Commissioner, backend: Backend) -> ReviewQueueModel:
    """Pending applications of the supervised hospitals, oldest first, with age and deadline."""
    return ReviewQueueModel.of(commission_review.review_queue(backend.network, staff, _now()))


@router.post("/applications/{application_id}/review")
def review(
    application_id: str, body: ReviewRequest, staff: Commissioner, backend: Backend
) -> DecisionModel:
    """Approve, or reject with a reason code (and a note, sealed for the applicant)."""
    asked = commission_review.ReviewInput(
        application_id, body.decision, body.reason_code, body.note
    )
    done = commission_review.decide(backend.network, staff, asked)
    return DecisionModel.model_validate(done, from_attributes=True)


@router.get("/downward-rule")
def downward_rule(staff: Commissioner, backend: Backend) -> DownwardRuleModel:
    found = commission_review.downward_rule(backend.network, staff)
    return DownwardRuleModel(
        commission=found.commission, rule=found.rule, hospitals=list(found.hospitals)
    )


@router.post("/downward-rule")
def set_downward_rule(
    body: DownwardRuleRequest, staff: Commissioner, backend: Backend
) -> RuleChangeModel:
    done = commission_review.set_downward_rule(backend.network, staff, body.rule)
    return RuleChangeModel.model_validate(done, from_attributes=True)


@router.get("/deadline-rules")
def deadline_rules(staff: Commissioner, backend: Backend) -> DeadlineRulesModel:
    found = commission_review.deadline_rules(backend.network, staff)
    return DeadlineRulesModel.model_validate(found, from_attributes=True)


@router.post("/deadline-rules")
def set_deadline_rules(
    body: DeadlineRulesRequest, staff: Commissioner, backend: Backend
) -> RuleChangeModel:
    done = commission_review.set_deadline_rules(
        backend.network, staff, body.review_hours, body.accept_hours, body.complete_days
    )
    return RuleChangeModel.model_validate(done, from_attributes=True)


@router.post("/trace")
def trace(body: TraceRequest, staff: Commissioner, backend: Backend) -> TraceModel:
    """Every step of a visit or a pseudonym's visits (in the body: never in a URL)."""
    return TraceModel.of(commission_trace.trace(backend.network, staff, body.query))


@router.get("/access")
def access(
    staff: Commissioner,
    backend: Backend,
    org: Annotated[str, Query(max_length=64)] = "",
    record: Annotated[str, Query(max_length=64)] = "",
) -> AccessLogModel:
    return AccessLogModel.of(
        commission_audit.access_log(backend.network, staff, org=org, record=record)
    )


@router.get("/reports")
def reports(period: Period, staff: Commissioner, backend: Backend) -> ReportsModel:
    return ReportsModel.of(commission_audit.reports_to(backend.network, staff, period))


@router.post("/reports/aggregate")
def aggregate(body: AggregateRequest, staff: Commissioner, backend: Backend) -> AggregatedModel:
    done = commission_audit.aggregate_reports(backend.network, staff, body.period)
    return AggregatedModel.model_validate(done, from_attributes=True)


@router.get("/indicators")
def indicators(period: Period, staff: Commissioner, backend: Backend) -> IndicatorsModel:
    return IndicatorsModel.of(commission_audit.indicators(backend.network, staff, period))


@router.get(
    "/report",
    response_class=Response,
    responses={200: {"content": {t: {} for t in commission_audit.REPORT_FORMATS.values()}}},
)
def signed_report(
    period: Period,
    staff: Commissioner,
    backend: Backend,
    format: Annotated[str, Query(pattern="^(json|csv|pdf)$")] = "json",
) -> Response:
    """The signed monthly report (docs/audit.md §6), or its CSV or PDF export."""
    made = commission_audit.signed_report(backend.network, staff, period, format, _now())
    return Response(
        made.content,
        media_type=made.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{made.filename}"',
            "X-Report-Fingerprint": made.fingerprint,
        },
    )


@router.get("/charts/volumes")
def volumes_chart(
    request: Request, until: Period, staff: Commissioner, backend: Backend
) -> dict[str, Any]:
    """ECharts option: referrals by month and direction, the 12 months through `until`."""
    series = commission_audit.referral_volumes(backend.network, staff, until)
    return volume_chart(series, _translator(request, staff))


@router.get("/charts/downward-share")
def share_chart(
    request: Request, period: Period, staff: Commissioner, backend: Backend
) -> dict[str, Any]:
    found = commission_audit.indicators(backend.network, staff, period)
    return downward_share_chart(found.figures, _translator(request, staff))


@router.get("/charts/queue-ages")
def ages_chart(request: Request, staff: Commissioner, backend: Backend) -> dict[str, Any]:
    counts = commission_audit.queue_ages(backend.network, staff, _now())
    return queue_age_chart(counts, _translator(request, staff))


@router.get("/alarms")
def alarms(
    staff: Commissioner,
    backend: Backend,
    status: Annotated[str, Query(pattern="^(|OPEN|ACKNOWLEDGED|CLOSED)$")] = "",
) -> list[AlarmModel]:
    return [
        AlarmModel.model_validate(a, from_attributes=True)
        for a in commission_alarms.alarms(backend.network, staff, status)
    ]


@router.post("/alarms/{alarm_id}/acknowledge")
def acknowledge(
    alarm_id: str, body: AlarmActRequest, staff: Commissioner, backend: Backend
) -> AlarmActedModel:
    request = commission_alarms.AlarmAct(alarm_id, "acknowledge", body.note)
    return AlarmActedModel.model_validate(
        commission_alarms.act(backend.network, staff, request), from_attributes=True
    )


@router.post("/alarms/{alarm_id}/close")
def close(
    alarm_id: str, body: AlarmActRequest, staff: Commissioner, backend: Backend
) -> AlarmActedModel:
    request = commission_alarms.AlarmAct(alarm_id, "close", body.note)
    return AlarmActedModel.model_validate(
        commission_alarms.act(backend.network, staff, request), from_attributes=True
    )
