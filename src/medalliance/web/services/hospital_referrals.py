"""What a hospital's doctor does with a referral (paper fig. 5): apply, refer, accept, reject,
complete with the feedback document, refer back down; and the connector import that brings an
incoming referral into the hospital's store.

Each step is the demo's own step (app/referral_demo.py) on the staff member's identity: the
referral Bundle is built from the store and sealed by app/referral_packages.py exactly as the
demo's referral is, notes by `seal_note`, feedback by `share_feedback`; the import is
app/connector.py. Every write returns where it committed; a contract's refusal is its
`ContractError` (the contract's own words) and writes nothing. Where a step seals a document
before its contract call, the call's preconditions are checked first from the chain, so that a
refusal leaves no sealed record behind.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from medalliance.app.connector import Connector
from medalliance.app.hospital_book import HospitalBook, Referral
from medalliance.app.pseudonyms import pseudonym_client
from medalliance.app.referral_demo import seal_note
from medalliance.app.referral_import import follow_status, referral_task
from medalliance.app.referral_packages import (
    ReferralDraft,
    build_from_store,
    bundle_bytes,
    encounter_of_visit,
    seal_and_share,
    share_feedback,
)
from medalliance.errors import ContractError, InvalidArgument, PreconditionFailed
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.node.config import HOSPITAL_TYPES
from medalliance.web.i18n import N_
from medalliance.web.services.hospital_access import (
    DOCTOR_ROLES,
    HospitalBackend,
    NotAtThisHospital,
    Staff,
    Written,
    evaluate_json,
    hospital_store,
    require_hospital_role,
    submit,
)
from medalliance.web.services.hospital_forms import (
    URGENCIES,
    ApplicationChoice,
    CompleteForm,
    FormInvalid,
    ReferralForm,
    RejectForm,
)
from medalliance.web.services.hospital_holds import hold_args
from medalliance.web.services.hospital_local_records import (
    keep_discharge_summary,
    keep_outgoing,
)

__all__ = [
    "APPLICATION_KIND",
    "Completed",
    "Started",
    "SyncResult",
    "accept_referral",
    "apply_for_referral",
    "complete_referral",
    "local_referral",
    "refer_with_application",
    "reject_referral",
    "sync_referrals",
]

APPLICATION_KIND = "web.application"  # the applications this hospital made (app records)


@dataclass(frozen=True, slots=True)
class Started:
    """An application (UP, or DOWN where the regulator requires approval) or, for a return
    referral without approval, the referral itself."""

    kind: str  # "application" | "referral"
    application_id: str  # "" for a referral made directly
    referral_id: str
    record_id: str  # the sealed referral Bundle
    tx_id: str
    block: int


@dataclass(frozen=True, slots=True)
class Completed:
    referral_id: str
    feedback_record_id: str
    settlement: str  # e.g. "settled: TertiaryBMSP receives 50.00 under AG-..." or why not
    tx_id: str
    block: int


@dataclass(frozen=True, slots=True)
class SyncResult:
    imported: tuple[str, ...]
    updated: tuple[str, ...]
    quarantined: tuple[str, ...]
    last_block: int


def apply_for_referral(backend: HospitalBackend, staff: Staff, form: ReferralForm) -> Started:
    """Seal the referral Bundle of the form (the selected records and images) for the target and
    apply to the supervising regulator; a return (DOWN) referral the regulator lets through
    without approval is referred at once. Raises `FormInvalid` (a field), `NotFound`,
    `PreconditionFailed` (the visit is not here) or the contract's `ContractError`."""
    require_hospital_role(backend, staff, "apply for a referral", DOCTOR_ROLES)
    network, me = backend.network, staff.msp_id
    target = _target(backend, staff, form.target)
    visit = _visit_here(backend, staff, form.visit_no)
    run = secrets.token_hex(6).upper()
    referral_id, record_id, application_id = f"REF-{run}", f"R-{run}", f"APP-{run}"
    draft = ReferralDraft(
        referral_id, target, patient_id=form.patient_id, visit=form.visit_no,
        direction=form.direction, priority=URGENCIES[form.urgency], department=form.department,
        purpose=form.purpose, select=tuple(form.records),
        diagnoses=((form.diagnosis_code, form.diagnosis_display),),
    )  # fmt: skip
    store = hospital_store(backend, staff)
    pseudonyms = pseudonym_client(network, me, staff.identity, store)
    if form.direction == "DOWN" and form.discharge_summary:
        keep_discharge_summary(store, form.visit_no, f"discharge-{referral_id}",
                               form.discharge_summary, "出院小结")  # fmt: skip
    if form.records:
        draft = replace(draft, select=_selection(store, form))
    try:
        built = build_from_store(store, draft, from_org=me, pseudonyms=pseudonyms)
    except InvalidArgument as exc:
        if form.direction == "DOWN" and "discharge summary" in str(exc):
            raise FormInvalid({"discharge_summary": N_("a return referral carries the discharge summary: write it here")}) from None  # fmt: skip
        raise
    if built.patient_ref != visit["patientRef"]:
        raise FormInvalid({"visit_no": N_("this visit is another patient's")})
    needs_approval = form.direction == "UP" or _downward_rule(backend, staff) != "NO_APPROVAL"
    seal_and_share(network, me, staff.identity, [target], record_id, built.patient_ref,
                   bundle_bytes(built.bundle))  # fmt: skip
    if needs_approval:
        done = submit(backend, staff, "report", "SubmitApplication", application_id,
                      form.visit_no, target, record_id)  # fmt: skip
        store.set_record(APPLICATION_KIND, application_id, {
            "applicationId": application_id, "referralId": referral_id, "visitNo": form.visit_no,
            "target": target, "recordId": record_id, "direction": form.direction,
            "holdSlot": form.hold_slot, "txId": done.tx_id, "block": done.block, "referred": False,
        })  # fmt: skip
        keep_outgoing(store, built.bundle, form.patient_id, referral_id, "draft")
        return Started("application", application_id, referral_id, record_id, done.tx_id,
                       done.block)  # fmt: skip
    written = _refer(backend, staff, referral_id, "", form.visit_no, target, form.direction,
                     record_id, form.hold_slot)  # fmt: skip
    keep_outgoing(store, built.bundle, form.patient_id, referral_id, "requested")
    return Started("referral", "", referral_id, record_id, written.tx_id, written.block)


