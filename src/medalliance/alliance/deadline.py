"""Deadlines of the next step (SLA): the regulator's published rules and the arithmetic on them.

A regulator publishes, for the hospitals it supervises, the time allowed for each next step:
reviewing an application (`reviewHours`), accepting or rejecting a referral (`acceptHours`) and
completing an accepted one (`completeDays`). The rules are versioned (each publication is the next
version, earlier versions stay readable) and default to `DEFAULTS` (version 0) until the
regulator publishes any. A deadline is always counted from the transaction's timestamp, never the
wall clock, so every endorser computes the same one (docs/alliance.md §2, "Deadlines").

This module holds no contract: `report.SetDeadlineRules` writes the rules in the report
contract's namespace, and the referral contract reads them through `report.DeadlineRules`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from medalliance.alliance.common import now_iso
from medalliance.contracts import Context, create_composite_key
from medalliance.errors import ContractError

# What a commission expects when it has said nothing: two days to review, a day to take a
# referred patient, a month to finish the episode.
DEFAULTS: dict[str, int] = {"reviewHours": 48, "acceptHours": 24, "completeDays": 30}
_LIMITS: dict[str, int] = {"reviewHours": 24 * 30, "acceptHours": 24 * 30, "completeDays": 365}


def rules_key(regulator: str) -> str:
    return create_composite_key("deadlinerules", [regulator])


def rules_version_key(regulator: str, version: int) -> str:
    return create_composite_key("deadlineruleversion", [regulator, f"{version:06d}"])


def check_rules(review_hours: str, accept_hours: str, complete_days: str) -> dict[str, int]:
    """The three limits as whole positive numbers within bounds; 400 naming the one to fix."""
    found: dict[str, int] = {}
    for name, text in zip(DEFAULTS, (review_hours, accept_hours, complete_days), strict=True):
        if not (
            text.isascii() and text.isdigit() and len(text) <= 6 and 1 <= int(text) <= _LIMITS[name]
        ):
            raise ContractError(
                f"{name} must be a whole number from 1 to {_LIMITS[name]}, not {text[:20]!r}", 400
            )
        found[name] = int(text)
    return found


def current_rules(ctx: Context, regulator: str) -> dict[str, Any]:
    """The regulator's rules in force (its latest published version, or the defaults)."""
    raw = ctx.stub.get_state(rules_key(regulator))
    if raw is None:
        return {"regulator": regulator, "version": 0, **DEFAULTS}
    rules: dict[str, Any] = json.loads(raw)
    return rules


def deadline_after(ctx: Context, *, hours: int = 0, days: int = 0) -> str:
    """The transaction's timestamp plus the time allowed, in `now_iso`'s form (so deadlines and
    timestamps compare as text)."""
    start = dt.datetime.fromisoformat(now_iso(ctx).replace("Z", "+00:00"))
    return iso(start + dt.timedelta(hours=hours, days=days))


def check_instant(text: str, what: str) -> str:
    """An ISO 8601 instant with a zone (e.g. 2026-11-28T12:00:00Z), normalised to `now_iso`'s
    form; 400 otherwise. Queries take the time as an argument: a contract has no clock."""
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ContractError(
            f"{what} must be an ISO 8601 time such as 2026-11-28T12:00:00Z", 400
        ) from None
    if when.tzinfo is None:
        raise ContractError(f"{what} needs a time zone, e.g. 2026-11-28T12:00:00Z", 400)
    return iso(when)


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_overdue(item: dict[str, Any], at: str) -> bool:
    """An item whose next step had a deadline that passed before `at` (normalised)."""
    deadline = item.get("deadline", "")
    return bool(deadline) and deadline < at
