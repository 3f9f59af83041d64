"""FHIR search for the hospital store: which index rows a resource has, and which SQL a search
means. Pure: no I/O; the SQL uses `?` placeholders and only standard syntax both backends read.

Each searchable value of a resource is a row (param, value, value_high) of the store's index
table, filled on put; a search is one `id IN (SELECT ... FROM the index)` per parameter, so it
reads the index, not every resource. Supported (FHIR R4 §3.1.1 "Search", the common subset):

| parameter | matches | forms |
|---|---|---|
| `_id` | the resource id | `id[,id...]` |
| `patient`, `subject` | `subject` / `patient` / `for` reference | `Patient/ID`, `ID`, absolute URL |
| `encounter` | `encounter`, `context.encounter` | `Encounter/ID` or `ID` |
| `code` | any coding of the resource's code (`code`, `medicationCodeableConcept`, `vaccineCode`, `type`) | `[system\\|]code` |
| `date` | the clinical date (see `_DATE_ELEMENTS`) | `[eq\\|ne\\|lt\\|gt\\|le\\|ge]YYYY[-MM[-DD]]` |
| `birthdate` | Patient.birthDate | as `date` |
| `status` | `status`, or `clinicalStatus` codes | `code` |
| `identifier` | any identifier | `[system\\|]value` |
| `name` | Patient / Practitioner / Organization names | substring, case-insensitive |
| `gender` | Patient / Practitioner gender | `code` |
| `owner`, `requester` | Task.owner / Task.requester reference (or any resource's) | `Type/ID` |
| `_count` | at most this many results | positive integer |
| `_offset` | skip this many results first (paging) | integer ≥ 0 |

A comma in a value means OR (FHIR's rule); several parameters mean AND. Dates compare by day as
written in the resource (no time-zone shift): an operator's day is the hospital's day.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from medalliance.errors import InvalidArgument
from medalliance.hospital.fhir_validation import SUPPORTED_TYPES

SEARCH_PARAMETERS = (
    "_count",
    "_id",
    "_offset",
    "birthdate",
    "code",
    "date",
    "encounter",
    "gender",
    "identifier",
    "name",
    "owner",
    "patient",
    "requester",
    "status",
    "subject",
)
REFERENCE_PARAM = "_reference"  # every reference of a resource, as Type/id (export, erasure)

# The clinical date of each resource, first present wins (FHIR's `date` search parameter).
_DATE_ELEMENTS = (
    "effectiveDateTime",
    "effectiveInstant",
    "effectivePeriod.start",
    "onsetDateTime",
    "onsetPeriod.start",
    "period.start",
    "authoredOn",
    "recordedDate",
    "occurrenceDateTime",
    "occurrencePeriod.start",
    "performedDateTime",
    "performedPeriod.start",
    "started",
    "date",
    "recorded",
    "executionPeriod.start",
    "dateAsserted",
    "birthDate",
)
_CODE_ELEMENTS = ("code", "medicationCodeableConcept", "vaccineCode")
_DATE_QUERY = re.compile(r"^(eq|ne|lt|gt|le|ge)?(\d{4}(?:-\d{2}(?:-\d{2})?)?)(?:T.*)?$")
_DATE_VALUE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_ABSOLUTE = re.compile(r"^https?://.*?/([A-Z][A-Za-z]+/[A-Za-z0-9\-.]+)(?:/_history/.*)?$")


@dataclass(frozen=True, slots=True)
class IndexRow:
    param: str
    value: str
    value_high: str | None = None  # the last day of a date's range


def index_rows(resource: Mapping[str, Any]) -> list[IndexRow]:
    """The index rows of a (valid) resource; duplicates removed, order stable."""
    rows = list(_rows(resource))
    return list(dict.fromkeys(rows))


def search_sql(
    resource_type: str, params: Mapping[str, str], *, count: bool = False
) -> tuple[str, list[Any]]:
    """SQL (with `?` placeholders) selecting `content` of the matching resources in (type, id)
    order, and its arguments; with `count`, the number of matches (`_count`/`_offset` ignored).
    Raises `InvalidArgument` for an unknown parameter or bad value."""
    if resource_type not in SUPPORTED_TYPES:
        raise InvalidArgument(
            f"the hospital store keeps no {resource_type!r} resources; search one of "
            + ", ".join(sorted(SUPPORTED_TYPES))
        )
    unknown = sorted(set(params) - set(SEARCH_PARAMETERS))
    if unknown:
        raise InvalidArgument(
            f"unsupported search parameter(s) {', '.join(unknown)} for {resource_type}; "
            f"use {', '.join(SEARCH_PARAMETERS)}"
        )
    what = "COUNT(*)" if count else "content"
    sql = f"SELECT {what} FROM fhir_resource WHERE resource_type = ?"  # noqa: S608 - a constant
    args: list[Any] = [resource_type]
    for param in sorted(params):
        text = params[param]
        if param in ("_count", "_offset"):
            continue
        values = [v.strip() for v in str(text).split(",") if v.strip()]
        if not values:
            raise InvalidArgument(f"search parameter {param} has an empty value")
        if param == "_id":
            sql += f" AND id IN ({_marks(values)})"
            args += values
            continue
        condition, condition_args = _condition(param, values)
        sql += (
            " AND id IN (SELECT resource_id FROM fhir_search WHERE resource_type = ?"  # noqa: S608 - placeholders only
            f" AND param = ? AND ({condition}))"
        )
        args += [resource_type, "date" if param == "birthdate" else param, *condition_args]
    if count:
        return sql, args
    sql += " ORDER BY id"
    if "_count" in params or "_offset" in params:
        # SQLite needs a LIMIT before an OFFSET; 2**62 stands for "no limit" on both backends.
        sql += " LIMIT ? OFFSET ?"
        limit = _count(params["_count"]) if "_count" in params else 2**62
        args += [limit, _offset(params.get("_offset", "0"))]
    return sql, args


def reference_key(reference: str) -> str:
    """`Type/id` of a relative or absolute literal reference (history dropped), else as given."""
    match = _ABSOLUTE.match(reference)
    if match:
        return match.group(1)
    return reference.split("/_history/", 1)[0]


# --- private helpers ------------------------------------------------------------------------------


def _rows(resource: Mapping[str, Any]) -> Iterator[IndexRow]:
    resource_type = resource.get("resourceType")
    for element in ("subject", "patient", "for"):
        key = reference_key(str((resource.get(element) or {}).get("reference") or ""))
        if key.startswith("Patient/"):
            yield IndexRow("patient", key.removeprefix("Patient/"))
        if element == "subject" and "/" in key:
            yield IndexRow("subject", key)
            yield IndexRow("subject", key.split("/", 1)[1])
    encounters = [resource.get("encounter")]
    context = resource.get("context")
    if isinstance(context, Mapping):
        encounters += list(context.get("encounter") or ())
    for encounter in encounters:
        key = reference_key(str((encounter or {}).get("reference") or ""))
        if key.startswith("Encounter/"):
            yield IndexRow("encounter", key.removeprefix("Encounter/"))
    elements = _CODE_ELEMENTS + (("type",) if resource_type == "DocumentReference" else ())
    for element in elements:
        concept = resource.get(element)
        if isinstance(concept, Mapping):
            yield from _token_rows("code", concept.get("coding") or (), "system", "code")
    for identifier in resource.get("identifier") or ():
        yield from _token_rows("identifier", [identifier], "system", "value")
    yield from _status_rows(resource)
    yield from _date_rows(resource)
    yield from _name_rows(resource)
    if resource_type in ("Patient", "Practitioner") and isinstance(resource.get("gender"), str):
        yield IndexRow("gender", resource["gender"])
    for element in ("owner", "requester"):  # Task's parties: a HIS's incoming/outgoing search
        key = reference_key(str((resource.get(element) or {}).get("reference") or ""))
        if "/" in key:
            yield IndexRow(element, key)
    for reference in _references(resource):
        yield IndexRow(REFERENCE_PARAM, reference_key(reference))


def _token_rows(param: str, items: Any, system_key: str, value_key: str) -> Iterator[IndexRow]:
    for item in items:
        value = item.get(value_key)
        if isinstance(value, str) and value:
            system = item.get(system_key) or ""
            yield IndexRow(param, f"{system}|{value}")
            yield IndexRow(param, value)


def _status_rows(resource: Mapping[str, Any]) -> Iterator[IndexRow]:
    status = resource.get("status")
    if isinstance(status, str):
        yield IndexRow("status", status)
    clinical = resource.get("clinicalStatus")
    if isinstance(clinical, Mapping):
        for coding in clinical.get("coding") or ():
            if isinstance(coding.get("code"), str):
                yield IndexRow("status", coding["code"])


def _date_rows(resource: Mapping[str, Any]) -> Iterator[IndexRow]:
    for element in _DATE_ELEMENTS:
        value: Any = resource
        for part in element.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, str):
            low_high = _date_range(value)
            if low_high:
                yield IndexRow("date", *low_high)
            return


def _name_rows(resource: Mapping[str, Any]) -> Iterator[IndexRow]:
    names = resource.get("name")
    if isinstance(names, str):  # Organization.name
        yield IndexRow("name", names.lower())
        return
    for name in names or ():
        parts = [name.get("text"), name.get("family"), *(name.get("given") or ())]
        text = " ".join(p for p in parts if isinstance(p, str))
        if text:
            yield IndexRow("name", text.lower())


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str) and not item.startswith("#"):
                yield item
            elif key != "contained":
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _date_range(text: str) -> tuple[str, str] | None:
    """First and last day (YYYY-MM-DD) a FHIR date, dateTime or instant stands for."""
    match = _DATE_VALUE.match(text)
    if not match:
        return None
    year, month, day = match.groups()
    if day:
        return f"{year}-{month}-{day}", f"{year}-{month}-{day}"
    if month:  # "31" compares above every day of the month as text: no calendar needed
        return f"{year}-{month}-01", f"{year}-{month}-31"
    return f"{year}-01-01", f"{year}-12-31"


def _condition(param: str, values: list[str]) -> tuple[str, list[Any]]:
    if param in ("date", "birthdate"):
        parts, args = [], []
        for value in values:
            sql, sql_args = _date_condition(param, value)
            parts.append(sql)
            args += sql_args
        return " OR ".join(parts), args
    if param == "name":
        patterns = [f"%{_escape_like(v.lower())}%" for v in values]
        return " OR ".join(["value LIKE ? ESCAPE '\\'"] * len(values)), patterns
    if param in ("patient", "encounter", "subject", "owner", "requester"):
        values = [_reference_query(param, v) for v in values]
    return f"value IN ({_marks(values)})", values


def _date_condition(param: str, value: str) -> tuple[str, list[str]]:
    match = _DATE_QUERY.match(value)
    if not match:
        raise InvalidArgument(
            f"search parameter {param} needs [eq|ne|lt|gt|le|ge]YYYY[-MM[-DD]], e.g. ge2024-01-01"
        )
    prefix, date = match.group(1) or "eq", match.group(2)
    low_high = _date_range(date)
    assert low_high is not None  # the pattern above guarantees a date
    low, high = low_high
    # FHIR R4 §3.1.1.4.2: the resource's range against the parameter's range.
    conditions = {
        "eq": ("(value >= ? AND value_high <= ?)", [low, high]),
        "ne": ("(value < ? OR value_high > ?)", [low, high]),
        "lt": ("value < ?", [low]),
        "gt": ("value_high > ?", [high]),
        "le": ("value <= ?", [high]),
        "ge": ("value_high >= ?", [low]),
    }
    return conditions[prefix]


def _reference_query(param: str, value: str) -> str:
    key = reference_key(value)
    if param == "patient":
        return key.removeprefix("Patient/")
    if param == "encounter":
        return key.removeprefix("Encounter/")
    return key


def _count(text: str) -> int:
    # isdigit alone admits "²", which int() refuses: only ASCII digits are numbers here
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise InvalidArgument("search parameter _count needs a positive integer")
    return int(text)


def _offset(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise InvalidArgument("search parameter _offset needs a whole number")
    return int(text)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _marks(values: list[str]) -> str:
    return ", ".join("?" * len(values))
