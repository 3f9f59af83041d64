"""What a hospital's staff read about its referrals: the incoming and outgoing lists, one
referral with its timeline and the actions open to the reader, the applications it made, and the
monthly volumes for the chart.

Lists read the hospital's own book (app/hospital_book.py), which the connector keeps in step with
the chain: fast with thousands of referrals, and never another hospital's. A referral's page
reads the chain (`GetReferral`: every step with its transaction id and time) only after the book
says the referral is this hospital's; each step's block is the one the hospital noted when it
wrote the step or its connector saw it. Ids, codes and statuses only: no clinical content.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medalliance.app.hospital_book import REFERRAL, HospitalBook
from medalliance.errors import ContractError
from medalliance.hospital.code_systems import REFERRAL_ID_SYSTEM
from medalliance.web.services.hospital_access import (
    HospitalBackend,
    Staff,
    evaluate_json,
    hospital_store,
    require_hospital_role,
    tx_block,
)
from medalliance.web.services.hospital_referrals import (
    APPLICATION_KIND,
    local_referral,
    settlement_text,
)

__all__ = [
    "ApplicationRow",
    "ReferralDetail",
    "ReferralPage",
    "ReferralRow",
    "Step",
    "VolumeSeries",
    "applications",
    "referral_detail",
    "referral_page",
    "referral_volumes",
    "return_referral_defaults",
]

READ_ROLES = ("doctor", "clerk")
PAGE_SIZE_MAX = 200
# Far beyond any hospital's referrals, and below the databases' 64-bit integers.
OFFSET_MAX = 10**9


@dataclass(frozen=True, slots=True)
class ReferralRow:
    referral_id: str
    visit_no: str
    side: str  # incoming | outgoing
    counterpart: str  # MSP id of the other hospital
    direction: str  # UP | DOWN
    status: str  # REFERRED | ACCEPTED | REJECTED | COMPLETED
    block: int  # where the referral was made


@dataclass(frozen=True, slots=True)
class ReferralPage:
    rows: tuple[ReferralRow, ...]
    total: int
    offset: int
    count: int


@dataclass(frozen=True, slots=True)
class Step:
    status: str
    at: str
    by: str  # MSP id
    tx_id: str
    block: int | None  # None: not seen by this hospital yet (its connector will note it)


@dataclass(frozen=True, slots=True)
class ReferralDetail:
    referral_id: str
    application_id: str
    visit_no: str
    side: str
    from_hospital: str
    to_hospital: str
    direction: str
    status: str
    deadline: str
    reason_code: str
    settlement: str
    steps: tuple[Step, ...]
    actions: tuple[str, ...]  # accept | reject | complete | refer-back, for this reader


@dataclass(frozen=True, slots=True)
class ApplicationRow:
    application_id: str
    referral_id: str
    visit_no: str
    target: str
    direction: str
    status: str  # the chain's: SUBMITTED | APPROVED | REJECTED | USED
    reason_code: str
    referred: bool
    tx_id: str
    block: int


@dataclass(frozen=True, slots=True)
class VolumeSeries:
    """Referrals per month, one series per side and direction ("outgoing UP", ...)."""

    months: tuple[str, ...]
    series: tuple[tuple[str, tuple[int, ...]], ...]


def referral_page(
    backend: HospitalBackend,
    staff: Staff,
    side: str,
    offset: int = 0,
    count: int = 50,
    status: str = "",
) -> ReferralPage:
    """This hospital's referrals of `side` (incoming | outgoing), newest first."""
    require_hospital_role(backend, staff, "read referrals", READ_ROLES)
    book = HospitalBook(hospital_store(backend, staff))
    count = max(1, min(count, PAGE_SIZE_MAX))
    offset = max(0, min(offset, OFFSET_MAX))
    if not status:  # the book's order index: a page of keys, not every referral
        docs, total = book.referral_page(side, offset, count)
        return ReferralPage(tuple(_row(("", d)) for d in docs), total, offset, count)
    rows = [
        _row(r)
        for r in book.store.records(REFERRAL)
        if r[1]["side"] == side and r[1]["status"] == status
    ]
    rows.sort(key=lambda r: (r.block, r.referral_id), reverse=True)
    return ReferralPage(tuple(rows[offset : offset + count]), len(rows), offset, count)


def referral_detail(backend: HospitalBackend, staff: Staff, referral_id: str) -> ReferralDetail:
    """One referral of this hospital with its timeline; `NotAtThisHospital` for any other."""
    require_hospital_role(backend, staff, "read a referral", READ_ROLES)
    local = local_referral(backend, staff, referral_id)
    store = hospital_store(backend, staff)
    on_chain: dict[str, Any] = evaluate_json(backend, staff, "referral", "GetReferral", referral_id)
    steps = [
        Step(
            str(h["status"]),
            str(h["at"]),
            str(h["by"]),
            str(h["txId"]),
            tx_block(store, str(h["txId"])),
        )
        for h in on_chain.get("history") or ()
    ]
    application_id = str(on_chain.get("applicationId") or "")
    if application_id:
        mine = store.get_record(APPLICATION_KIND, application_id)
        if mine is not None:
            steps.insert(0, Step("APPLIED", "", staff.msp_id, mine["txId"], int(mine["block"])))
    settlement = on_chain.get("settlement") or {}
    return ReferralDetail(
        referral_id=referral_id,
        application_id=application_id,
        visit_no=str(on_chain["visitNo"]),
        side=str(local["side"]),
        from_hospital=str(on_chain["fromHospital"]),
        to_hospital=str(on_chain["toHospital"]),
        direction=str(on_chain["direction"]),
        status=str(on_chain["status"]),
        deadline=str(on_chain.get("deadline") or ""),
        reason_code=str(on_chain.get("reasonCode") or ""),
        settlement=_settlement(settlement),
        steps=tuple(steps),
        actions=_actions(staff, on_chain, _visit_here(backend, staff, str(on_chain["visitNo"]))),
    )


