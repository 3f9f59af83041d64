"""Is this JSON a FHIR R4 resource the hospital store accepts? Pure: no I/O.

The structure (cardinality, data types, dates, ids) is checked by the maintained model library
`fhir.resources` (its R4B models, which read R4 content: the resources we store did not change
between R4 and R4B). On top of that, what the library leaves open but a store needs: the
resource type is one we store, the status codes come from their required value sets, and every
`reference` is one the store can resolve.

Issues never quote the offending value: it may be a patient's name or identity number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from medalliance.errors import InvalidArgument

SUPPORTED_TYPES: frozenset[str] = frozenset(
    {
        "Patient",
        "Encounter",
        "Condition",
        "Observation",
        "DiagnosticReport",
        "Procedure",
        "MedicationRequest",
        "MedicationStatement",
        "AllergyIntolerance",
        "Immunization",
        "ImagingStudy",
        "DocumentReference",
        "ServiceRequest",
        "Task",
        "Provenance",
        "Organization",
        "Practitioner",
        "PractitionerRole",
    }
)

MAX_DEPTH = 64  # levels of objects and lists in one resource: real ones use under 15
ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # FHIR R4 `id` datatype
_TYPE = r"[A-Z][A-Za-z]{1,63}"
_ID = r"[A-Za-z0-9\-.]{1,64}"
_TYPE_RE = re.compile(rf"^{_TYPE}$")
# Relative `Type/id[/_history/v]`, absolute `http(s)://base/Type/id[...]`, `urn:uuid:`, `urn:oid:`,
# and `#local` for contained resources (FHIR R4 §2.3.0 "Reference").
_REFERENCE = re.compile(
    rf"^(?:(?:https?://\S+/)?{_TYPE}/{_ID}(?:/_history/{_ID})?"
    r"|urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|urn:oid:[0-2](?:\.(?:0|[1-9][0-9]*))+"
    r"|#[A-Za-z0-9\-.]{1,64})$"
)


def _codes(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Required bindings the library does not enforce (FHIR R4 value sets), (type, element) → codes.
_FHIR_CODES: Mapping[tuple[str, str], frozenset[str]] = {
    ("Patient", "gender"): frozenset({"male", "female", "other", "unknown"}),
    ("Practitioner", "gender"): frozenset({"male", "female", "other", "unknown"}),
    ("Encounter", "status"): _codes(
        "planned arrived triaged in-progress onleave finished cancelled entered-in-error unknown"
    ),
    ("Observation", "status"): _codes(
        "registered preliminary final amended corrected cancelled entered-in-error unknown"
    ),
    ("DiagnosticReport", "status"): _codes(
        "registered partial preliminary final amended corrected appended cancelled "
        "entered-in-error unknown"
    ),
    ("Procedure", "status"): _codes(
        "preparation in-progress not-done on-hold stopped completed entered-in-error unknown"
    ),
    ("MedicationRequest", "status"): _codes(
        "active on-hold cancelled completed entered-in-error stopped draft unknown"
    ),
    ("MedicationRequest", "intent"): _codes(
        "proposal plan order original-order reflex-order filler-order instance-order option"
    ),
    ("MedicationStatement", "status"): _codes(
        "active completed entered-in-error intended stopped on-hold unknown not-taken"
    ),
    ("Immunization", "status"): frozenset({"completed", "entered-in-error", "not-done"}),
    ("ImagingStudy", "status"): frozenset(
        {"registered", "available", "cancelled", "entered-in-error", "unknown"}
    ),
    ("DocumentReference", "status"): frozenset({"current", "superseded", "entered-in-error"}),
    ("ServiceRequest", "status"): _codes(
        "draft active on-hold revoked completed entered-in-error unknown"
    ),
    ("ServiceRequest", "intent"): _codes(
        "proposal plan directive order original-order reflex-order filler-order instance-order "
        "option"
    ),
    ("Task", "status"): _codes(
        "draft requested received accepted rejected ready cancelled in-progress on-hold failed "
        "completed entered-in-error"
    ),
    ("Task", "intent"): _codes(
        "unknown proposal plan order original-order reflex-order filler-order instance-order option"
    ),
}
# Elements with cardinality 1..1 among the codes above (the rest are 0..1).
_REQUIRED_CODES = frozenset(k for k in _FHIR_CODES if k[1] in ("status", "intent")) - {
    ("Patient", "status")
}


@dataclass(frozen=True, slots=True)
class ResourceIssue:
    """One problem of one resource: `path` the element (`Observation.code.coding[0]`), `reason`
    what is wrong, without the offending value."""

    resource_type: str
    resource_id: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.resource_type}/{self.resource_id} {self.path}: {self.reason}"


class InvalidResource(InvalidArgument):
    """One or more resources are not valid FHIR R4 for the store; `.issues` lists every one."""

    _SHOWN_MAX = 200  # a 100,000-entry bundle must not make a 10 MB message

    def __init__(self, issues: Sequence[ResourceIssue]) -> None:
        self.issues: tuple[ResourceIssue, ...] = tuple(issues)
        shown = "; ".join(str(issue) for issue in self.issues[: self._SHOWN_MAX])
        more = len(self.issues) - self._SHOWN_MAX
        suffix = f"; and {more} more issues" if more > 0 else ""
        super().__init__(f"invalid FHIR resource: {shown}{suffix}")


def validate_resource(resource: Mapping[str, Any]) -> list[ResourceIssue]:
    """Every issue of `resource` as FHIR R4 for the store; an empty list when it is valid.
    Never raises for bad input (any JSON value is accepted and judged)."""
    if not isinstance(resource, Mapping):
        return [ResourceIssue("?", "?", "Resource", "not a JSON object")]
    resource_type = resource.get("resourceType")
    raw_id = resource.get("id")
    resource_id = raw_id if isinstance(raw_id, str) and ID_PATTERN.match(raw_id) else "?"
    if not isinstance(resource_type, str) or resource_type not in SUPPORTED_TYPES:
        known = isinstance(resource_type, str) and _TYPE_RE.match(resource_type)
        what = str(resource_type) if known else "?"
        return [
            ResourceIssue(
                what,
                resource_id,
                "Resource.resourceType",
                "not a resource type the hospital store keeps; use one of "
                + ", ".join(sorted(SUPPORTED_TYPES)),
            )
        ]
    if is_too_deep(resource, MAX_DEPTH):
        reason = f"nested deeper than {MAX_DEPTH} levels; no FHIR resource needs that"
        return [ResourceIssue(resource_type, resource_id, resource_type, reason)]
    issues = _library_issues(resource_type, resource_id, resource)
    issues += _store_issues(resource_type, resource_id, resource, issues)
    return issues


def is_too_deep(value: Any, limit: int) -> bool:
    """Whether JSON `value` nests objects and lists deeper than `limit`. Iterative, so hostile
    nesting cannot exhaust the stack here (the recursive checks after it can then recurse)."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            return True
        if isinstance(item, Mapping):
            pending += [(child, depth + 1) for child in item.values()]
        elif isinstance(item, list):
            pending += [(child, depth + 1) for child in item]
    return False


