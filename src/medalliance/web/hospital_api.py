"""The hospital's JSON API (`/api/v1/hospital/...`): the same operations as the hospital pages,
for scripts and the hospital's own systems, described by /openapi.json.

A shell (style.md §9): each route parses its body into the service's pydantic model, calls one
function of web/services/hospital_*.py as the authenticated doctor or clerk (`require_role`: session
cookie or `Authorization: Bearer` token) and returns its typed result. Errors are the services'
typed errors, answered once by the app's handler as `{"error", "message"}` with the status of
errors.py's table; a contract's refusal is 409 with the contract's own words. Ids of patients are
local FHIR resource ids, never identity numbers; searching by name or identifier is a POST.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from medalliance.hospital.summaries import PatientRow
from medalliance.web.auth import require_role
from medalliance.web.core_routes import backend_of
from medalliance.web.services import hospital_consultations as consulting
from medalliance.web.services import hospital_holds as holds
from medalliance.web.services import hospital_patients as patients
from medalliance.web.services import hospital_recognition as recognition
from medalliance.web.services import hospital_referral_views as views
from medalliance.web.services import hospital_referrals as referrals
from medalliance.web.services import hospital_settlement as settlement
from medalliance.web.services import hospital_sharing as sharing
from medalliance.web.services.hospital_access import Written
from medalliance.web.services.hospital_charts import volume_chart
from medalliance.web.services.hospital_forms import (
    ApplicationChoice,
    CompleteForm,
    PatientSearch,
    ReferralForm,
    RejectForm,
    VisitForm,
    parse_form,
)
from medalliance.web.staff import Staff

router = APIRouter(prefix="/api/v1/hospital", tags=["hospital"])
StaffDep = Annotated[Staff, Depends(require_role("doctor", "clerk"))]


class DeclineBody(BaseModel):
    reason_code: str


@router.post("/patients/search")
def search_patients(
    request: Request, staff: StaffDep, body: PatientSearch
) -> tuple[PatientRow, ...]:
    """The hospital's patients matching a name part or an identifier (both empty: all)."""
    return patients.search_patients(backend_of(request), staff, body)


@router.get("/patients/{patient_id}")
def patient_record(request: Request, staff: StaffDep, patient_id: str) -> patients.PatientRecord:
    """One patient's record in short (an access event of the hospital's own log)."""
    return patients.patient_record(backend_of(request), staff, patient_id)


@router.get("/patients/{patient_id}/records")
def record_choices(
    request: Request, staff: StaffDep, patient_id: str
) -> tuple[patients.RecordChoice, ...]:
    """The records and images a referral of this patient may carry."""
    return patients.record_choices(backend_of(request), staff, patient_id)


@router.post("/visits")
def register_visit(request: Request, staff: StaffDep, body: VisitForm) -> patients.VisitRegistered:
    """Register a visit (就诊) of a patient: the visit number and pseudonym on the chain."""
    return patients.register_visit(backend_of(request), staff, body)


@router.post("/referrals")
def apply_for_referral(request: Request, staff: StaffDep, body: ReferralForm) -> referrals.Started:
    """Apply for a referral (UP; DOWN where the regulator requires approval), or refer back
    down at once where it does not; the sealed clinical package is built from the store."""
    return referrals.apply_for_referral(backend_of(request), staff, body)


@router.get("/applications")
def applications(request: Request, staff: StaffDep) -> tuple[views.ApplicationRow, ...]:
    return views.applications(backend_of(request), staff)


@router.post("/applications/{application_id}/refer")
def refer(request: Request, staff: StaffDep, application_id: str) -> referrals.Started:
    """Refer the patient with this approved application."""
    choice = parse_form(ApplicationChoice, {"application_id": application_id})
    return referrals.refer_with_application(backend_of(request), staff, choice)


@router.get("/referrals")
def referral_list(
    request: Request,
    staff: StaffDep,
    side: Annotated[Literal["incoming", "outgoing"], Query()] = "incoming",
    status: Annotated[Literal["", "REFERRED", "ACCEPTED", "REJECTED", "COMPLETED"], Query()] = "",
    offset: Annotated[int, Query(ge=0, le=views.OFFSET_MAX)] = 0,
    count: Annotated[int, Query(ge=1, le=views.PAGE_SIZE_MAX)] = 50,
) -> views.ReferralPage:
    """This hospital's referrals of one side, newest first (after importing new ones)."""
    backend = backend_of(request)
    referrals.sync_referrals(backend, staff)
    return views.referral_page(backend, staff, side, offset, count, status)


