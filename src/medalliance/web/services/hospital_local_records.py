"""What the referring and the treating hospital keep of a referral in their own FHIR store,
beside what the connector imports: the origin keeps the referral's Task and ServiceRequest
(so its HIS finds its outgoing referrals as Tasks), the target keeps the discharge summary it
wrote on completing (so a return referral carries it back). Local writes only, no chain call.
"""

from __future__ import annotations

import base64
from typing import Any

from medalliance.app.referral_import import scoped
from medalliance.hospital.bundle_import import import_bundle
from medalliance.hospital.bundle_parts import urn
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.code_systems import DISCHARGE_SUMMARY, coding
from medalliance.hospital.identifiers import VISIT_NUMBER_SYSTEM
from medalliance.node.embedded import utc_now

__all__ = ["keep_discharge_summary", "keep_outgoing"]


def keep_outgoing(
    store: ClinicalStore, bundle: dict[str, Any], patient_id: str, referral_id: str, status: str
) -> None:
    """Keep the referral's Task and ServiceRequest (and the two Organizations) in the origin's
    own store, their references pointing at its own Patient and records, so the hospital's
    systems find the outgoing referral as a FHIR Task; the connector keeps its status in step.
    Source `outgoing:<referral id>`; the Task is a `draft` while the application waits."""
    local: dict[str, str] = {}
    kept = []
    for entry in bundle.get("entry") or ():
        url, resource = str(entry["fullUrl"]), entry["resource"]
        kind = resource["resourceType"]
        if kind == "Task":
            kept.append({**entry, "resource": {**resource, "status": status}})
        elif kind in _KEPT:
            kept.append(entry)
        elif kind == "Patient":
            local[url] = f"Patient/{patient_id}"
        elif "id" in resource and url == urn(referral_id, f"{kind}/{resource['id']}"):
            local[url] = f"{kind}/{resource['id']}"
    rewritten = _rewrite({"resourceType": "Bundle", "type": "collection", "entry": kept}, local)
    import_bundle(store, scoped(rewritten), source=f"outgoing:{referral_id}")


_KEPT = ("Task", "ServiceRequest", "Organization")


def keep_discharge_summary(
    store: ClinicalStore, visit_no: str, document_id: str, text: str, title: str
) -> None:
    """A discharge summary in the hospital's own record of the patient (a DocumentReference
    under the visit's Encounter): the feedback written on completing a referral, or the one a
    doctor writes on a return referral's form; a return referral carries it back. Skipped when
    the store lacks the visit's Encounter."""
    found = store.search("Encounter", {"identifier": f"{VISIT_NUMBER_SYSTEM}|{visit_no}"})
    if not found:
        return
    encounter = found[-1]
    subject = encounter.get("subject") or {}
    store.put(
        {
            "resourceType": "DocumentReference",
            "id": document_id[:64],
            "status": "current",
            "type": {"coding": [coding(*DISCHARGE_SUMMARY)]},
            "subject": subject,
            "date": utc_now().isoformat(timespec="seconds"),
            "description": title,
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain; charset=utf-8",
                        "data": base64.b64encode(text.encode()).decode("ascii"),
                        "title": title,
                    }
                }
            ],
            "context": {"encounter": [{"reference": f"Encounter/{encounter['id']}"}]},
        }
    )


def _rewrite(value: Any, local: dict[str, str]) -> Any:
    if isinstance(value, dict):
        out = {k: _rewrite(v, local) for k, v in value.items()}
        if isinstance(out.get("reference"), str) and out["reference"] in local:
            out["reference"] = local[out["reference"]]
        return out
    if isinstance(value, list):
        return [_rewrite(v, local) for v in value]
    return value