def _library_issues(
    resource_type: str, resource_id: str, resource: Mapping[str, Any]
) -> list[ResourceIssue]:
    from fhir.resources.R4B import get_fhir_model_class  # imported late: 1 s to load the models

    model = get_fhir_model_class(resource_type)
    try:
        model.model_validate(dict(resource))
    except ValidationError as exc:
        return [
            ResourceIssue(
                resource_type,
                resource_id,
                _path(resource_type, error["loc"]),
                _reason(error),
            )
            for error in exc.errors(include_url=False)
        ]
    except (TypeError, ValueError) as exc:  # the library's own checks, outside pydantic
        return [ResourceIssue(resource_type, resource_id, resource_type, _safe(str(exc), None))]
    return []


def _store_issues(
    resource_type: str,
    resource_id: str,
    resource: Mapping[str, Any],
    found: Sequence[ResourceIssue],
) -> list[ResourceIssue]:
    issues: list[ResourceIssue] = []
    seen_paths = {issue.path for issue in found}

    def add(path: str, reason: str) -> None:
        if path not in seen_paths:
            seen_paths.add(path)
            issues.append(ResourceIssue(resource_type, resource_id, path, reason))

    raw_id = resource.get("id")
    if raw_id is not None and not (isinstance(raw_id, str) and ID_PATTERN.match(raw_id)):
        add(f"{resource_type}.id", "not a FHIR id: 1-64 of A-Z a-z 0-9 - .")
    for (rtype, element), codes in _FHIR_CODES.items():
        if rtype != resource_type:
            continue
        value = resource.get(element)
        path = f"{resource_type}.{element}"
        if value is None:
            if (rtype, element) in _REQUIRED_CODES:
                add(path, "required")
        elif not isinstance(value, str) or value not in codes:
            add(path, "not a code of its value set; use one of " + ", ".join(sorted(codes)))
    for path in _control_characters(resource, resource_type):
        add(path, "contains a control character (FHIR strings allow only tab, CR and LF)")
    for path, reference in _references(resource, resource_type):
        if not isinstance(reference, str) or not _REFERENCE.match(reference):
            add(
                path,
                "not a resolvable reference: use Type/id, an absolute URL ending in Type/id, "
                "urn:uuid:<uuid> or #contained-id",
            )
    return issues


