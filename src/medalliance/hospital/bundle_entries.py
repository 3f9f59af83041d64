"""Read a FHIR Bundle's entries for import: parse, check its type and size, and give each entry
its stored `Type/id` (bundle_import.py says why ids are chosen so). Reads the store only to
honour a conditional create (`request.ifNoneExist`); writes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from medalliance.errors import InvalidArgument
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.fhir_validation import MAX_DEPTH, ResourceIssue, is_too_deep
from medalliance.hospital.search_index import reference_key

BUNDLE_TYPES = ("transaction", "batch", "collection", "searchset")
MAX_BUNDLE_BYTES = 50 * 1024 * 1024
MAX_ENTRIES = 100_000


@dataclass
class Entry:
    """One resource of the bundle with the id it is stored under. `aliases` (shared by all
    entries of a bundle) maps each fullUrl and source `Type/id` to the stored `Type/id`;
    `existing` is set when a conditional create matched a stored resource (nothing to write)."""

    resource_type: str
    resource_id: str
    resource: dict[str, Any]
    aliases: dict[str, str] = field(repr=False)
    existing: bool = False

    @property
    def key(self) -> str:
        return f"{self.resource_type}/{self.resource_id}"


def read_entries(
    bundle: Mapping[str, Any] | bytes, store: ClinicalStore
) -> tuple[list[Entry], list[ResourceIssue]]:
    """The bundle's entries with their stored ids, and the issues of entries that have none.
    Raises `InvalidArgument` for input that is not a Bundle of an accepted type or too large."""
    document = _parse(bundle)
    bundle_id = document.get("id") if isinstance(document.get("id"), str) else "?"
    bundle_type = document.get("type")
    raw_entries = document.get("entry") or []
    if not isinstance(raw_entries, list):
        raise InvalidArgument("Bundle.entry must be a list of entries")
    if len(raw_entries) > MAX_ENTRIES:
        raise InvalidArgument(
            f"the bundle has {len(raw_entries)} entries, more than {MAX_ENTRIES}; split it"
        )
    aliases: dict[str, str] = {}
    entries: list[Entry] = []
    issues: list[ResourceIssue] = []
    seen: set[str] = set()
    for index, item in enumerate(raw_entries):
        path = f"Bundle.entry[{index}]"
        resource = item.get("resource") if isinstance(item, Mapping) else None
        resource_type = resource.get("resourceType") if isinstance(resource, Mapping) else None
        if not isinstance(resource, Mapping) or not isinstance(resource_type, str):
            reason = "an entry needs a resource object with a resourceType"
            issues.append(ResourceIssue("Bundle", str(bundle_id), path, reason))
            continue
        request = item.get("request") if bundle_type in ("transaction", "batch") else None
        full_url = item.get("fullUrl") if isinstance(item.get("fullUrl"), str) else None
        try:
            resource_id, existing = _entry_id(resource, resource_type, request, full_url, store)
        except InvalidArgument as exc:
            original = resource.get("id")
            shown = original if isinstance(original, str) else "?"
            issues.append(ResourceIssue(resource_type, shown, f"{path}.request", str(exc)))
            continue
        entry = Entry(resource_type, resource_id, {**resource, "id": resource_id}, aliases)
        entry.existing = existing
        if entry.key in seen:
            reason = "appears twice in the bundle; keep one entry per resource"
            issues.append(ResourceIssue(resource_type, resource_id, path, reason))
            continue
        if full_url:
            aliases[full_url] = entry.key
            aliases.setdefault(reference_key(full_url), entry.key)
        original_id = resource.get("id")
        if isinstance(original_id, str):
            aliases.setdefault(f"{resource_type}/{original_id}", entry.key)
        seen.add(entry.key)
        entries.append(entry)
    return entries, issues


def derived_id(*parts: str) -> str:
    """A FHIR id (40 hex digits) that depends only on `parts`."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]


def content_id(resource: Mapping[str, Any]) -> str:
    """A FHIR id for a resource that carries none and has no fullUrl: from its content."""
    return derived_id(json.dumps(resource, sort_keys=True, ensure_ascii=False))