@router.post("/referrals/sync")
def sync(request: Request, staff: StaffDep) -> referrals.SyncResult:
    """Run the hospital's connector now: import incoming referrals, follow statuses."""
    return referrals.sync_referrals(backend_of(request), staff)


@router.get("/referrals/{referral_id}")
def referral_detail(request: Request, staff: StaffDep, referral_id: str) -> views.ReferralDetail:
    """One referral of this hospital with its timeline (404 for any other hospital's)."""
    backend = backend_of(request)
    referrals.sync_referrals(backend, staff)
    return views.referral_detail(backend, staff, referral_id)


@router.post("/referrals/{referral_id}/accept")
def accept(request: Request, staff: StaffDep, referral_id: str) -> Written:
    return referrals.accept_referral(backend_of(request), staff, referral_id)


@router.post("/referrals/{referral_id}/reject")
def reject(request: Request, staff: StaffDep, referral_id: str, body: RejectForm) -> Written:
    return referrals.reject_referral(backend_of(request), staff, referral_id, body)


@router.post("/referrals/{referral_id}/complete")
def complete(
    request: Request, staff: StaffDep, referral_id: str, body: CompleteForm
) -> referrals.Completed:
    return referrals.complete_referral(backend_of(request), staff, referral_id, body)


@router.get("/referrals/{referral_id}/return-form")
def return_form(request: Request, staff: StaffDep, referral_id: str) -> dict[str, str]:
    """The referral form's values for referring this incoming referral's patient back down."""
    return views.return_referral_defaults(backend_of(request), staff, referral_id)


@router.get("/charts/referral-volumes")
def referral_volumes(request: Request, staff: StaffDep) -> dict[str, Any]:
    """The ECharts option of this hospital's referrals per month, by side and direction."""
    return volume_chart(views.referral_volumes(backend_of(request), staff), staff.language)


@router.get("/resources")
def resources(
    request: Request,
    staff: StaffDep,
    kind: Annotated[Literal["", "EQUIPMENT", "EXPERT", "BED", "OUTPATIENT"], Query()] = "",
) -> list[dict[str, Any]]:
    return sharing.open_resources(backend_of(request), staff, kind)


@router.get("/resources/{resource_id}/slots")
def resource_slots(request: Request, staff: StaffDep, resource_id: str) -> list[dict[str, Any]]:
    """Every slot of a resource: FREE, HELD by a referral or BOOKED."""
    return holds.slots_of(backend_of(request), staff, resource_id)


@router.get("/holdable-slots")
def holdable_slots(request: Request, staff: StaffDep) -> list[holds.SlotChoice]:
    """The free slots of other hospitals a referral may hold (the form's `hold_slot` values)."""
    return holds.holdable_slots(backend_of(request), staff)


@router.get("/referrals/{referral_id}/hold")
def referral_hold(request: Request, staff: StaffDep, referral_id: str) -> dict[str, Any]:
    """The slot a referral holds, with its history (both hospitals)."""
    return holds.hold_of(backend_of(request), staff, referral_id)


@router.post("/referrals/{referral_id}/cancel-hold")
def cancel_hold(request: Request, staff: StaffDep, referral_id: str) -> Written:
    return holds.cancel_hold(backend_of(request), staff, referral_id)


@router.post("/referrals/{referral_id}/no-show")
def no_show(request: Request, staff: StaffDep, referral_id: str) -> Written:
    return holds.no_show(backend_of(request), staff, referral_id)


@router.post("/resources")
def publish_resource(
    request: Request, staff: StaffDep, body: sharing.ResourceForm
) -> sharing.Created:
    return sharing.publish_resource(backend_of(request), staff, body)


@router.get("/bookings")
def bookings(request: Request, staff: StaffDep) -> list[dict[str, Any]]:
    return sharing.my_bookings(backend_of(request), staff)


@router.post("/bookings")
def request_booking(
    request: Request, staff: StaffDep, body: sharing.BookingForm
) -> sharing.Created:
    return sharing.request_booking(backend_of(request), staff, body)


@router.post("/bookings/{booking_id}/confirm")
def confirm_booking(request: Request, staff: StaffDep, booking_id: str) -> Written:
    return sharing.decide_booking(backend_of(request), staff, booking_id, True)