def applications(backend: HospitalBackend, staff: Staff) -> tuple[ApplicationRow, ...]:
    """The referral applications this hospital made, newest first, with the chain's status."""
    require_hospital_role(backend, staff, "read applications", READ_ROLES)
    store = hospital_store(backend, staff)
    rows = []
    for application_id, doc in store.records(APPLICATION_KIND):
        try:
            found = evaluate_json(backend, staff, "report", "GetApplication", application_id)
        except ContractError:
            found = {"status": "UNKNOWN"}
        rows.append(
            ApplicationRow(
                application_id,
                doc["referralId"],
                doc["visitNo"],
                doc["target"],
                doc["direction"],
                str(found.get("status", "")),
                str(found.get("reasonCode") or ""),
                bool(doc["referred"]),
                doc["txId"],
                int(doc["block"]),
            )
        )
    return tuple(sorted(rows, key=lambda r: (r.block, r.application_id), reverse=True))


def referral_volumes(backend: HospitalBackend, staff: Staff) -> VolumeSeries:
    """This hospital's referrals per month (of their referral time on the chain), by side and
    direction: the chart of the hospital's home page."""
    require_hospital_role(backend, staff, "read referral volumes", READ_ROLES)
    counts: dict[tuple[str, str], dict[str, int]] = {}
    months: set[str] = set()
    for side in ("outgoing", "incoming"):
        found = evaluate_json(
            backend, staff, "referral", "ReferralsByHospital", staff.msp_id, side, ""
        )
        for referral in found:
            month = str(referral["referredAt"])[:7]
            months.add(month)
            per = counts.setdefault((side, str(referral["direction"])), {})
            per[month] = per.get(month, 0) + 1
    ordered = tuple(sorted(months))
    series = tuple(
        (f"{side} {direction}", tuple(counts.get((side, direction), {}).get(m, 0) for m in ordered))
        for side in ("outgoing", "incoming")
        for direction in ("UP", "DOWN")
    )
    return VolumeSeries(ordered, series)


def return_referral_defaults(
    backend: HospitalBackend, staff: Staff, referral_id: str
) -> dict[str, str]:
    """The referral form's values for referring the patient of an incoming referral back down
    to the origin (下转): the imported Patient, the visit, the origin, the referral's ICD-10
    diagnosis (from the ServiceRequest it brought), rehabilitation as the department."""
    require_hospital_role(backend, staff, "prepare a return referral", READ_ROLES)
    local = local_referral(backend, staff, referral_id, side="incoming")
    store = hospital_store(backend, staff)
    source = f"referral:{referral_id}"
    patients = [p for p in store.search("Patient") if store.source_of("Patient", p["id"]) == source]
    code = display = ""
    for request in store.search(
        "ServiceRequest", {"identifier": f"{REFERRAL_ID_SYSTEM}|{referral_id}"}
    ):
        for concept in request.get("reasonCode") or ():
            for coding in concept.get("coding") or ():
                code, display = str(coding.get("code", "")), str(coding.get("display", ""))
    return {
        "patient_id": str(patients[0]["id"]) if patients else "",
        "visit_no": str(local["visit_no"]),
        "target": str(local["counterpart"]),
        "direction": "DOWN",
        "department": "17",
        "urgency": "routine",
        "diagnosis_code": code,
        "diagnosis_display": display,
    }


def _row(item: tuple[str, dict[str, Any]]) -> ReferralRow:
    doc = item[1]
    return ReferralRow(
        str(doc["referral_id"]), str(doc["visit_no"]), str(doc["side"]), str(doc["counterpart"]),
        str(doc["direction"]), str(doc["status"]), int(doc["block"]),
    )  # fmt: skip


def _settlement(settlement: dict[str, Any]) -> str:
    return settlement_text(settlement) if settlement else ""


def _visit_here(backend: HospitalBackend, staff: Staff, visit_no: str) -> bool:
    try:
        visit = evaluate_json(backend, staff, "visit", "GetVisit", visit_no)
    except ContractError:
        return False
    return bool(visit["hospital"] == staff.msp_id)


def _actions(staff: Staff, on_chain: dict[str, Any], visit_here: bool) -> tuple[str, ...]:
    """What this reader may do next; the contracts decide again. Referring back down needs the
    patient's visit still here (not yet referred back)."""
    if staff.role != "doctor":
        return ()
    status, mine = on_chain["status"], staff.msp_id
    if on_chain["toHospital"] == mine and status == "REFERRED":
        return ("accept", "reject")
    if on_chain["toHospital"] == mine and status == "ACCEPTED":
        return ("complete",)
    completed_up = status == "COMPLETED" and on_chain["direction"] == "UP"
    if on_chain["toHospital"] == mine and completed_up and visit_here:
        return ("refer-back",)
    return ()
