"""Import a FHIR R4 Bundle (transaction, batch, collection, searchset) into the clinical store.

The rules (docs/hospital-store.md "Import"):
- Every entry gets a stable `Type/id`: its own id; else the id its `request.url` (PUT) or its
  fullUrl (`urn:uuid:<uuid>`, `.../Type/id`) names; else one derived from its content. Re-importing
  the same bundle therefore writes the same resources, and changes nothing.
- References to bundle entries (by fullUrl, `Type/id` or absolute URL) are rewritten to the
  stored `Type/id`; a reference to anything neither in the bundle nor in the store is an issue.
- Entries of types the store does not keep (Synthea's Claim, Location, Medication, ...) are not
  imported and are reported as `ignored`; references to them are rewritten but not checked.
- Patients get the alliance pseudonym (identifier `PSEUDONYM_SYSTEM`) from `pseudonym(id_type,
  number)`; a malformed resident ID number is an issue of that Patient.
- Strict by default: any issue refuses the bundle (`InvalidResource` listing every issue) and
  nothing is written. `skip_invalid=True` imports the rest: what is invalid, and what refers to
  it, is skipped and reported. All writes happen in one store transaction, after the pseudonym
  service was asked (never hold a database transaction across a network call).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from medalliance.errors import InvalidArgument
from medalliance.hospital.bundle_entries import Entry, read_entries
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.fhir_validation import (
    SUPPORTED_TYPES,
    InvalidResource,
    ResourceIssue,
    validate_resource,
)
from medalliance.hospital.identifiers import PSEUDONYM_SYSTEM, patient_identity, with_identifier
from medalliance.hospital.search_index import reference_key
from medalliance.privacy.pseudonym import normalise

__all__ = ["ImportReport", "import_bundle"]


@dataclass
class ImportReport:
    """What one import did, by `Type/id`; `patients` holds (patient id, pseudonym)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[ResourceIssue] = field(default_factory=list)
    patients: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # types the store does not keep
    without_pseudonym: list[str] = field(default_factory=list)  # patients with no known ID


def import_bundle(
    store: ClinicalStore,
    bundle: Mapping[str, Any] | bytes,
    *,
    pseudonym: Callable[[str, str], str] | None = None,
    skip_invalid: bool = False,
    source: str = "local",
) -> ImportReport:
    """Import `bundle` (parsed, or its JSON bytes) into `store`. Raises `InvalidArgument` for
    something that is not a bundle of an accepted type or is too large, `InvalidResource` (with
    every issue) for an invalid bundle unless `skip_invalid`; in both cases nothing is written.
    Errors of `pseudonym` (the service unreachable) propagate, also with nothing written."""
    entries, issues = read_entries(bundle, store)
    report = ImportReport()
    kept = [e for e in entries if e.resource_type in SUPPORTED_TYPES]
    report.ignored = sorted(e.key for e in entries if e.resource_type not in SUPPORTED_TYPES)
    ignored_keys = set(report.ignored)
    by_key = {e.key: e for e in kept}
    bad: set[str] = set()
    for entry in kept:
        found = _resolve_references(entry, by_key, ignored_keys, store)
        found += validate_resource(entry.resource)
        if entry.resource_type == "Patient":
            found += _identity_issues(entry)
        if found:
            bad.add(entry.key)
            issues += found
    if issues and not skip_invalid:
        raise InvalidResource(issues)
    bad = _with_dependents(bad, kept, issues)
    report.skipped = issues
    to_write = [e for e in kept if e.key not in bad and not e.existing]
    report.unchanged += sorted(e.key for e in kept if e.existing and e.key not in bad)
    _add_pseudonyms(to_write, pseudonym, report)
    lists = {"created": report.created, "updated": report.updated, "unchanged": report.unchanged}
    with store.transaction():
        for entry in to_write:
            # Validated above; a Patient's added pseudonym identifier is a plain string.
            _, outcome = store.put_outcome(entry.resource, source=source, validated=True)
            lists[outcome].append(entry.key)
    return report


# --- private helpers ------------------------------------------------------------------------------


