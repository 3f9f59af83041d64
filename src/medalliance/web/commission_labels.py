"""The English message ids of the codes the commission and operator pages show (reason codes,
rules, alarm states, fact kinds, ...); templates pass them through `_()`, so the one catalogue
(locale/*/LC_MESSAGES/messages.po) holds their Chinese."""

from __future__ import annotations

REASON_LABELS = {
    "NOT_INDICATED": "Referral not indicated",
    "INCOMPLETE_SUMMARY": "Clinical summary incomplete",
    "TREAT_LOCALLY": "Can be treated locally",
    "TARGET_UNSUITABLE": "Target hospital unsuitable",
    "TARGET_NO_CAPACITY": "Target hospital has no capacity",
    "DUPLICATE": "Duplicate application",
    "OTHER": "Other (see the note)",
}
RULE_LABELS = {
    "APPROVAL_REQUIRED": "Downward referrals need an approved application",
    "NO_APPROVAL": "Downward referrals need no application",
}
ALARM_STATUS_LABELS = {"OPEN": "Open", "ACKNOWLEDGED": "Acknowledged", "CLOSED": "Closed"}
KIND_LABELS = {
    "visit.registered": "Visit registered",
    "application.submitted": "Application submitted",
    "application.reviewed": "Application reviewed",
    "application.used": "Application used by the referral",
    "referral.created": "Referral made",
    "referral.accepted": "Referral accepted",
    "referral.rejected": "Referral rejected",
    "referral.completed": "Referral completed",
    "settlement.entry": "Settlement",
    "record.shared": "Record shared",
    "record.accessed": "Record opened",
    "record.granted": "Access granted",
    "record.revoked": "Access revoked",
}
HEALTH_LABELS = {"up": "Up", "starting": "Starting", "down": "Down", "in-process": "In process"}
TYPE_LABELS = {
    "regulator": "Health commission",
    "tertiary": "Tertiary hospital",
    "secondary": "Secondary hospital",
    "orderer": "Ordering organisation",
}
CHANGE_LABELS = {
    "add-org": "Add an organisation",
    "remove-org": "Remove an organisation",
    "add-orderer": "Add an ordering node",
    "remove-orderer": "Remove an ordering node",
}
