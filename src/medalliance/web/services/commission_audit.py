"""What a commission auditor reads besides the trace: access logs, reports up the hierarchy,
the tiered-care indicators of a month with the series its charts draw, and the signed report.

Reads go through app/audit_queries.py over the commission's followed index
(commission_index.py), so the web and `medalliance audit ...` answer alike; reports up the
hierarchy are the reporting contract's (`ReportsTo`, `AggregateReports`); the signed report is
app/audit_report.py's, derived from the commission's own peer ledger on disk and exported as
JSON, CSV or PDF (app/audit_export.py).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from medalliance.app.alliance_network import AllianceNetwork
from medalliance.app.audit_export import csv_bytes, pdf_bytes
from medalliance.app.audit_queries import AccessEvent, AuditQueries
from medalliance.app.audit_report import check_period, make_report, report_digest
from medalliance.audit.figures import Figure
from medalliance.errors import InvalidArgument, PermissionDenied
from medalliance.web.services.commission_index import IndexState, followed_index
from medalliance.web.services.commission_staff import (
    commission_caller,
    require_reviewer,
)
from medalliance.web.services.contract_refusal import translated
from medalliance.web.staff import Staff

__all__ = [
    "REPORT_FORMATS",
    "AccessLog",
    "Aggregated",
    "Indicators",
    "ReportFile",
    "ReportsView",
    "VolumeSeries",
    "access_log",
    "aggregate_reports",
    "indicators",
    "queue_ages",
    "referral_volumes",
    "reports_to",
    "signed_report",
]

REPORT_FORMATS = {"json": "application/json", "csv": "text/csv", "pdf": "application/pdf"}
AGE_BUCKETS_HOURS = (24, 48, 72)  # queue ages: < 1 day, 1-2 days, 2-3 days, older


@dataclass(frozen=True, slots=True)
class AccessLog:
    events: tuple[AccessEvent, ...]
    hospitals: tuple[str, ...]  # the organisations the caller may filter by
    index: IndexState


@dataclass(frozen=True, slots=True)
class ReportsView:
    commission: str
    period: str
    parent: str  # "" for the top of the hierarchy
    reports: tuple[dict[str, Any], ...]  # the reporting contract's records, by report id


@dataclass(frozen=True, slots=True)
class Aggregated:
    report_id: str
    recipient: str
    sources: tuple[str, ...]
    tx_id: str
    block: int


@dataclass(frozen=True, slots=True)
class Indicators:
    period: str
    hospitals: tuple[str, ...]
    figures: tuple[Figure, ...]
    index: IndexState


@dataclass(frozen=True, slots=True)
class VolumeSeries:
    """Referrals made per month and direction, over the last `months` months."""

    periods: tuple[str, ...]
    upward: tuple[int, ...]
    downward: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ReportFile:
    filename: str
    media_type: str
    content: bytes
    fingerprint: str  # SHA-256 of the signed report


def access_log(
    network: AllianceNetwork, staff: Staff, *, org: str = "", record: str = ""
) -> AccessLog:
    """Grants, revocations, fetches and decrypts of supervised hospitals' records or by them.
    Raises `AuditDenied` for a filter naming a hospital outside the commission's chain."""
    caller = commission_caller(network, staff)
    if len(record) > 64:
        raise InvalidArgument("a record id has at most 64 characters")
    with followed_index(network, caller.msp_id) as (index, state):
        queries = AuditQueries(index, network.layout.config, caller)
        events = queries.access(org=org, record=record)
    return AccessLog(tuple(events), queries.hospitals, state)


def reports_to(network: AllianceNetwork, staff: Staff, period: str) -> ReportsView:
    """The month's reports addressed to the caller's commission (hospitals' and districts')."""
    caller = commission_caller(network, staff)
    check_period(period)
    raw = translated(
        lambda: network.evaluate(
            caller.msp_id, caller.user, "reporting", "ReportsTo", caller.msp_id, period
        )
    )
    parent = network.layout.config.organization(caller.msp_id).parent or ""
    if parent:
        parent = network.layout.config.organization(parent).msp_id
    return ReportsView(caller.msp_id, period, parent, tuple(json.loads(raw)))