def _resolve_references(
    entry: Entry, by_key: Mapping[str, Entry], ignored: set[str], store: ClinicalStore
) -> list[ResourceIssue]:
    """Rewrite `entry.resource`'s references to stored `Type/id`s; issues for dangling ones."""
    issues: list[ResourceIssue] = []

    def visit(value: Any, path: str) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if key == "reference" and isinstance(item, str):
                    out[key] = resolve(item, f"{path}.reference")
                elif key == "contained":
                    out[key] = item
                else:
                    out[key] = visit(item, f"{path}.{key}")
            return out
        if isinstance(value, list):
            return [visit(item, f"{path}[{i}]") for i, item in enumerate(value)]
        return value

    def resolve(reference: str, path: str) -> str:
        if reference.startswith("#"):
            return reference
        if "?" in reference:  # a conditional reference, as Synthea writes: Type?identifier=s|v
            return resolve_conditional(reference, path)
        target = entry.aliases.get(reference) or reference_key(reference)
        if reference.startswith("urn:") and reference not in entry.aliases:
            issues.append(_issue(entry, path, "refers to a urn not among the bundle's fullUrls"))
            return reference
        if target in by_key or target in ignored or target.split("/")[0] not in SUPPORTED_TYPES:
            return target
        resource_type, _, resource_id = target.partition("/")
        if store.find(resource_type, resource_id) is None:
            issues.append(
                _issue(entry, path, f"refers to {target}, neither in the bundle nor in the store")
            )
        return target

    def resolve_conditional(reference: str, path: str) -> str:
        resource_type, _, query = reference.partition("?")
        params = dict(parse_qsl(query, keep_blank_values=True))
        wanted = params.get("identifier", "")
        if set(params) != {"identifier"} or resource_type not in SUPPORTED_TYPES:
            issues.append(
                _issue(entry, path, "a conditional reference must be Type?identifier=s|v")
            )
            return reference
        found = [e.key for e in by_key.values() if e.resource_type == resource_type
                 and wanted in _identifier_tokens(e.resource)]  # fmt: skip
        if not found:
            found = [f"{resource_type}/{r['id']}" for r in store.search(resource_type, params)]
        if len(found) != 1:
            count = "nothing" if not found else f"{len(found)} resources"
            issues.append(_issue(entry, path, f"the conditional reference matches {count}"))
            return reference
        return found[0]

    entry.resource = visit(entry.resource, entry.resource_type)
    return issues


def _identifier_tokens(resource: Mapping[str, Any]) -> set[str]:
    tokens = set()
    for identifier in resource.get("identifier") or ():
        value = identifier.get("value")
        tokens |= {f"{identifier.get('system') or ''}|{value}", str(value)}
    return tokens


def _identity_issues(entry: Entry) -> list[ResourceIssue]:
    identity = patient_identity(entry.resource)
    if identity is None:
        return []
    try:
        normalise(*identity)
    except InvalidArgument as exc:
        return [_issue(entry, "Patient.identifier", f"{identity[0]}: {exc}")]
    return []


def _add_pseudonyms(
    entries: list[Entry], pseudonym: Callable[[str, str], str] | None, report: ImportReport
) -> None:
    for entry in entries:
        if entry.resource_type != "Patient":
            continue
        identity = patient_identity(entry.resource)
        if identity is None:
            report.without_pseudonym.append(entry.resource_id)
            continue
        if pseudonym is not None:
            entry.resource = with_identifier(entry.resource, PSEUDONYM_SYSTEM, pseudonym(*identity))
        for identifier in entry.resource.get("identifier") or ():
            if identifier.get("system") == PSEUDONYM_SYSTEM:
                report.patients.append((entry.resource_id, str(identifier.get("value"))))


def _with_dependents(bad: set[str], entries: list[Entry], issues: list[ResourceIssue]) -> set[str]:
    """`bad` and every entry that refers, directly or not, to one of them (each such entry gets
    an issue of its own, so the report says why it was skipped)."""
    changed = True
    while changed:
        changed = False
        for entry in entries:
            if entry.key in bad:
                continue
            target = next((k for k in _reference_keys(entry.resource) if k in bad), None)
            if target is not None:
                bad.add(entry.key)
                issues.append(_issue(entry, entry.resource_type, f"refers to skipped {target}"))
                changed = True
    return bad


def _reference_keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                found.append(item)
            elif key != "contained":
                found += _reference_keys(item)
        return found
    if isinstance(value, list):
        return [k for item in value for k in _reference_keys(item)]
    return []


def _issue(entry: Entry, path: str, reason: str) -> ResourceIssue:
    return ResourceIssue(entry.resource_type, entry.resource_id, path, reason)
