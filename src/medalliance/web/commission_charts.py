"""Apache ECharts options for the commission's charts (the page draws them from
`<div class="chart" data-chart-url="...">`): referral volumes by month and direction, the
downward share per hospital, and the ages of the review queue. Pure: series in, option out;
labels arrive translated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from medalliance.audit.figures import Figure
from medalliance.web.services.commission_audit import AGE_BUCKETS_HOURS, VolumeSeries

__all__ = ["downward_share_chart", "queue_age_chart", "volume_chart"]

Translate = Callable[[str], str]


def volume_chart(series: VolumeSeries, _: Translate) -> dict[str, Any]:
    up, down = _("Upward referrals"), _("Downward referrals")
    return {
        "title": {"text": _("Referrals by month and direction")},
        "tooltip": {"trigger": "axis"},
        "legend": {"data": [up, down], "bottom": 0},
        "xAxis": {"type": "category", "data": list(series.periods)},
        "yAxis": {"type": "value", "minInterval": 1},
        "series": [
            {"name": up, "type": "bar", "stack": "total", "data": list(series.upward)},
            {"name": down, "type": "bar", "stack": "total", "data": list(series.downward)},
        ],
    }


def downward_share_chart(figures: Sequence[Figure], _: Translate) -> dict[str, Any]:
    """The downward share of each hospital (and the region) in the month; undefined shares
    (no referrals) are left out rather than drawn as 0."""
    rows = [
        (f.hospital or _("Region"), float(f.value))
        for f in figures
        if f.indicator == "referrals.downward_share" and f.value
    ]
    return {
        "title": {"text": _("Share of downward referrals")},
        "tooltip": {"trigger": "axis"},
        "xAxis": {"type": "category", "data": [name for name, _v in rows]},
        "yAxis": {"type": "value", "min": 0, "max": 1},
        "series": [{"type": "bar", "data": [value for _n, value in rows]}],
    }


def queue_age_chart(counts: Sequence[int], _: Translate) -> dict[str, Any]:
    labels = []
    lower = 0
    for bound in AGE_BUCKETS_HOURS:
        labels.append(f"{lower}–{bound} h")
        lower = bound
    labels.append(f"≥ {lower} h")
    return {
        "title": {"text": _("Pending applications by age")},
        "tooltip": {"trigger": "axis"},
        "xAxis": {"type": "category", "data": labels},
        "yAxis": {"type": "value", "minInterval": 1},
        "series": [{"type": "bar", "data": list(counts)}],
    }
