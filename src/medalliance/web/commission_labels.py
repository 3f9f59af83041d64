"""The English message ids of the codes the commission and operator pages show (reason codes,
rules, alarm states, fact kinds, ...); templates pass them through `_()`, so the one catalogue
(locale/*/LC_MESSAGES/messages.po) holds their Chinese."""

from __future__ import annotations

from medalliance.web.i18n import N_

REASON_LABELS = {
    "NOT_INDICATED": N_("Referral not indicated"),
    "INCOMPLETE_SUMMARY": N_("Clinical summary incomplete"),
    "TREAT_LOCALLY": N_("Can be treated locally"),
    "TARGET_UNSUITABLE": N_("Target hospital unsuitable"),
    "TARGET_NO_CAPACITY": N_("Target hospital has no capacity"),
    "DUPLICATE": N_("Duplicate application"),
    "OTHER": N_("Other (see the note)"),
}
RULE_LABELS = {
    "APPROVAL_REQUIRED": N_("Downward referrals need an approved application"),
    "NO_APPROVAL": N_("Downward referrals need no application"),
}
ALARM_STATUS_LABELS = {
    "OPEN": N_("Open"),
    "ACKNOWLEDGED": N_("Acknowledged"),
    "CLOSED": N_("Closed"),
}
KIND_LABELS = {
    "visit.registered": N_("Visit registered"),
    "application.submitted": N_("Application submitted"),
    "application.reviewed": N_("Application reviewed"),
    "application.used": N_("Application used by the referral"),
    "referral.created": N_("Referral made"),
    "referral.accepted": N_("Referral accepted"),
    "referral.rejected": N_("Referral rejected"),
    "referral.completed": N_("Referral completed"),
    "settlement.entry": N_("Settlement"),
    "record.shared": N_("Record shared"),
    "record.accessed": N_("Record opened"),
    "record.granted": N_("Access granted"),
    "record.revoked": N_("Access revoked"),
}
HEALTH_LABELS = {
    "up": N_("Up"),
    "starting": N_("Starting"),
    "down": N_("Down"),
    "in-process": N_("In process"),
}
TYPE_LABELS = {
    "regulator": N_("Health commission"),
    "tertiary": N_("Tertiary hospital"),
    "secondary": N_("Secondary hospital"),
    "orderer": N_("Ordering organisation"),
}
CHANGE_LABELS = {
    "add-org": N_("Add an organisation"),
    "remove-org": N_("Remove an organisation"),
    "add-orderer": N_("Add an ordering node"),
    "remove-orderer": N_("Remove an ordering node"),
}
# Statuses and actions of the trace's steps (application, referral, record access).
STEP_STATUS_LABELS = {
    "SUBMITTED": N_("Submitted"),
    "APPROVED": N_("Approved"),
    "REJECTED": N_("Rejected"),
    "USED": N_("Used"),
    "REFERRED": N_("Referred"),
    "ACCEPTED": N_("Accepted"),
    "COMPLETED": N_("Completed"),
    "fetch": N_("Fetched"),
    "decrypt": N_("Decrypted"),
    "grant": N_("Granted"),
    "revoke": N_("Revoked"),
}