def refer_with_application(
    backend: HospitalBackend, staff: Staff, choice: ApplicationChoice
) -> Started:
    """Refer the patient with an approved application this hospital made (the contract refuses
    one not approved, used, or of another visit or target)."""
    require_hospital_role(backend, staff, "refer a patient", DOCTOR_ROLES)
    store = hospital_store(backend, staff)
    application = store.get_record(APPLICATION_KIND, choice.application_id)
    if application is None:
        raise NotAtThisHospital(f"application {choice.application_id}")
    written = _refer(
        backend, staff, application["referralId"], choice.application_id,
        application["visitNo"], application["target"], application["direction"],
        application["recordId"], application.get("holdSlot", ""),
    )  # fmt: skip
    store.set_record(APPLICATION_KIND, choice.application_id, {**application, "referred": True})
    return Started("referral", choice.application_id, application["referralId"],
                   application["recordId"], written.tx_id, written.block)  # fmt: skip


def accept_referral(backend: HospitalBackend, staff: Staff, referral_id: str) -> Written:
    """Accept an incoming referral (the contract refuses one not REFERRED: a second accept)."""
    require_hospital_role(backend, staff, "accept a referral", DOCTOR_ROLES)
    local_referral(backend, staff, referral_id, side="incoming")
    done = submit(backend, staff, "referral", "AcceptReferral", referral_id)
    follow_status(hospital_store(backend, staff), referral_id, "ACCEPTED")
    return Written(done.tx_id, done.block)