def _parse(bundle: Mapping[str, Any] | bytes) -> Mapping[str, Any]:
    if isinstance(bundle, (bytes, bytearray)):
        if len(bundle) > MAX_BUNDLE_BYTES:
            raise InvalidArgument(
                f"the bundle is {len(bundle) // (1024 * 1024)} MiB, more than "
                f"{MAX_BUNDLE_BYTES // (1024 * 1024)} MiB; split it into smaller bundles"
            )
        try:
            parsed = json.loads(bytes(bundle).decode("utf-8-sig"))  # FHIR JSON is UTF-8
        except UnicodeDecodeError:
            raise InvalidArgument("the bundle is not UTF-8 text; save it as UTF-8 JSON") from None
        except RecursionError:  # hostile nesting: json.loads recurses once per level
            raise InvalidArgument("the bundle's JSON is nested too deeply to be FHIR") from None
        except json.JSONDecodeError as exc:  # its message gives line and column, not content
            raise InvalidArgument(
                f"the bundle is not valid JSON (line {exc.lineno}, column {exc.colno})"
            ) from None
    else:
        parsed = bundle
    if is_too_deep(parsed, MAX_DEPTH + 3):  # Bundle.entry[i].resource, then the resource
        raise InvalidArgument(
            f"the bundle nests deeper than a FHIR resource may ({MAX_DEPTH} levels); "
            "check how it was generated"
        )
    if not isinstance(parsed, Mapping) or parsed.get("resourceType") != "Bundle":
        raise InvalidArgument('not a FHIR Bundle: the document needs "resourceType": "Bundle"')
    if parsed.get("type") not in BUNDLE_TYPES:
        raise InvalidArgument(
            f"a Bundle of type {parsed.get('type')!r} cannot be imported; use one of "
            + ", ".join(BUNDLE_TYPES)
        )
    return parsed


def _entry_id(
    resource: Mapping[str, Any],
    resource_type: str,
    request: Any,
    full_url: str | None,
    store: ClinicalStore,
) -> tuple[str, bool]:
    """(stored id, whether it already exists by a conditional create)."""
    own_id = resource.get("id") if isinstance(resource.get("id"), str) else None
    if isinstance(request, Mapping):
        method = str(request.get("method", "")).upper()
        if method == "PUT":
            return _put_id(str(request.get("url", "")), resource_type, own_id), False
        if method != "POST":
            raise InvalidArgument(
                f"request method {method or 'missing'} is not supported by import; use PUT or POST"
            )
        condition = request.get("ifNoneExist")
        if isinstance(condition, str) and condition:
            matches = _conditional_matches(resource_type, condition, store)
            if len(matches) == 1:
                return matches[0], True
            if len(matches) > 1:
                raise InvalidArgument(
                    f"ifNoneExist matches {len(matches)} stored resources; make it unique"
                )
    if own_id:
        return own_id, False
    if full_url:
        if full_url.startswith("urn:uuid:"):
            return full_url.removeprefix("urn:uuid:").lower(), False
        key = reference_key(full_url)
        if key.startswith(f"{resource_type}/"):
            return key.split("/", 1)[1], False
        return derived_id(full_url), False
    return content_id(resource), False


def _put_id(url: str, resource_type: str, own_id: str | None) -> str:
    if "?" in url:
        raise InvalidArgument("conditional update (PUT with a query) is not supported")
    url_type, _, url_id = reference_key(url).partition("/")
    if url_type != resource_type or not url_id or "/" in url_id:
        raise InvalidArgument(f"request.url must be {resource_type}/<id> for PUT")
    if own_id is not None and own_id != url_id:
        raise InvalidArgument("the resource's id differs from the id in request.url")
    return url_id


def _conditional_matches(resource_type: str, condition: str, store: ClinicalStore) -> list[str]:
    params = dict(parse_qsl(condition.lstrip("?"), keep_blank_values=True))
    try:
        found = store.search(resource_type, params)
    except InvalidArgument as exc:
        raise InvalidArgument(f"ifNoneExist: {exc}") from None
    return [str(resource["id"]) for resource in found]
