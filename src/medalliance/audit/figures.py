"""Figures: one indicator's value for one hospital (or the region) and one month, with its sources.

The unit of what the audit module states (docs/audit.md §2): a report (audit/report.py) lists figures, a
verifier re-derives them from the raw blocks and compares. A value is exact decimal text, never a
float, so a re-derivation compares equal character for character. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from medalliance.audit.facts import Fact

__all__ = ["UNITS", "Figure", "indicators"]

UNITS = ("count", "ratio", "hours", "CNY")


@dataclass(frozen=True, slots=True)
class Figure:
    """One indicator of one hospital (MSP id; "" for region-wide) in one month (YYYY-MM)."""

    indicator: str  # e.g. "referrals.upward", "referrals.downward_share"
    hospital: str
    period: str
    value: str  # exact decimal text ("12", "0.25", "3.5"); "" when undefined (e.g. 0/0)
    unit: str  # one of UNITS
    sources: tuple[str, ...]  # the tx ids it was derived from, sorted


def indicators(facts: Iterable[Fact], period: str, hospitals: Iterable[str]) -> list[Figure]:
    """Every indicator of docs/audit.md §2 for `period`, per hospital of `hospitals` and
    region-wide, in a stable order (indicator, hospital). `facts` may span any months: each
    indicator picks the facts it needs. Raises `InvalidArgument` for a malformed period."""
    # Computed in audit/indicators.py; imported here so the shared contract has one entry point
    # without a circular import (indicators.py builds `Figure`s).
    from medalliance.audit.indicators import compute

    return compute(facts, period, hospitals)