def _references(value: Any, path: str) -> list[tuple[str, Any]]:
    """(element path, value) of every `reference` element under `value`."""
    found: list[tuple[str, Any]] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == "reference" and not isinstance(item, (Mapping, list)):
                found.append((f"{path}.reference", item))
            elif key != "contained":  # contained resources are judged as themselves
                found += _references(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _references(item, f"{path}[{index}]")
    return found


def _control_characters(value: Any, path: str) -> list[str]:
    """Paths of strings holding a control character other than tab, CR and LF (FHIR R4 §2.1.28.0
    "string"; PostgreSQL's JSONB refuses NUL outright)."""
    if isinstance(value, str):
        return [path] if _CONTROL.search(value) else []
    if isinstance(value, Mapping):
        return [
            p for key, item in value.items() for p in _control_characters(item, f"{path}.{key}")
        ]
    if isinstance(value, list):
        return [
            p for i, item in enumerate(value) for p in _control_characters(item, f"{path}[{i}]")
        ]
    return []


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _path(resource_type: str, loc: Sequence[int | str]) -> str:
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != "__root__":
            path += f".{part}"
    return path


def _reason(error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    if kind in ("missing", "model_field_validation.missing"):
        return "required"
    if kind == "extra_forbidden":
        return "not an element of this resource type (misspelt?)"
    message = str(error.get("msg", "invalid"))
    message = message.removeprefix("Value error, ")
    spec = _SPEC_MISMATCH.match(message)
    if spec:
        kind = spec.group(1)
        return f"not a FHIR {kind[0].lower()}{kind[1:]}" + _FORMAT_HINTS.get(kind, "")
    return _safe(message, error.get("input"))


_SPEC_MISMATCH = re.compile(r"^(\w+) value string does not match spec regex")
_FORMAT_HINTS = {
    "Date": " (YYYY, YYYY-MM or YYYY-MM-DD)",
    "DateTime": " (YYYY-MM-DD, or YYYY-MM-DDThh:mm:ss with a time zone such as +08:00)",
    "Instant": " (YYYY-MM-DDThh:mm:ss with a time zone such as +08:00)",
    "Time": " (hh:mm:ss)",
}


def _safe(message: str, offending: Any) -> str:
    """The library's message without the offending value, which may be patient data."""
    if isinstance(offending, (str, int, float)) and str(offending) and str(offending) in message:
        message = message.replace(str(offending), "…")
    # Messages of the form "... got 'x'" or "input_value=..." quote input: cut the quote.
    return re.sub(r"(input_value|got)\s*[=:]?\s*'.*?'", r"\1 …", message)
