"""Tiered-care indicators (分级诊疗) per hospital and month, derived from ledger facts.

Definitions: docs/audit.md §2 (keep the two in step). A fact belongs to the month of its
transaction's time (`timestamp[:7]`), except a settlement entry, which carries the period the
settlement contract booked it in. Each figure is attributed to one hospital by a named party of
the facts (the origin of a referral, its target, the applicant, the payee, ...); the region-wide
figure (hospital "") uses every fact of the month. Ratios are rounded half-even to 4 decimal
places and hours to 2; CNY amounts are exact to the fen. Pure and deterministic: the same facts,
in any order, give the same figures in the same order.
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from medalliance.audit.facts import Fact
from medalliance.audit.figures import Figure
from medalliance.errors import InvalidArgument

_PERIOD = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
_RATIO = Decimal("0.0001")
_HOURS = Decimal("0.01")
_FEN = Decimal("0.01")
_MS_PER_HOUR = Decimal(3_600_000)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# Self-reported metric names (reporting contract) reconciled against a derived indicator.
RECONCILED = {
    "referralsUp": "referrals.upward",
    "referralsDown": "referrals.downward",
    "referralsReceived": "referrals.received",
    "resultsShared": "results.shared",
}


@dataclass(frozen=True, slots=True)
class _Value:
    value: str
    sources: frozenset[str]


_Indicator = Callable[["_Month", str], _Value]


def compute(facts: Iterable[Fact], period: str, hospitals: Iterable[str]) -> list[Figure]:
    """See `figures.indicators`."""
    if not _PERIOD.fullmatch(period):
        raise InvalidArgument(f"period must be YYYY-MM (e.g. 2026-11), not {period!r}")
    month = _Month(sorted(facts, key=lambda f: (f.block, f.tx_index, f.kind, f.subject)), period)
    scope = ["", *sorted(set(hospitals))]
    figures = [
        Figure(name, hospital, period, found.value, unit, tuple(sorted(found.sources)))
        for name, unit, indicator in _INDICATORS
        for hospital in scope
        for found in (indicator(month, hospital),)
    ]
    figures.extend(_reconciliation(month, scope[1:], figures))
    return figures


class _Month:
    """The facts of one month, and the whole history where an indicator looks back."""

    def __init__(self, facts: Sequence[Fact], period: str) -> None:
        self.all = facts
        self.period = period
        self.facts = [f for f in facts if f.timestamp[:7] == period]

    def of(self, kind: str) -> list[Fact]:
        return [f for f in self.facts if f.kind == kind]

    def ever(self, kind: str) -> list[Fact]:
        return [f for f in self.all if f.kind == kind]


def _party(fact: Fact, hospital: str, *attributes: str) -> bool:
    return not hospital or any(fact.attribute(a) == hospital for a in attributes)


def _count(facts: list[Fact]) -> _Value:
    return _Value(str(len(facts)), frozenset(f.tx_id for f in facts))


def _ratio(part: list[Fact], whole: list[Fact]) -> _Value:
    sources = frozenset(f.tx_id for f in whole)
    if not whole:
        return _Value("", sources)
    return _Value(
        _text((Decimal(len(part)) / len(whole)).quantize(_RATIO, ROUND_HALF_EVEN)), sources
    )


# --- referrals -----------------------------------------------------------------------------------


def _created(month: _Month, hospital: str, side: str, direction: str = "") -> list[Fact]:
    return [
        f
        for f in month.of("referral.created")
        if _party(f, hospital, side) and direction in ("", f.attribute("direction"))
    ]


def _upward(month: _Month, hospital: str) -> _Value:
    return _count(_created(month, hospital, "from_hospital", "UP"))


def _downward(month: _Month, hospital: str) -> _Value:
    return _count(_created(month, hospital, "from_hospital", "DOWN"))


def _received(month: _Month, hospital: str) -> _Value:
    return _count(_created(month, hospital, "to_hospital"))


def _downward_share(month: _Month, hospital: str) -> _Value:
    involved = [
        f
        for f in month.of("referral.created")
        if _party(f, hospital, "from_hospital", "to_hospital")
    ]
    return _ratio([f for f in involved if f.attribute("direction") == "DOWN"], involved)


def _acceptance_rate(month: _Month, hospital: str) -> _Value:
    accepted = [f for f in month.of("referral.accepted") if _party(f, hospital, "to_hospital")]
    rejected = [f for f in month.of("referral.rejected") if _party(f, hospital, "to_hospital")]
    return _ratio(accepted, accepted + rejected)


def _acceptance_hours(month: _Month, hospital: str) -> _Value:
    accepted = [f for f in month.of("referral.accepted") if _party(f, hospital, "to_hospital")]
    return _median_hours([(f.attribute("referred_at"), f) for f in accepted])


def _completion_rate(month: _Month, hospital: str) -> _Value:
    created = _created(month, hospital, "to_hospital")
    ids = {f.subject for f in created}
    completed = [f for f in month.ever("referral.completed") if f.subject in ids]
    rate = _ratio(completed, created)
    return _Value(rate.value, rate.sources | {f.tx_id for f in completed})


def _returns(month: _Month, hospital: str) -> _Value:
    """Downward referrals that send a patient back to the hospital that referred them up."""
    found = []
    for down in _created(month, hospital, "from_hospital", "DOWN"):
        for up in month.ever("referral.created"):
            if (
                up.attribute("direction") == "UP"
                and (up.block, up.tx_index) < (down.block, down.tx_index)
                and up.attribute("visit_no") == down.attribute("visit_no")
                and up.attribute("from_hospital") == down.attribute("to_hospital")
                and up.attribute("to_hospital") == down.attribute("from_hospital")
            ):
                found.append((down, up))
                break
    return _Value(str(len(found)), frozenset(t.tx_id for pair in found for t in pair))


# --- applications --------------------------------------------------------------------------------


def _reviewed(month: _Month, hospital: str) -> list[Fact]:
    return [f for f in month.of("application.reviewed") if _party(f, hospital, "hospital")]


def _approval_rate(month: _Month, hospital: str) -> _Value:
    reviewed = _reviewed(month, hospital)
    return _ratio([f for f in reviewed if f.attribute("status") == "APPROVED"], reviewed)


def _decision_hours(month: _Month, hospital: str) -> _Value:
    return _median_hours([(f.attribute("submitted_at"), f) for f in _reviewed(month, hospital)])


# --- shared results ------------------------------------------------------------------------------


def _results_shared(month: _Month, hospital: str) -> _Value:
    """Results a hospital made available to the others: recorded for recognition (issue 19), or
    shared by the earlier pointer mechanism (`result.shared`, ledgers written before it)."""
    made = [*month.of("result.recorded"), *month.of("result.shared")]
    return _count([f for f in made if _party(f, hospital, "hospital")])


def _repeat_avoided(month: _Month, hospital: str) -> _Value:
    """(result, hospital) pairs where a hospital it was shared with opened the result's record:
    an examination that hospital did not repeat. Counted once per pair, in the month of the
    first opening. A recognised result a hospital requested (`result.reused`) counts too, in the
    month of the request, for the requester."""
    shares = month.ever("result.shared")
    seen: set[tuple[str, str]] = set()
    pairs: list[tuple[Fact, Fact]] = []
    for access in month.ever("record.accessed"):
        org = access.attribute("org")
        for share in shares:
            key = (share.subject, org)
            if (
                share.attribute("record_id") == access.subject
                and org in share.attribute("shared_with").split(",")
                and (share.block, share.tx_index) < (access.block, access.tx_index)
                and key not in seen
            ):
                seen.add(key)
                if access.timestamp[:7] == month.period and hospital in ("", org):
                    pairs.append((share, access))
    reused = [f for f in month.of("result.reused") if _party(f, hospital, "requester")]
    sources = frozenset(f.tx_id for pair in pairs for f in pair) | {f.tx_id for f in reused}
    return _Value(str(len(pairs) + len(reused)), sources)


def _duplicates(month: _Month, hospital: str) -> _Value:
    """Examinations ordered again although a recognised result existed (each with its reason)."""
    return _count([f for f in month.of("result.duplicate") if _party(f, hospital, "hospital")])


# --- settlement ----------------------------------------------------------------------------------


def _entries(month: _Month) -> list[Fact]:
    return [f for f in month.ever("settlement.entry") if f.attribute("period") == month.period]


def _amount(month: _Month, hospital: str, side: str) -> _Value:
    entries = [f for f in _entries(month) if _party(f, hospital, side)]
    total = sum((Decimal(f.attribute("amount", "0")) for f in entries), Decimal(0))
    return _Value(str(total.quantize(_FEN)), frozenset(f.tx_id for f in entries))


def _receivable(month: _Month, hospital: str) -> _Value:
    return _amount(month, hospital, "payee")


def _payable(month: _Month, hospital: str) -> _Value:
    return _amount(month, hospital, "payer")


def _net(month: _Month, hospital: str) -> _Value:
    gets, pays = _receivable(month, hospital), _payable(month, hospital)
    net = Decimal(gets.value) - Decimal(pays.value)
    return _Value(str(net.quantize(_FEN)), gets.sources | pays.sources)


_INDICATORS: tuple[tuple[str, str, _Indicator], ...] = (
    ("referrals.upward", "count", _upward),
    ("referrals.downward", "count", _downward),
    ("referrals.received", "count", _received),
    ("referrals.downward_share", "ratio", _downward_share),
    ("referrals.acceptance_rate", "ratio", _acceptance_rate),
    ("referrals.acceptance_hours_median", "hours", _acceptance_hours),
    ("referrals.completion_rate", "ratio", _completion_rate),
    ("referrals.returns", "count", _returns),
    ("applications.approval_rate", "ratio", _approval_rate),
    ("applications.decision_hours_median", "hours", _decision_hours),
    ("results.shared", "count", _results_shared),
    ("results.repeat_avoided", "count", _repeat_avoided),
    ("results.duplicated", "count", _duplicates),
    ("settlement.receivable", "CNY", _receivable),
    ("settlement.payable", "CNY", _payable),
    ("settlement.net", "CNY", _net),
)


# --- reconciliation ------------------------------------------------------------------------------


def _reconciliation(month: _Month, hospitals: list[str], figures: list[Figure]) -> list[Figure]:
    """For each hospital's report of the month and each reconciled metric in it: the reported
    value (`reported.<indicator>`) and reported minus derived (`difference.<indicator>`)."""
    derived = {(f.indicator, f.hospital): f for f in figures}
    out: list[Figure] = []
    reports = [f for f in month.ever("report.submitted") if f.attribute("period") == month.period]
    for hospital in hospitals:
        mine = [r for r in reports if r.attribute("submitter") == hospital]
        if not mine:
            continue
        report = mine[-1]  # the contract allows one per hospital and month
        for metric, indicator in sorted(RECONCILED.items(), key=lambda m: m[1]):
            reported = report.attribute(f"metric.{metric}")
            if not (
                reported.isascii() and reported.isdigit()
            ):  # the contract accepts only whole counts
                continue
            ours = derived[(indicator, hospital)]
            difference = Decimal(reported) - Decimal(ours.value)
            sources = tuple(sorted({report.tx_id, *ours.sources}))
            out.append(Figure(f"reported.{indicator}", hospital, month.period, reported, "count",
                              (report.tx_id,)))  # fmt: skip
            out.append(Figure(f"difference.{indicator}", hospital, month.period,
                              _text(difference), "count", sources))  # fmt: skip
    return out


# --- helpers -------------------------------------------------------------------------------------


def _median_hours(pairs: list[tuple[str, Fact]]) -> _Value:
    """Median hours from a recorded start time (attribute) to each fact's own time."""
    hours = [
        (_ms(fact.timestamp) - _ms(start)) / _MS_PER_HOUR
        for start, fact in pairs
        if start and _ms(start) >= 0
    ]
    sources = frozenset(f.tx_id for _, f in pairs)
    if not hours:
        return _Value("", sources)
    return _Value(_text(statistics.median(hours).quantize(_HOURS, ROUND_HALF_EVEN)), sources)


def _ms(iso: str) -> int:
    """Milliseconds since the epoch of "YYYY-MM-DDTHH:MM:SS.mmmZ"; -1 when malformed."""
    try:
        when = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return -1
    if when.tzinfo is None:
        return -1
    return (when - _EPOCH) // dt.timedelta(milliseconds=1)


def _text(value: Decimal) -> str:
    """Exact decimal text without exponent or trailing zeros: 12, 0.25, 3.5."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text