def reject_referral(
    backend: HospitalBackend, staff: Staff, referral_id: str, form: RejectForm
) -> Written:
    """Refuse an incoming referral with a reason code and, optionally, a note sealed for the
    origin hospital and its regulator; the patient returns to the origin."""
    require_hospital_role(backend, staff, "reject a referral", DOCTOR_ROLES)
    local_referral(backend, staff, referral_id, side="incoming")
    on_chain = _actionable(backend, staff, referral_id, "REFERRED", "rejected")
    note_id = ""
    if form.note and form.reason_code:
        note_id = f"N-{secrets.token_hex(6).upper()}"
        seal_note(backend.network, staff.msp_id, staff.identity, _origin_readers(backend, on_chain),
                  note_id, on_chain["patientRef"], "rejection-note", form.note)  # fmt: skip
    done = submit(backend, staff, "referral", "RejectReferral", referral_id, form.reason_code,
                  note_id)  # fmt: skip
    follow_status(hospital_store(backend, staff), referral_id, "REJECTED")
    return Written(done.tx_id, done.block)


def complete_referral(
    backend: HospitalBackend, staff: Staff, referral_id: str, form: CompleteForm
) -> Completed:
    """Complete an accepted incoming referral with the feedback document (sealed for the origin
    and its regulator); the hospitals' benefit-sharing agreement settles it."""
    require_hospital_role(backend, staff, "complete a referral", DOCTOR_ROLES)
    local_referral(backend, staff, referral_id, side="incoming")
    on_chain = _actionable(backend, staff, referral_id, "ACCEPTED", "completed")
    feedback_id = f"F-{secrets.token_hex(6).upper()}"
    origin = str(on_chain["fromHospital"])
    share_feedback(backend.network, staff.msp_id, staff.identity, origin,
                   _origin_readers(backend, on_chain), referral_id, feedback_id,
                   on_chain["patientRef"], form.feedback, form.title)  # fmt: skip
    done = submit(backend, staff, "referral", "CompleteReferral", referral_id, feedback_id)
    store = hospital_store(backend, staff)
    follow_status(store, referral_id, "COMPLETED")
    keep_discharge_summary(store, str(on_chain["visitNo"]), f"discharge-{referral_id}",
                           form.feedback, form.title)  # fmt: skip
    settled = json.loads(done.payload).get("settlement") or {}
    return Completed(referral_id, feedback_id, settlement_text(settled), done.tx_id, done.block)


_SYNC_LOCKS: dict[str, threading.Lock] = {}
_SYNC_LOCKS_GUARD = threading.Lock()


def sync_referrals(backend: HospitalBackend, staff: Staff, until: int | None = None) -> SyncResult:
    """Run the hospital's connector (app/connector.py) through `until` (None: the own peer's
    height when embedded): new incoming referrals are imported, with their decryption logged on
    the chain, and statuses followed. One sync per hospital at a time."""
    require_hospital_role(backend, staff, "import referrals", ("doctor", "clerk"))
    with _SYNC_LOCKS_GUARD:
        lock = _SYNC_LOCKS.setdefault(staff.msp_id, threading.Lock())
    store = hospital_store(backend, staff)
    with lock:
        pseudonyms = pseudonym_client(backend.network, staff.msp_id, staff.identity, store)
        report = Connector(backend.network, staff.msp_id, staff.identity, store, pseudonyms).sync(
            until=until
        )
    return SyncResult(
        tuple(report.imported),
        tuple(f"{rid} {status}" for rid, status in report.updated),
        tuple(report.quarantined),
        report.last_block,
    )


def local_referral(
    backend: HospitalBackend, staff: Staff, referral_id: str, side: str | None = None
) -> dict[str, Any]:
    """The hospital's record of a referral it made or received (of `side`), else
    `NotAtThisHospital`: another hospital's referral is never looked up on the chain."""
    found = HospitalBook(hospital_store(backend, staff)).referral(referral_id)
    if found is None or (side is not None and found["side"] != side):
        raise NotAtThisHospital(f"{side or ''} referral {referral_id}".strip())
    return found


def settlement_text(settlement: dict[str, Any]) -> str:
    if not settlement.get("executed"):
        return f"not settled: {settlement.get('reason', 'no agreement')}"
    amount = int(settlement["amountCents"]) / 100
    return (
        f"settled under {settlement['agreementId']}: {settlement['payer']} pays "
        f"{settlement['payee']} {amount:.2f} for {settlement['period']}"
    )


