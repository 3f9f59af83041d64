"""The JSON API's request and response models of the commission side (/api/v1/commission/...).

pydantic at the edge (style.md §3): requests forbid unknown keys, so a misspelt field fails
with its location; responses are built from the service layer's frozen dataclasses beside the
model (`of`), so /openapi.json describes exactly what is sent.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from medalliance.web.services import (
    commission_alarms,
    commission_audit,
    commission_review,
    commission_trace,
)
from medalliance.web.services.commission_index import IndexState


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IndexModel(BaseModel):
    next_block: int = Field(description="the first block the audit index has not read")
    height: int = Field(description="blocks the commission's own peer holds")
    lag_blocks: int

    @classmethod
    def of(cls, state: IndexState) -> IndexModel:
        return cls(next_block=state.next_block, height=state.height, lag_blocks=state.lag_blocks)


class QueueItemModel(BaseModel):
    application_id: str
    hospital: str
    target: str
    regulator: str
    visit_no: str
    submitted_at: str
    age_hours: str
    deadline: str
    overdue: bool
    decidable: bool
    tx_id: str


class DecisionModel(BaseModel):
    application_id: str
    decision: str
    reason_code: str
    note_ref: str
    tx_id: str
    block: int


class ReviewQueueModel(BaseModel):
    commission: str
    may_decide: bool
    index: IndexModel
    items: list[QueueItemModel]
    recent: list[DecisionModel] = Field(description="the commission's decisions of the last day")

    @classmethod
    def of(cls, queue: commission_review.ReviewQueue) -> ReviewQueueModel:
        return cls(
            commission=queue.commission,
            may_decide=queue.may_decide,
            index=IndexModel.of(queue.index),
            items=[QueueItemModel.model_validate(i, from_attributes=True) for i in queue.items],
            recent=[DecisionModel.model_validate(d, from_attributes=True) for d in queue.recent],
        )


class ReviewRequest(_Request):
    decision: Literal["APPROVED", "REJECTED"]
    reason_code: str = Field("", max_length=64, description="required for REJECTED")
    note: str = Field(
        "", max_length=commission_review.NOTE_CHARS_MAX, description="sealed for the applicant"
    )


class DownwardRuleModel(BaseModel):
    commission: str
    rule: str
    hospitals: list[str]


class DownwardRuleRequest(_Request):
    rule: Literal["APPROVAL_REQUIRED", "NO_APPROVAL"]


class DeadlineRulesModel(BaseModel):
    commission: str
    version: int
    review_hours: int
    accept_hours: int
    complete_days: int


class DeadlineRulesRequest(_Request):
    review_hours: int = Field(ge=1, le=720)
    accept_hours: int = Field(ge=1, le=720)
    complete_days: int = Field(ge=1, le=365)


class RuleChangeModel(BaseModel):
    what: str
    tx_id: str
    block: int


class TraceRequest(_Request):
    query: str = Field(min_length=1, max_length=64, description="a visit number or a pseudonym")


class TraceStepModel(BaseModel):
    kind: str
    subject: str
    organization: str
    status: str
    parties: str
    reason_code: str
    visit_no: str
    tx_id: str
    block: int
    at: str


class TraceModel(BaseModel):
    query: str
    visits: list[str]
    index: IndexModel
    steps: list[TraceStepModel]

    @classmethod
    def of(cls, trace: commission_trace.Trace) -> TraceModel:
        return cls(
            query=trace.query,
            visits=list(trace.visits),
            index=IndexModel.of(trace.index),
            steps=[TraceStepModel.model_validate(s, from_attributes=True) for s in trace.steps],
        )


class AccessEventModel(BaseModel):
    record_id: str
    org: str
    action: str
    version: str
    at: str
    tx_id: str


class AccessLogModel(BaseModel):
    hospitals: list[str]
    index: IndexModel
    events: list[AccessEventModel]

    @classmethod
    def of(cls, log: commission_audit.AccessLog) -> AccessLogModel:
        return cls(
            hospitals=list(log.hospitals),
            index=IndexModel.of(log.index),
            events=[AccessEventModel.model_validate(e, from_attributes=True) for e in log.events],
        )


class ReportRowModel(BaseModel):
    report_id: str
    submitter: str
    level: str
    metrics: dict[str, int]
    sources: list[str]
    tx_id: str


class ReportsModel(BaseModel):
    commission: str
    period: str
    parent: str
    reports: list[ReportRowModel]

    @classmethod
    def of(cls, view: commission_audit.ReportsView) -> ReportsModel:
        return cls(
            commission=view.commission,
            period=view.period,
            parent=view.parent,
            reports=[
                ReportRowModel(
                    report_id=str(r["reportId"]),
                    submitter=str(r["submitter"]),
                    level=str(r["level"]),
                    metrics={str(k): int(v) for k, v in r["metrics"].items()},
                    sources=[str(s) for s in r.get("sources", ())],
                    tx_id=str(r.get("txId", "")),
                )
                for r in view.reports
            ],
        )


class AggregateRequest(_Request):
    period: str = Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")


class AggregatedModel(BaseModel):
    report_id: str
    recipient: str
    sources: list[str]
    tx_id: str
    block: int


class FigureModel(BaseModel):
    indicator: str
    hospital: str = Field(description='an MSP id; "" for region-wide')
    period: str
    value: str = Field(description='exact decimal text; "" when undefined')
    unit: str
    sources: list[str]


class IndicatorsModel(BaseModel):
    period: str
    hospitals: list[str]
    index: IndexModel
    figures: list[FigureModel]

    @classmethod
    def of(cls, found: commission_audit.Indicators) -> IndicatorsModel:
        return cls(
            period=found.period,
            hospitals=list(found.hospitals),
            index=IndexModel.of(found.index),
            figures=[FigureModel.model_validate(f, from_attributes=True) for f in found.figures],
        )


class AlarmModel(BaseModel):
    alarm_id: str
    rule_id: str
    rule_version: int
    severity: str
    status: str
    subjects: list[str]
    raised_by: str
    escalate_to: str
    raised_at: str
    history: list[tuple[str, str, str, str]] = Field(description="(status, at, by, tx id)")


class AlarmActRequest(_Request):
    note: str = Field("", max_length=commission_alarms.NOTE_CHARS_MAX)


class AlarmActedModel(BaseModel):
    alarm_id: str
    status: str
    note_ref: str
    tx_id: str
    block: int
