"""The building blocks the alliance's referral and feedback Bundles share: deterministic ids, the
Organization of an MSP, attachments, and the `collection` Bundle around the entries. Pure.

Ids are UUIDv5 of the referral id and the entry's role, so building the same referral twice gives
the same Bundle, and the feedback's Task is the referral's Task (same id) with its new status.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Sequence
from typing import Any

from medalliance.hospital.bundle_checks import InvalidBundle, unresolved_references, validate_bundle
from medalliance.hospital.code_systems import MSP_ID_SYSTEM, REFERRAL_ID_SYSTEM

_NAMESPACE = uuid.UUID("5d1f0b3e-8c52-4f0e-9a61-2b7c1e4d9a00")  # the alliance's bundle ids
# FHIR `instant`: Bundle.timestamp and DocumentReference.date need the seconds and a time zone.
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
INSTANT_HINT = "a datetime with a time zone, e.g. 2026-12-03T09:30:00+08:00"
# The chain's identifiers (referral ids, visit numbers, pseudonyms, MSP ids), as the contracts
# accept them (alliance/common.py check_id), so a Bundle never names what the chain cannot.
_CHAIN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Whitespace a FHIR string may not hold (anything but space, tab, CR, LF: e.g. a no-break space).
_ODD_SPACE = re.compile(r"[^\S \r\n\t]")
_MIME_TYPE = re.compile(r"[^\s/]+/[^\s;]+(; ?[^\s]+)*")


def is_instant(text: str) -> bool:
    """Whether `text` is a FHIR instant (date, time to the second, time zone)."""
    return bool(_INSTANT.fullmatch(text))


def id_problems(**fields: str) -> list[str]:
    """A problem sentence for each field that is not an identifier the chain accepts."""
    return [
        f"{name} must be 1-64 letters, digits or ._- (as on the chain)"
        for name, value in fields.items()
        if not _CHAIN_ID.fullmatch(value)
    ]


def text_problems(**fields: str) -> list[str]:
    """A problem sentence for each free-text field that is empty or only whitespace."""
    return [f"{name} must not be empty" for name, value in fields.items() if not value.strip()]


def fhir_text(text: str) -> str:
    """Free text as a FHIR string: whitespace FHIR does not allow (a no-break space pasted from a
    word processor) becomes a space, so a doctor's note is never refused for it."""
    return _ODD_SPACE.sub(" ", text)


def is_mime_type(text: str) -> bool:
    """Whether `text` reads as a MIME type (type/subtype, parameters allowed)."""
    return bool(_MIME_TYPE.fullmatch(text))


def urn(referral_id: str, role: str) -> str:
    """The fullUrl of the entry playing `role` (task, patient...) in the referral's Bundles."""
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{referral_id}|{role}')}"


def resource_id(full_url: str) -> str:
    """The resource id of an entry whose fullUrl `urn` made: the UUID itself."""
    return full_url.removeprefix("urn:uuid:")


def identifier(system: str, value: str) -> dict[str, str]:
    """A FHIR Identifier."""
    return {"system": system, "value": value}


def organization(msp_id: str) -> tuple[str, dict[str, Any]]:
    """(fullUrl, Organization) of an alliance member; one id per MSP in every Bundle."""
    full_url = urn("", f"organization/{msp_id}")
    resource = {
        "resourceType": "Organization",
        "id": resource_id(full_url),
        "identifier": [identifier(MSP_ID_SYSTEM, msp_id)],
        "active": True,
        "name": msp_id,
    }
    return full_url, resource


def attachment(title: str, content_type: str, data: bytes) -> dict[str, Any]:
    """A FHIR Attachment carrying `data` inline (base64)."""
    return {
        "contentType": content_type,
        "data": base64.b64encode(data).decode("ascii"),
        "size": len(data),
        "title": title,
    }


def collection_bundle(
    referral_id: str, role: str, timestamp: str, items: Sequence[tuple[str, dict[str, Any]]]
) -> dict[str, Any]:
    """The `collection` Bundle of (fullUrl, resource) `items`. The caller has checked every
    input, so a Bundle that does not validate or resolve is our bug: AssertionError."""
    bundle = {
        "resourceType": "Bundle",
        "id": resource_id(urn(referral_id, f"{role}/bundle")),
        "identifier": identifier(REFERRAL_ID_SYSTEM, referral_id),
        "type": "collection",
        "timestamp": timestamp,
        "entry": [{"fullUrl": url, "resource": resource} for url, resource in items],
    }
    try:
        validate_bundle(bundle)
    except InvalidBundle as exc:
        raise AssertionError(f"the {role} Bundle does not validate: {exc}") from exc
    assert not unresolved_references(items), "every reference resolves inside the Bundle"
    return bundle
