"""Export one patient's record (or one encounter of it) from the clinical store as an R4 Bundle.

The bundle (type `collection`) holds the Patient, everything that refers to it (or to the
encounter), and everything those refer to that the store holds (the practitioners and
organisations of the encounters, a report's observations), so that it imports on its own into
an empty store (bundle_import.py) and gives back the same resources. Reads only.
"""

from __future__ import annotations

from typing import Any

from medalliance.errors import InvalidArgument
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.search_index import reference_key

__all__ = ["DEFAULT_BASE_URL", "export_patient"]

# fullUrls need a base; `.invalid` (RFC 2606) says plainly that no server answers there.
DEFAULT_BASE_URL = "https://hospital.medalliance.invalid/fhir"


def export_patient(
    store: ClinicalStore,
    patient_id: str,
    encounter_id: str | None = None,
    *,
    base_url: str = DEFAULT_BASE_URL,
) -> dict[str, Any]:
    """A `collection` Bundle of the patient's record, or of one encounter of it, ordered by
    (type, id) after the Patient. Raises `ResourceNotFound` for an unknown patient or encounter,
    `InvalidArgument` for an encounter of another patient."""
    patient = store.get("Patient", patient_id)
    if encounter_id is None:
        start = [patient, *store.referring(f"Patient/{patient_id}")]
    else:
        encounter = store.get("Encounter", encounter_id)
        subject = reference_key(str((encounter.get("subject") or {}).get("reference", "")))
        if subject != f"Patient/{patient_id}":
            raise InvalidArgument(
                f"Encounter/{encounter_id} is not an encounter of Patient/{patient_id}; "
                f"see `medalliance hospital encounters --patient {patient_id}`"
            )
        start = [patient, encounter, *store.referring(f"Encounter/{encounter_id}")]
    resources = _with_referenced(store, start)
    first, rest = resources[0], sorted(resources[1:], key=lambda r: (r["resourceType"], r["id"]))
    base = base_url.rstrip("/")
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r}
            for r in [first, *rest]
        ],
    }


def _with_referenced(store: ClinicalStore, start: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`start` (in order, without duplicates) and, transitively, every stored resource it
    refers to."""
    found: dict[str, dict[str, Any]] = {}
    pending = list(start)
    while pending:
        resource = pending.pop(0)
        key = f"{resource['resourceType']}/{resource['id']}"
        if key in found:
            continue
        found[key] = resource
        for reference in _references(resource):
            target = reference_key(reference)
            resource_type, _, resource_id = target.partition("/")
            if target not in found and resource_id:
                referenced = store.find(resource_type, resource_id)
                if referenced is not None:
                    pending.append(referenced)
    return list(found.values())


def _references(value: Any) -> list[str]:
    if isinstance(value, dict):
        found: list[str] = []
        for key, item in value.items():
            if key == "reference" and isinstance(item, str) and not item.startswith("#"):
                found.append(item)
            elif key != "contained":
                found += _references(item)
        return found
    if isinstance(value, list):
        return [r for item in value for r in _references(item)]
    return []
