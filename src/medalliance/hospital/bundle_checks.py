"""Checks on a FHIR R4 Bundle held as JSON values: validation with `fhir.resources` (R4B) and the
resolution of references inside the bundle. Pure: no I/O.

Error messages name the element path (`entry[2].resource.subject.reference`) and the rule, never
the value found there: a bundle carries patient data and messages reach logs (style.md §2, §5).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pydantic
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from medalliance.errors import InvalidArgument

_ERRORS_SHOWN = 10  # a bundle of 1000 bad entries gets a readable message, not 1000 lines


class InvalidBundle(InvalidArgument):
    """A Bundle that is not valid FHIR R4 or breaks a rule of the alliance's bundles."""

    def __init__(self, problems: Sequence[str]) -> None:
        shown = "; ".join(problems[:_ERRORS_SHOWN])
        more = len(problems) - _ERRORS_SHOWN
        suffix = f"; and {more} more" if more > 0 else ""
        super().__init__(f"invalid FHIR Bundle: {shown}{suffix}")
        self.problems = tuple(problems)


def validate_bundle(bundle: Mapping[str, Any]) -> None:
    """Check that `bundle` is a FHIR R4 Bundle whose every entry's resource validates with
    fhir.resources (R4B models). Raises InvalidBundle listing each fault by element path."""
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        raise InvalidBundle(["resourceType: the document must be a FHIR Bundle"])
    problems = list(_unknown_resource_types(bundle))
    if problems:  # fhir.resources fails with a KeyError on these: say what is wrong first
        raise InvalidBundle(problems)
    try:
        Bundle.model_validate(bundle)
    except pydantic.ValidationError as exc:
        raise InvalidBundle([_describe(error, "") for error in exc.errors()]) from None
    except Exception as exc:  # the library's call only
        # fhir.resources raises plain errors (KeyError, TypeError...) for some shapes of input;
        # the exception's type name is safe to show, its text may quote the input.
        raise InvalidBundle(
            [f"the Bundle does not parse as FHIR R4 ({type(exc).__name__})"]
        ) from None


def validate_resource(resource: Mapping[str, Any], path: str) -> None:
    """Check one resource (a dict with resourceType) with fhir.resources; faults are reported
    under `path` (e.g. `supporting[2]`). Raises InvalidBundle."""
    kind = resource.get("resourceType") if isinstance(resource, Mapping) else None
    if not isinstance(kind, str) or not _is_resource_type(kind):
        raise InvalidBundle([f"{path}.resourceType is not a FHIR R4 resource type"])
    try:
        get_fhir_model_class(kind).model_validate(resource)
    except pydantic.ValidationError as exc:
        raise InvalidBundle([_describe(error, path) for error in exc.errors()]) from None
    except Exception as exc:  # as in validate_bundle
        raise InvalidBundle([f"{path} does not parse as FHIR R4 ({type(exc).__name__})"]) from None


def entries(bundle: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(fullUrl, resource) of each entry of a validated bundle, in order; an entry without a
    resource or fullUrl is refused (the alliance's bundles always carry both)."""
    found: list[tuple[str, dict[str, Any]]] = []
    problems: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(bundle.get("entry") or ()):
        full_url, resource = entry.get("fullUrl"), entry.get("resource")
        if not isinstance(resource, dict):
            problems.append(f"entry[{index}].resource is missing")
        elif not isinstance(full_url, str):
            problems.append(f"entry[{index}].fullUrl is missing")
        elif full_url in seen:
            problems.append(f"entry[{index}].fullUrl repeats an earlier entry's")
        else:
            seen.add(full_url)
            found.append((full_url, resource))
    if problems:
        raise InvalidBundle(problems)
    return found


def reference_index(items: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, str]:
    """Every way a reference may name an entry (its fullUrl, `Type/id`, and the absolute URL's
    `Type/id` tail) → that entry's fullUrl."""
    index: dict[str, str] = {}
    for full_url, resource in items:
        index[full_url] = full_url
        local = _local_id(resource)
        if local is not None:
            index.setdefault(local, full_url)
        tail = "/".join(full_url.split("/")[-2:])
        if full_url.startswith(("http://", "https://")) and tail == local:
            index.setdefault(tail, full_url)
    return index


def resolve(reference: str, index: Mapping[str, str]) -> str | None:
    """The fullUrl `reference` names in the bundle (version suffixes ignored), or None."""
    if reference in index:
        return index[reference]
    if "/_history/" in reference:
        return resolve(reference.split("/_history/")[0], index)
    if reference.startswith(("http://", "https://")):
        return index.get("/".join(reference.split("/")[-2:]))
    return None


def references(value: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(element path, the Reference object) of every literal reference within `value`; the
    objects are the caller's own, so a builder may rewrite them in place."""
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            yield path, value
        for key, item in value.items():
            if key != "contained":  # contained resources resolve within their container
                yield from references(item, f"{path}.{key}")
    elif isinstance(value, list):
        for position, item in enumerate(value):
            yield from references(item, f"{path}[{position}]")


def unresolved_references(items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """Element paths of the references that name nothing inside the bundle."""
    index = reference_index(items)
    problems = []
    for position, (_, resource) in enumerate(items):
        contained = {f"#{c.get('id')}" for c in resource.get("contained") or ()}
        for path, ref in references(resource, f"entry[{position}].resource"):
            target = ref["reference"]
            if target not in contained and resolve(target, index) is None:
                problems.append(f"{path}.reference does not resolve inside the bundle")
    return problems


def _local_id(resource: Mapping[str, Any]) -> str | None:
    kind, local = resource.get("resourceType"), resource.get("id")
    return f"{kind}/{local}" if isinstance(kind, str) and isinstance(local, str) else None


def _unknown_resource_types(bundle: Mapping[str, Any]) -> Iterator[str]:
    found = bundle.get("entry")
    if not isinstance(found, list):
        return
    for index, entry in enumerate(found):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        kind = resource.get("resourceType")
        if not isinstance(kind, str) or not _is_resource_type(kind):
            yield f"entry[{index}].resource.resourceType is not a FHIR R4 resource type"


def _is_resource_type(kind: str) -> bool:
    if not kind.isidentifier() or not kind[:1].isupper():
        return False
    try:
        get_fhir_model_class(kind)
    except (KeyError, ValueError):
        return False
    return True


def _describe(error: Mapping[str, Any], root: str) -> str:
    path = root + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]
    )
    message = str(error.get("msg", ""))
    found = error.get("input")
    # Some validators quote the value they refused: then say only the kind of fault.
    if isinstance(found, (str, int, float)) and str(found) and str(found) in message:
        message = str(error.get("type", "invalid value"))
    return f"{path.lstrip('.') or root or 'Bundle'}: {message}"
