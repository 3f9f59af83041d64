"""The words of the hospital pages that templates translate from values (statuses, codes, kinds,
page titles set in Python): marked here with `N_()` so the catalogue holds them (web/i18n.py)."""

from __future__ import annotations

from medalliance.web.i18n import N_

STATUSES = (
    N_("REFERRED"), N_("ACCEPTED"), N_("REJECTED"), N_("COMPLETED"), N_("APPLIED"),
    N_("SUBMITTED"), N_("APPROVED"), N_("USED"), N_("UNKNOWN"), N_("PROPOSED"), N_("ACTIVE"),
    N_("TERMINATED"), N_("REQUESTED"), N_("CONFIRMED"), N_("DECLINED"), N_("CANCELLED"),
    N_("SCHEDULED"), N_("REPORTED"), N_("CLOSED"), N_("EXPIRED"),
)  # fmt: skip
DIRECTIONS = (N_("UP"), N_("DOWN"))
URGENCIES = (N_("routine"), N_("urgent"), N_("emergency"))
SEXES = (N_("male"), N_("female"), N_("other"), N_("unknown"))
REASONS = (
    N_("NO_BED"), N_("SERVICE_NOT_OFFERED"), N_("NOT_INDICATED"), N_("INCOMPLETE_RECORDS"),
    N_("PATIENT_DECLINED"), N_("OTHER"), N_("SLOT_UNAVAILABLE"), N_("EQUIPMENT_UNAVAILABLE"),
    N_("NOT_SUITABLE"), N_("NO_CAPACITY"), N_("OUT_OF_SCOPE"), N_("INSUFFICIENT_DATA"),
)  # fmt: skip
KINDS = (
    N_("EQUIPMENT"), N_("EXPERT"), N_("BED"), N_("Condition"), N_("Encounter"),
    N_("Observation"), N_("DiagnosticReport"), N_("ImagingStudy"), N_("DocumentReference"),
    N_("Procedure"), N_("MedicationRequest"),
)  # fmt: skip
TITLES = (
    N_("Visit registered"), N_("Referral application submitted"), N_("Patient referred"),
    N_("Referral accepted"), N_("Referral rejected"), N_("Referral completed"),
    N_("Resource published"), N_("Booking requested"), N_("Booking decided"),
    N_("Result shared"), N_("Agreement proposed"), N_("Agreement accepted"),
    N_("Consultation requested"), N_("Consultation updated"), N_("Report submitted"),
)  # fmt: skip
LINKS = (
    N_("Apply for a referral"), N_("Back to the patient"),
    N_("Outgoing referrals and applications"), N_("Open the referral"),
    N_("Back to the referral"), N_("Back"),
)  # fmt: skip
