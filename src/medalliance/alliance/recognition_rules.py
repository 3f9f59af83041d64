"""The regulator's rules of result recognition (检查检验结果互认): checks and arithmetic. Pure.

A regulator publishes one rules document for its jurisdiction (docs/alliance.md §2,
"Recognition of examination results"):

    {"catalogue": {"<code>": {"validityDays": 30, "minLevel": "B"}, ...},
     "levels": {"<hospital MSP id>": {"<code>": "A", ...}, ...}}

`catalogue` names the examinations it recognises (LOINC codes such as `24627-2`, or the
alliance's own codes such as `CT.CHEST`), each with how long a result stays valid and the lowest
quality level of a performing department it recognises; `levels` grades the departments of the
hospitals it supervises per examination: A (national), B (provincial), C (municipal). The
contract functions are `recognition.ResultRecognition`'s; this module owns no state.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from medalliance.errors import ContractError

# Quality levels, best first: A national (国家级), B provincial (省级), C municipal (市级).
LEVELS = ("A", "B", "C")
VALIDITY_DAYS_MAX = 3650
CODES_MAX = 500
HOSPITALS_MAX = 200
# LOINC (digits, check digit) or an alliance code (upper-case words joined by . _ -).
_CODE = re.compile(r"[0-9]{1,7}-[0-9]|[A-Z][A-Z0-9._-]{1,31}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MSP = re.compile(r"[A-Za-z0-9._-]{1,64}")


def check_code(code: str) -> str:
    """An examination code (LOINC or the alliance's own). The refusal never quotes the value: a
    caller may have typed findings where a code belongs."""
    if not _CODE.fullmatch(code):
        raise ContractError(
            "examination code must be a LOINC code (e.g. 24627-2) or an alliance code "
            "(upper case, e.g. CT.CHEST); findings belong in the sealed report",
            400,
        )
    return code


def check_date(text: str, what: str) -> dt.date:
    """A calendar date YYYY-MM-DD (an ISO instant is cut to its UTC date)."""
    if "T" in text:
        try:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            when = None
        if when is not None and when.tzinfo is not None:
            return when.astimezone(dt.UTC).date()
    elif _DATE.fullmatch(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
    raise ContractError(f"{what} must be a date such as 2026-11-28", 400)


def check_rules(text: str) -> dict[str, Any]:
    """The rules document, normalised (sorted keys); 400 naming the first thing to fix."""
    try:
        rules = json.loads(text)
    except ValueError:
        rules = None
    if not isinstance(rules, dict) or set(rules) != {"catalogue", "levels"}:
        raise ContractError(
            'rules must be a JSON object {"catalogue": {...}, "levels": {...}}', 400
        )
    catalogue, levels = rules["catalogue"], rules["levels"]
    if not isinstance(catalogue, dict) or not 1 <= len(catalogue) <= CODES_MAX:
        raise ContractError(f"catalogue must map 1 to {CODES_MAX} examination codes", 400)
    clean: dict[str, Any] = {"catalogue": {}, "levels": {}}
    for code, entry in sorted(catalogue.items()):
        check_code(code)
        if not isinstance(entry, dict) or set(entry) != {"validityDays", "minLevel"}:
            raise ContractError(f"catalogue entry {code} needs exactly validityDays, minLevel", 400)
        days = entry["validityDays"]
        if type(days) is not int or not 1 <= days <= VALIDITY_DAYS_MAX:
            raise ContractError(
                f"validityDays of {code} must be a whole number from 1 to {VALIDITY_DAYS_MAX}", 400
            )
        _check_level(entry["minLevel"], f"minLevel of {code}")
        clean["catalogue"][code] = {"validityDays": days, "minLevel": entry["minLevel"]}
    if not isinstance(levels, dict) or len(levels) > HOSPITALS_MAX:
        raise ContractError(f"levels must map at most {HOSPITALS_MAX} hospitals", 400)
    for msp_id, graded in sorted(levels.items()):
        if not _MSP.fullmatch(msp_id) or not isinstance(graded, dict):
            raise ContractError("levels must map hospital MSP ids to {code: level}", 400)
        for code, level in graded.items():
            if code not in clean["catalogue"]:
                raise ContractError(f"levels of {msp_id} grade {code}, not in the catalogue", 400)
            _check_level(level, f"level of {msp_id} for {code}")
        clean["levels"][msp_id] = dict(sorted(graded.items()))
    return clean


def meets(level: str, minimum: str) -> bool:
    """A level at least as good as `minimum` ("" — ungraded — meets nothing)."""
    return level in LEVELS and LEVELS.index(level) <= LEVELS.index(minimum)


def valid_until(performed_on: str, validity_days: int) -> dt.date:
    """The last day a result performed on `performed_on` is still valid."""
    return dt.date.fromisoformat(performed_on) + dt.timedelta(days=validity_days)


def _check_level(level: object, what: str) -> None:
    if level not in LEVELS:
        raise ContractError(f"{what} must be one of {', '.join(LEVELS)}", 400)
