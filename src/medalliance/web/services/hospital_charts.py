"""The hospital's charts as Apache ECharts options (the page's `<div class="chart"
data-chart-url=...>` draws what the URL answers). Pure: values in, an option out."""

from __future__ import annotations

from typing import Any

from medalliance.web.i18n import N_, gettext
from medalliance.web.services.hospital_referral_views import VolumeSeries

__all__ = ["volume_chart"]

_SERIES = {
    "outgoing UP": N_("Referred up"),
    "outgoing DOWN": N_("Referred down"),
    "incoming UP": N_("Received from below"),
    "incoming DOWN": N_("Received back from above"),
}


def volume_chart(volumes: VolumeSeries, language: str) -> dict[str, Any]:
    """Stacked monthly bars: outgoing and incoming referrals by direction."""
    return {
        "title": {"text": gettext(language, N_("Referrals per month"))},
        "tooltip": {"trigger": "axis"},
        "legend": {"bottom": 0},
        "xAxis": {"type": "category", "data": list(volumes.months)},
        "yAxis": {"type": "value", "minInterval": 1},
        "series": [
            {
                "name": gettext(language, _SERIES[name]),
                "type": "bar",
                "stack": name.split()[0],
                "data": list(counts),
            }
            for name, counts in volumes.series
        ],
    }