# --- private helpers ------------------------------------------------------------------------------


def _selection(store: ClinicalStore, form: ReferralForm) -> tuple[str, ...]:
    """The doctor's selection, with the visit's Encounter (the receiver files under it) and, on a
    return referral, the visit's discharge summaries (referral_bundle.py requires one)."""
    encounter = f"Encounter/{encounter_of_visit(store, form.visit_no)['id']}"
    documents = []
    if form.direction == "DOWN":
        found = store.search("DocumentReference", {"encounter": encounter})
        documents = [f"DocumentReference/{d['id']}" for d in found]
    return tuple(dict.fromkeys([encounter, *form.records, *documents]))


def _refer(
    backend: HospitalBackend, staff: Staff, referral_id: str, application_id: str,
    visit_no: str, target: str, direction: str, record_id: str, hold_slot: str = "",
) -> Written:  # fmt: skip
    """Refer, holding `hold_slot` (RESOURCE:SLOT) of the target in the same transaction."""
    held = hold_args(hold_slot)
    done = submit(backend, staff, "referral", "ReferWithHold" if held else "Refer", referral_id,
                  application_id, visit_no, staff.msp_id, target, direction, record_id, *held)  # fmt: skip
    store = hospital_store(backend, staff)
    task = referral_task(store, referral_id)
    if task is not None and task.get("status") == "draft":
        store.put({**task, "status": "requested"}, source=f"outgoing:{referral_id}")
    HospitalBook(store).note_referral(
        Referral(
            referral_id, visit_no, "outgoing", target, direction, record_id, done.tx_id, done.block
        )
    )
    return Written(done.tx_id, done.block)


def _target(backend: HospitalBackend, staff: Staff, name: str) -> str:
    config = backend.network.layout.config
    found = [o for o in config.organizations if name in (o.name, o.msp_id)]
    if not found or found[0].type not in HOSPITAL_TYPES or found[0].msp_id == staff.msp_id:
        raise FormInvalid({"target": N_("choose another hospital of the alliance")})
    return found[0].msp_id


def _visit_here(backend: HospitalBackend, staff: Staff, visit_no: str) -> dict[str, Any]:
    try:
        visit: dict[str, Any] = evaluate_json(backend, staff, "visit", "GetVisit", visit_no)
    except ContractError:
        raise FormInvalid(
            {"visit_no": "no such visit on the chain: register the visit first"}
        ) from None
    if visit["hospital"] != staff.msp_id:
        raise FormInvalid({"visit_no": N_("the patient of this visit is not at your hospital")})
    return visit


def _downward_rule(backend: HospitalBackend, staff: Staff) -> str:
    rule = evaluate_json(backend, staff, "report", "DownwardRule", staff.msp_id)
    return str(rule["rule"])


def _actionable(
    backend: HospitalBackend, staff: Staff, referral_id: str, status: str, verb: str
) -> dict[str, Any]:
    """The chain's referral, checked before a document is sealed for it: this hospital is its
    target and it is in `status` (what the contract will check again)."""
    on_chain: dict[str, Any] = evaluate_json(backend, staff, "referral", "GetReferral", referral_id)
    if on_chain["toHospital"] != staff.msp_id:
        raise NotAtThisHospital(f"incoming referral {referral_id}")
    if on_chain["status"] != status:
        raise PreconditionFailed(
            f"referral {referral_id} is {on_chain['status']}; it can be {verb} only when it is "
            f"{status}"
        )
    return on_chain


def _origin_readers(backend: HospitalBackend, on_chain: dict[str, Any]) -> list[str]:
    """The origin hospital and its supervising regulator: who must open a note or feedback."""
    config = backend.network.layout.config
    origin = config.organization(str(on_chain["fromHospital"]))
    readers: Sequence[str] = [origin.msp_id]
    if origin.regulator:
        readers = [origin.msp_id, config.organization(origin.regulator).msp_id]
    return list(readers)
