"""The referring side: a referral Bundle built from the hospital's clinical store, sealed and
shared; the feedback Bundle on completion.

The doctor names the patient or the encounter (the visit) and, optionally, the resources to send
(`Type/id`); without a selection the referral carries the minimum its type needs: the patient's
active Conditions, the encounter, and its Observations, DiagnosticReports and ImagingStudies
(else, or when it has none yet, the patient's most recent Observations and DiagnosticReports);
a downward (return) referral adds the encounter's DocumentReferences, its discharge summary. The Bundle (hospital/referral_bundle.py) is sealed by
the privacy module for the receiving hospital (and the writer's regulator), registered in the
`records` contract and handed to the writer's peer, which passes it on; the chain learns its
hash only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from medalliance.app.alliance_network import AllianceNetwork, Committed
from medalliance.app.packages import seal_package
from medalliance.app.pseudonyms import PseudonymClient
from medalliance.errors import InvalidArgument, NotFound
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.code_systems import ICD10_SYSTEM
from medalliance.hospital.identifiers import (
    PSEUDONYM_SYSTEM,
    VISIT_NUMBER_SYSTEM,
    identifier_value,
    patient_identity,
    with_identifier,
)
from medalliance.hospital.referral_bundle import (
    ReferralRequest,
    build_feedback_bundle,
    build_referral_bundle,
)
from medalliance.node.embedded import utc_now
from medalliance.node.package_holding import Held
from medalliance.privacy.documents import address_of

RECENT = 10  # Observations / DiagnosticReports of a patient sent by default, newest first


@dataclass(frozen=True, slots=True)
class ReferralDraft:
    """What the referring doctor decides: the clinical parts stay in the store and the Bundle."""

    referral_id: str
    to_org: str
    patient_id: str | None = None  # the local Patient's id, or
    encounter_id: str | None = None  # the local Encounter (the visit) the referral is about, or
    visit: str | None = None  # its visit number (就诊号)
    direction: str = "UP"
    priority: str = "routine"
    department: str = "03"  # code_systems.DEPARTMENTS
    purpose: str = field(default="", repr=False)
    select: tuple[str, ...] = ()  # "Type/id" of the resources to send; () = the defaults
    # (ICD-10 code, display) the doctor entered; () = those of the selected or active Conditions
    diagnoses: tuple[tuple[str, str], ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class BuiltReferral:
    bundle: dict[str, Any] = field(repr=False)
    patient_ref: str
    visit_number: str


def build_from_store(
    store: ClinicalStore,
    draft: ReferralDraft,
    *,
    from_org: str,
    pseudonyms: PseudonymClient | None = None,
    authored_on: str | None = None,
) -> BuiltReferral:
    """The referral Bundle of `draft` from the store. The patient's pseudonym is its
    PSEUDONYM_SYSTEM identifier, else derived through `pseudonyms` and written back to the
    Patient. Raises NotFound (unknown patient, encounter or selected resource) or
    InvalidArgument (nothing to refer, a resource of another patient) before anything is built."""
    patient, encounter = _subject(store, draft)
    patient_ref = _pseudonym(store, patient, pseudonyms)
    patient = with_identifier(patient, PSEUDONYM_SYSTEM, patient_ref)
    visit_number = _visit_number(store, patient, encounter)
    if draft.select:
        selected = [_selected(store, ref) for ref in draft.select]
    else:
        selected = default_selection(store, patient["id"], encounter, draft.direction)
    diagnoses = (
        list(draft.diagnoses)
        or _diagnoses(selected)
        or _diagnoses(_active_conditions(store, patient["id"]))
    )
    if not diagnoses:
        raise InvalidArgument(
            f"referral {draft.referral_id}: the patient has no active Condition with an ICD-10 "
            "code to refer for; record the diagnosis first or select a Condition"
        )
    request = ReferralRequest(
        referral_id=draft.referral_id,
        visit_number=visit_number,
        patient_ref=patient_ref,
        from_org=from_org,
        to_org=draft.to_org,
        direction=draft.direction,
        priority=draft.priority,
        diagnoses=tuple(diagnoses),
        department=draft.department,
        purpose=draft.purpose,
        authored_on=authored_on or utc_now().isoformat(timespec="seconds"),
    )
    bundle = build_referral_bundle(request, patient, selected)
    return BuiltReferral(bundle, patient_ref, visit_number)


def default_selection(
    store: ClinicalStore, patient_id: str, encounter: dict[str, Any] | None, direction: str
) -> list[dict[str, Any]]:
    """The minimum a referral of `direction` carries (see the module docstring)."""
    selected = list(_active_conditions(store, patient_id))
    findings: list[dict[str, Any]] = []
    if encounter is not None:
        scope = {"encounter": f"Encounter/{encounter['id']}"}
        selected.append(encounter)
        for kind in ("Observation", "DiagnosticReport", "ImagingStudy"):
            findings += store.search(kind, scope)
    if not findings:  # no encounter, or a new one with no results yet: the latest results
        for kind in ("Observation", "DiagnosticReport"):
            found = store.search(kind, {"patient": f"Patient/{patient_id}"})
            findings += sorted(found, key=_when, reverse=True)[:RECENT]
    selected += findings
    if direction == "DOWN":
        scope = (
            {"encounter": f"Encounter/{encounter['id']}"}
            if encounter is not None
            else {"patient": f"Patient/{patient_id}"}
        )
        selected += store.search("DocumentReference", scope)
    return selected


def seal_and_share(
    network: AllianceNetwork,
    writer: str,
    user: str,
    named: Sequence[str],
    record_id: str,
    patient_ref: str,
    plaintext: bytes,
    attachments: Sequence[tuple[str, bytes]] = (),
    *,
    on_committed: Callable[[Committed], None] | None = None,
) -> str:
    """Seal `plaintext` for `named` (and the writer's regulator), register version 1 of
    `record_id` under the patient's pseudonym, hand it to the writer's peer; a size note.
    `on_committed` learns the registration's transaction (its id and block)."""
    package, ciphertexts = seal_package(
        network.layout, writer, named, plaintext, record_id=record_id, version=1, now=utc_now(),
        attachments=attachments,
    )  # fmt: skip
    done = network.submit(
        writer, user, "records", "RegisterRecord", record_id, patient_ref, package.digest,
        json.dumps([address_of(c) for c in ciphertexts]), json.dumps(package.key_commitments),
    )  # fmt: skip
    if on_committed is not None:
        on_committed(done)
    network.push(writer, Held(package.to_bytes(), tuple(ciphertexts)))
    return f"{len(plaintext) / 1024:.1f} KiB sealed, {len(attachments)} attachment(s)"


def share_feedback(
    network: AllianceNetwork,
    writer: str,
    user: str,
    origin: str,
    readers: Sequence[str],
    referral_id: str,
    record_id: str,
    patient_ref: str,
    text: str,
    title: str = "Discharge summary",
    *,
    on_committed: Callable[[Committed], None] | None = None,
) -> str:
    """The target's feedback Bundle on completing `referral_id` (a discharge summary holding
    `text`), sealed for the origin and `readers` as `record_id`, the record the contract's
    CompleteReferral names; a size note."""
    bundle = build_feedback_bundle(
        referral_id, from_org=writer, to_org=origin, patient_ref=patient_ref, status="COMPLETED",
        document_title=title, document_text=text,
        authored_on=utc_now().isoformat(timespec="seconds"),
    )  # fmt: skip
    return seal_and_share(
        network, writer, user, readers, record_id, patient_ref, bundle_bytes(bundle),
        on_committed=on_committed,
    )  # fmt: skip


def bundle_bytes(bundle: dict[str, Any]) -> bytes:
    return json.dumps(bundle, ensure_ascii=False, sort_keys=True).encode()


def _subject(
    store: ClinicalStore, draft: ReferralDraft
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    if draft.encounter_id is None and draft.visit is not None:
        draft = replace(draft, encounter_id=encounter_of_visit(store, draft.visit)["id"])
    if draft.encounter_id is not None:
        encounter = store.get("Encounter", draft.encounter_id)
        reference = (encounter.get("subject") or {}).get("reference", "")
        if not reference.startswith("Patient/"):
            raise InvalidArgument(f"Encounter/{draft.encounter_id} names no Patient subject")
        patient = store.get("Patient", reference.split("/", 1)[1])
        if draft.patient_id is not None and draft.patient_id != patient["id"]:
            raise InvalidArgument(
                f"Encounter/{draft.encounter_id} is not of Patient/{draft.patient_id}"
            )
        return patient, encounter
    if draft.patient_id is None:
        raise InvalidArgument(
            "name the patient (--patient), the encounter (--encounter) or the visit (--visit)"
        )
    return store.get("Patient", draft.patient_id), None


def encounter_of_visit(store: ClinicalStore, visit: str) -> dict[str, Any]:
    """The hospital's Encounter carrying visit number `visit` (the latest, if several)."""
    found = store.search("Encounter", {"identifier": f"{VISIT_NUMBER_SYSTEM}|{visit}"})
    if not found:
        raise NotFound(
            f"no Encounter of visit {visit} in the hospital's store; register the visit with "
            "`medalliance visit register VISIT --patient ID` first"
        )
    return max(found, key=_when)


def visit_of_patient(
    store: ClinicalStore,
    visit: str,
    patient_id: str,
    pseudonyms: PseudonymClient | None,
    *,
    encounter_id: str | None = None,
    day: str | None = None,
) -> str:
    """Prepare a visit for the chain: the Patient's pseudonym (its identifier, else derived
    through the service and written back) and an Encounter carrying the visit number (the one
    named, else a new one, unless one has it already). Returns the pseudonym."""
    patient = store.get("Patient", patient_id)
    ref = _pseudonym(store, patient, pseudonyms)
    with store.transaction():
        tagged = store.search("Encounter", {"identifier": f"{VISIT_NUMBER_SYSTEM}|{visit}"})
        if any(_subject_id(e) != patient_id for e in tagged):
            raise InvalidArgument(f"visit {visit} is another patient's in the hospital's store")
        if encounter_id is not None:
            encounter = store.get("Encounter", encounter_id)
            if _subject_id(encounter) != patient_id:
                raise InvalidArgument(f"Encounter/{encounter_id} is not of Patient/{patient_id}")
            kept = store.source_of("Encounter", encounter_id) or "local"
            store.put(with_identifier(encounter, VISIT_NUMBER_SYSTEM, visit), source=kept)
        elif not tagged:
            start = day or utc_now().isoformat(timespec="seconds")
            store.put(
                {
                    "resourceType": "Encounter",
                    "id": f"visit-{visit}"[:64],
                    "identifier": [{"system": VISIT_NUMBER_SYSTEM, "value": visit}],
                    "status": "in-progress",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "AMB",
                        "display": "ambulatory",
                    },
                    "subject": {"reference": f"Patient/{patient_id}"},
                    "period": {"start": start},
                }
            )
    return ref


def _subject_id(resource: dict[str, Any]) -> str:
    reference = str((resource.get("subject") or {}).get("reference", ""))
    return reference.split("/", 1)[1] if reference.startswith("Patient/") else ""


def _pseudonym(
    store: ClinicalStore, patient: dict[str, Any], pseudonyms: PseudonymClient | None
) -> str:
    known = identifier_value(patient, PSEUDONYM_SYSTEM)
    if known is not None:
        return known
    identity = patient_identity(patient)
    if identity is None or pseudonyms is None:
        raise InvalidArgument(
            f"Patient/{patient['id']} has no pseudonym and no resident ID, passport or medical "
            "card identifier to derive it from"
        )
    ref = pseudonyms.pseudonym(*identity)
    kept = store.source_of("Patient", patient["id"]) or "local"
    store.put(with_identifier(patient, PSEUDONYM_SYSTEM, ref), source=kept)
    return ref


def _visit_number(
    store: ClinicalStore, patient: dict[str, Any], encounter: dict[str, Any] | None
) -> str:
    """The visit number (就诊号) the chain knows the visit by: the encounter's, else the
    patient's latest encounter's."""
    if encounter is None:
        encounters = store.search("Encounter", {"patient": f"Patient/{patient['id']}"})
        encounter = max(encounters, key=_when, default=None)
    number = None if encounter is None else identifier_value(encounter, VISIT_NUMBER_SYSTEM)
    if number is None:
        raise NotFound(
            f"Patient/{patient['id']} has no Encounter with a visit number "
            f"({VISIT_NUMBER_SYSTEM}); register the visit first"
        )
    return number


def _selected(store: ClinicalStore, reference: str) -> dict[str, Any]:
    kind, _, rid = reference.partition("/")
    if not kind or not rid:
        raise InvalidArgument(f"--select {reference!r}: give Type/id, e.g. Observation/ecg-1")
    return store.get(kind, rid)


def _active_conditions(store: ClinicalStore, patient_id: str) -> list[dict[str, Any]]:
    found = store.search("Condition", {"patient": f"Patient/{patient_id}"})
    return [c for c in found if _clinical_status(c) in (None, "active", "recurrence", "relapse")]


def _clinical_status(condition: dict[str, Any]) -> str | None:
    for coding in (condition.get("clinicalStatus") or {}).get("coding") or ():
        return str(coding.get("code"))
    return None


def _diagnoses(resources: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """(ICD-10 code, display) of the Conditions among `resources`, once each."""
    found: dict[str, str] = {}
    for resource in resources:
        if resource.get("resourceType") != "Condition":
            continue
        code = resource.get("code") or {}
        for coding in code.get("coding") or ():
            if coding.get("system") == ICD10_SYSTEM and coding.get("code"):
                display = coding.get("display") or code.get("text") or coding["code"]
                found.setdefault(str(coding["code"]), str(display))
    return list(found.items())


def _when(resource: dict[str, Any]) -> str:
    for key in ("effectiveDateTime", "issued", "recordedDate", "date"):
        if isinstance(resource.get(key), str):
            return str(resource[key])
    period = resource.get("period") or resource.get("effectivePeriod") or {}
    return str(period.get("start", ""))