@router.post("/bookings/{booking_id}/decline")
def decline_booking(
    request: Request, staff: StaffDep, booking_id: str, body: DeclineBody
) -> Written:
    return sharing.decide_booking(backend_of(request), staff, booking_id, False, body.reason_code)


@router.post("/recognised-results")
def record_result(
    request: Request, staff: StaffDep, body: recognition.RecordResultForm
) -> sharing.Created:
    return recognition.record_result(backend_of(request), staff, body)


@router.get("/visits/{visit_no}/recognised-results")
def recognised_results(
    request: Request, staff: StaffDep, visit_no: str, code: str, as_of: str = ""
) -> list[dict[str, Any]]:
    return recognition.recognised_for_visit(backend_of(request), staff, visit_no, code, as_of)


@router.post("/recognised-results/{result_id}/request")
def request_result(
    request: Request, staff: StaffDep, result_id: str, body: recognition.RequestForm
) -> Written:
    return recognition.request_result(backend_of(request), staff, result_id, body)


@router.post("/duplicate-orders")
def order_duplicate(
    request: Request, staff: StaffDep, body: recognition.DuplicateForm
) -> sharing.Created:
    return recognition.order_duplicate(backend_of(request), staff, body)


Period = Annotated[str, Query(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]  # a settlement month


@router.get("/agreements")
def agreements(request: Request, staff: StaffDep) -> list[sharing.Agreement]:
    return sharing.agreements(backend_of(request), staff)


@router.post("/agreements")
def propose_agreement(
    request: Request, staff: StaffDep, body: sharing.AgreementForm
) -> sharing.Created:
    return sharing.propose_agreement(backend_of(request), staff, body)


@router.post("/agreements/{agreement_id}/accept")
def accept_agreement(request: Request, staff: StaffDep, agreement_id: str) -> Written:
    return sharing.accept_agreement(backend_of(request), staff, agreement_id)


@router.get("/agreements/{agreement_id}/statement")
def statement(
    request: Request, staff: StaffDep, agreement_id: str, period: Period
) -> dict[str, Any]:
    return sharing.statement(backend_of(request), staff, agreement_id, period)


@router.post("/agreements/{agreement_id}/declare")
def declare_amount(
    request: Request, staff: StaffDep, agreement_id: str, body: settlement.DeclareForm
) -> Written:
    return settlement.declare_amount(backend_of(request), staff, agreement_id, body)


@router.post("/agreements/{agreement_id}/statement/sign")
def sign_statement(request: Request, staff: StaffDep, agreement_id: str, period: Period) -> Written:
    return settlement.sign_statement(backend_of(request), staff, agreement_id, period)


@router.get("/balance")
def balance(request: Request, staff: StaffDep, period: Period) -> dict[str, Any]:
    return sharing.balance(backend_of(request), staff, period)


# --- remote consultation (远程会诊, issue 19) ---------------------------------------------------


@router.get("/consultations")
def list_consultations(request: Request, staff: StaffDep) -> list[dict[str, Any]]:
    """The consultations this hospital requested or was asked for, newest first."""
    return consulting.listed(backend_of(request), staff)


@router.post("/consultations")
def request_consultation(
    request: Request, staff: StaffDep, body: consulting.ConsultationForm
) -> consulting.Requested:
    """Ask another hospital about a visit of this hospital, granting it the named records
    (re-wrapped for it) until the consultation ends."""
    return consulting.request(backend_of(request), staff, body)


@router.post("/consultations/{consultation_id}/decide")
def decide_consultation(
    request: Request, staff: StaffDep, consultation_id: str, body: consulting.DecideForm
) -> Written:
    """accept, decline (reason_code), schedule (at) as the consultant; close as the requester
    (grants revoked, settlement charged)."""
    return consulting.decide(backend_of(request), staff, consultation_id, body)


@router.post("/consultations/{consultation_id}/report")
def submit_consultation_report(
    request: Request, staff: StaffDep, consultation_id: str, body: consulting.ReportForm
) -> Written:
    """The consultant's report, sealed for the requester and regulators, its digest signed."""
    return consulting.report(backend_of(request), staff, consultation_id, body)


@router.get("/consultations/{consultation_id}/report")
def consultation_report(
    request: Request, staff: StaffDep, consultation_id: str
) -> consulting.OpenedReport:
    """The report, opened and verified (the decryption is logged on the ledger)."""
    return consulting.open_report(backend_of(request), staff, consultation_id)
