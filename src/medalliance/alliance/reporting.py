"""Periodic statistics up the regulator hierarchy: hospital → district → city (paper §3).

A hospital's clerk reports counts (never patient data) for a month to its supervising regulator;
a regulator's reviewer sums what was addressed to it and reports upward to its parent. Each level
sees its own and its subordinates' reports. State, so that unrelated calls never conflict:
`report/<id>` holds a report, `reportby/<submitter>/<period>` its id (one report per submitter and
period), and `reportto/<recipient>/<period>/<id>` indexes it for the recipient — no list per
regulator in one key. Aggregation range-reads that index, so a report committed concurrently
invalidates the aggregate (phantom check) instead of being silently left out.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from medalliance.alliance.common import (
    check_id,
    check_period,
    hospital,
    load,
    now_iso,
    organization,
    protect,
    require_audit_role_of_regulator,
    require_may_see,
    require_role,
    supervising_regulator,
    to_json,
)
from medalliance.contracts import (
    Context,
    Contract,
    create_composite_key,
    split_composite_key,
    transaction,
)
from medalliance.errors import ContractError

_METRIC = re.compile(r"[a-zA-Z][a-zA-Z0-9_]{0,47}")
METRICS_MAX = 50
COUNT_LIMIT = 10**12  # counts are below this


def _report_key(report_id: str) -> str:
    return create_composite_key("report", [report_id])


def _by_key(submitter: str, period: str) -> str:
    return create_composite_key("reportby", [submitter, period])


def _to_key(recipient: str, period: str, report_id: str) -> str:
    return create_composite_key("reportto", [recipient, period, report_id])


class ReportingContract(Contract):
    name = "reporting"

    @transaction
    def SubmitReport(self, ctx: Context, report_id: str, period: str, metrics: str) -> str:
        """A hospital clerk's report for one month, addressed to the hospital's regulator."""
        require_role(ctx, "clerk")
        submitter = ctx.client.msp_id
        hospital(ctx, submitter)
        recipient = supervising_regulator(ctx, submitter)
        record = {
            "reportId": check_id(report_id, "report id"),
            "period": check_period(period),
            "submitter": submitter,
            "level": "hospital",
            "recipient": recipient,
            "metrics": _parse_metrics(metrics),
        }
        _check_new(ctx, report_id, submitter, period)
        _write(ctx, record)
        ctx.stub.set_event(
            "ReportSubmitted",
            to_json({k: record[k] for k in ("reportId", "period", "submitter", "recipient")}),
        )
        return to_json(record).decode()

    @transaction
    def AggregateReports(self, ctx: Context, report_id: str, period: str) -> str:
        """A regulator reviewer sums the month's reports addressed to it, for its parent."""
        require_role(ctx, "reviewer")
        submitter = ctx.client.msp_id
        org = organization(ctx, submitter)
        if org.type != "regulator":
            raise ContractError(f"{submitter} is a {org.type} organisation, not a regulator", 403)
        if not org.parent:
            raise ContractError(f"{submitter} has no parent regulator to report to", 412)
        organization(ctx, org.parent)  # a parent gone from the registry: 404, not an orphan
        record: dict[str, Any] = {
            "reportId": check_id(report_id, "report id"),
            "period": check_period(period),
            "submitter": submitter,
            "level": "regulator",
            "recipient": org.parent,
        }
        _check_new(ctx, report_id, submitter, period)
        sources = _addressed_to(ctx, submitter, period)
        if not sources:
            raise ContractError(f"no reports to {submitter} for {period}", 412)
        sums: Counter[str] = Counter()
        for source in sources:
            sums.update(source["metrics"])
        record["metrics"] = dict(sums)
        record["sources"] = sorted(s["reportId"] for s in sources)
        _write(ctx, record)
        protect(ctx, _report_key(report_id), submitter)
        event = {k: record[k] for k in ("reportId", "period", "submitter", "recipient", "sources")}
        ctx.stub.set_event("ReportAggregated", to_json(event))
        return to_json(record).decode()

    @transaction(evaluate=True)
    def GetReport(self, ctx: Context, report_id: str) -> str:
        """A report, for its submitter, its recipient and the regulators above the submitter."""
        report = load(ctx, _report_key(check_id(report_id, "report id")), f"report {report_id}")
        require_may_see(ctx, f"report {report_id}", report["submitter"], report["recipient"])
        return to_json(report).decode()

    @transaction(evaluate=True)
    def ReportsTo(self, ctx: Context, regulator: str, period: str) -> list[dict[str, Any]]:
        """The month's reports addressed to `regulator`, by report id; for it and those above."""
        check_period(period)
        org = organization(ctx, regulator)
        if org.type != "regulator":
            raise ContractError(f"{regulator} is a {org.type} organisation, not a regulator", 400)
        require_may_see(ctx, f"the reports to {regulator}", regulator)
        require_audit_role_of_regulator(ctx)
        return sorted(_addressed_to(ctx, regulator, period), key=lambda r: r["reportId"])

    @transaction(evaluate=True)
    def ReportsOf(self, ctx: Context, submitter: str, period: str) -> list[dict[str, Any]]:
        """`submitter`'s reports for `period` ("" for every period), by period then report id."""
        if period:
            check_period(period)
        organization(ctx, submitter)
        require_may_see(ctx, f"the reports of {submitter}", submitter)
        if period:
            raw = ctx.stub.get_state(_by_key(submitter, period))
            ids = [raw.decode()] if raw is not None else []
        else:
            ids = [
                v.decode()
                for _, v in ctx.stub.get_state_by_partial_composite_key("reportby", [submitter])
            ]
        reports = [load(ctx, _report_key(i), f"report {i}") for i in ids]
        return sorted(reports, key=lambda r: (r["period"], r["reportId"]))