def aggregate_reports(
    network: AllianceNetwork, staff: Staff, period: str, report_id: str = ""
) -> Aggregated:
    """Sum the month's reports to the commission and report upward to its parent (a
    reviewer's act). Raises `PermissionDenied` at the top of the hierarchy."""
    caller = commission_caller(network, staff)
    require_reviewer(caller)
    check_period(period)
    if not network.layout.config.organization(caller.msp_id).parent:
        raise PermissionDenied(f"{caller.msp_id} has no parent commission to report to")
    report_id = report_id or f"AGG-{caller.msp_id}-{period}"
    done = translated(
        lambda: network.submit(
            caller.msp_id, caller.user, "reporting", "AggregateReports", report_id, period
        )
    )
    record = json.loads(done.payload)
    return Aggregated(
        report_id, str(record["recipient"]), tuple(record.get("sources", ())), done.tx_id,
        done.block,
    )  # fmt: skip


def indicators(network: AllianceNetwork, staff: Staff, period: str) -> Indicators:
    """docs/audit.md §2 for the supervised hospitals and region-wide, each citing its txs."""
    caller = commission_caller(network, staff)
    check_period(period)
    with followed_index(network, caller.msp_id) as (index, state):
        queries = AuditQueries(index, network.layout.config, caller)
        figures = queries.indicators(period)
    return Indicators(period, queries.hospitals, tuple(figures), state)


def referral_volumes(
    network: AllianceNetwork, staff: Staff, until: str, months: int = 12
) -> VolumeSeries:
    """Upward and downward referrals made by or to supervised hospitals, per month, for the
    `months` months through `until` (YYYY-MM)."""
    caller = commission_caller(network, staff)
    check_period(until)
    periods = _months_through(until, months)
    with followed_index(network, caller.msp_id) as (index, _):
        rows = AuditQueries(index, network.layout.config, caller).referrals()
    counted = Counter((r.referred_at[:7], r.direction) for r in rows)
    return VolumeSeries(
        periods,
        tuple(counted[(p, "UP")] for p in periods),
        tuple(counted[(p, "DOWN")] for p in periods),
    )


def queue_ages(network: AllianceNetwork, staff: Staff, now: dt.datetime) -> tuple[int, ...]:
    """How many pending applications are younger than each of `AGE_BUCKETS_HOURS`, and older."""
    caller = commission_caller(network, staff)
    with followed_index(network, caller.msp_id) as (index, _):
        pending = AuditQueries(index, network.layout.config, caller).pending(now)
    counts = [0] * (len(AGE_BUCKETS_HOURS) + 1)
    for row in pending:
        age = Decimal(row.age_hours)
        counts[next((i for i, b in enumerate(AGE_BUCKETS_HOURS) if age < b), -1)] += 1
    return tuple(counts)


def signed_report(
    network: AllianceNetwork, staff: Staff, period: str, fmt: str, now: dt.datetime
) -> ReportFile:
    """The commission's signed report of `period`, derived from its own peer's ledger and
    signed by the caller (docs/audit.md §6), as JSON, or exported as CSV or PDF."""
    caller = commission_caller(network, staff)
    check_period(period)
    if fmt not in REPORT_FORMATS:
        raise InvalidArgument(f"the format must be one of {', '.join(REPORT_FORMATS)}")
    made = make_report(
        network.layout.directory, period, caller.user, caller.msp_id, now, network.channel
    )
    fingerprint = report_digest(made.document)
    if fmt == "csv":
        content = csv_bytes(made.document)
    elif fmt == "pdf":
        content = pdf_bytes(made.document, fingerprint)
    else:
        content = json.dumps(made.document, indent=2, ensure_ascii=False).encode() + b"\n"
    filename = f"audit-report-{caller.msp_id}-{period}.{fmt}"
    return ReportFile(filename, REPORT_FORMATS[fmt], content, fingerprint)


def _months_through(until: str, months: int) -> tuple[str, ...]:
    year, month = int(until[:4]), int(until[5:])
    found = []
    for _ in range(max(1, min(months, 60))):
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return tuple(reversed(found))