def _parse_metrics(text: str) -> dict[str, int]:
    """Counts by metric name; refuses anything that is not a small object of whole numbers."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        names = [name for name, _ in pairs]
        for name in names:
            if names.count(name) > 1:  # json.loads would silently keep the last one
                raise ContractError(f"metric {name!r} appears more than once", 400)
        return dict(pairs)

    try:
        metrics = json.loads(text, object_pairs_hook=unique)
    except json.JSONDecodeError as exc:
        raise ContractError(f"metrics is not valid JSON: {exc.msg} at {exc.pos}", 400) from None
    except ValueError:  # e.g. an integer with more digits than Python will parse
        raise ContractError("metrics is not valid JSON", 400) from None
    if not isinstance(metrics, dict):
        raise ContractError(f"metrics must be a JSON object, not {_json_type(metrics)}", 400)
    if not 1 <= len(metrics) <= METRICS_MAX:
        raise ContractError(f"metrics has {len(metrics)} entries; 1 to {METRICS_MAX}", 400)
    for name, value in metrics.items():
        if not _METRIC.fullmatch(name):
            raise ContractError(
                f"metric name {name!r} must be a letter then up to 47 letters, digits or _", 400
            )
        # bool is a subclass of int, but `true` is not a count
        if type(value) is not int or not 0 <= value < COUNT_LIMIT:
            raise ContractError(
                f"metric {name} must be a whole number from 0 to {COUNT_LIMIT - 1}, "
                f"not {json.dumps(value)}",
                400,
            )
    return dict(sorted(metrics.items()))


def _json_type(value: object) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return {list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "null")


def _check_new(ctx: Context, report_id: str, submitter: str, period: str) -> None:
    existing = ctx.stub.get_state(_by_key(submitter, period))
    if existing is not None:
        raise ContractError(f"report {existing.decode()} for {period} already exists", 409)
    if ctx.stub.get_state(_report_key(report_id)) is not None:
        raise ContractError(f"report {report_id} already exists", 409)


def _write(ctx: Context, record: dict[str, Any]) -> None:
    """Store a new report (`_check_new` first) and index it for its recipient."""
    report_id, period = record["reportId"], record["period"]
    record.update(submittedAt=now_iso(ctx), txId=ctx.tx_id)
    ctx.stub.put_state(_report_key(report_id), to_json(record))
    ctx.stub.put_state(_by_key(record["submitter"], period), report_id.encode())
    ctx.stub.put_state(_to_key(record["recipient"], period, report_id), b"\x00")


def _addressed_to(ctx: Context, recipient: str, period: str) -> list[dict[str, Any]]:
    found = []
    for key, _ in ctx.stub.get_state_by_partial_composite_key("reportto", [recipient, period]):
        report_id = split_composite_key(key)[1][2]
        found.append(load(ctx, _report_key(report_id), f"report {report_id}"))
    return found
