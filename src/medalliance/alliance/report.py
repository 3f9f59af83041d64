"""Referral applications (上报申请): a hospital applies, its supervising regulator decides.

Paper fig. 5: secondary hospital A applies to commission C through the report contract, with the
clinical summary encrypted by the privacy module (`summaryRef` names a `records` entry, which the
regulator can always read); C approves or rejects through the chain; only an approved, unused
application lets A refer the patient, and the referral contract consumes it in the same
transaction (`UseApplication`) — only for a referral by A, of the application's visit, to the
application's target.

No clinical text is on the ledger (docs/privacy.md §5): why the patient is referred is in the
sealed summary; a review carries a reason code from `REVIEW_REASONS` and, optionally, a sealed
note (`noteRef`, a records entry of the patient readable by the applicant and the regulator).

A regulator also sets whether downward referrals of its hospitals need an application
(`SetDownwardRule`; upward referrals always do), and publishes the time allowed for each next step
(`SetDeadlineRules`, alliance/deadline.py): a submitted application carries the deadline of its
review, and `OverdueApplications` is the regulator's queue of those past it.

State: one key per application, one per (visit, application) for the visit's history, one per
(regulator, application) for its queue, one per regulator for its rule and its deadline rules
(plus one per published version of those).
"""

from __future__ import annotations

import json
from typing import Any

from medalliance.alliance import deadline
from medalliance.alliance.common import (
    call,
    check_choice,
    check_code,
    check_id,
    hospital,
    load,
    may_see,
    now_iso,
    organization,
    protect,
    require_audit_role_of_regulator,
    require_may_see,
    require_role,
    require_sealed_for,
    scan,
    supervising_regulator,
    to_json,
)
from medalliance.contracts import Context, Contract, create_composite_key, transaction
from medalliance.errors import ContractError

DECISIONS = ("APPROVED", "REJECTED")
# Why a regulator rejects an application: a closed list, so no clinical text reaches the ledger
# (docs/alliance.md §2 explains each code). OTHER needs a sealed note saying what.
REVIEW_REASONS = (
    "NOT_INDICATED",  # the summary does not show the referral is needed
    "INCOMPLETE_SUMMARY",  # the summary lacks what the review needs
    "TREAT_LOCALLY",  # the applicant hospital can treat the patient
    "TARGET_UNSUITABLE",  # the target does not offer the service needed
    "TARGET_NO_CAPACITY",  # the target cannot take the patient now
    "DUPLICATE",  # another application covers the same need
    "OTHER",  # see the sealed note
)
DOWNWARD_RULES = ("APPROVAL_REQUIRED", "NO_APPROVAL")
DEFAULT_DOWNWARD_RULE = "NO_APPROVAL"  # rehabilitation back to a community hospital


def application_key(application_id: str) -> str:
    return create_composite_key("application", [application_id])


def _visit_application_key(visit_no: str, application_id: str) -> str:
    return create_composite_key("visitapplication", [visit_no, application_id])


def _regulator_application_key(regulator: str, application_id: str) -> str:
    return create_composite_key("regulatorapplication", [regulator, application_id])


def _rule_key(regulator: str) -> str:
    return create_composite_key("downwardrule", [regulator])


class ReportContract(Contract):
    name = "report"

    @transaction
    def SubmitApplication(
        self,
        ctx: Context,
        application_id: str,
        visit_no: str,
        target_hospital: str,
        summary_ref: str,
    ) -> str:
        """Apply to the hospital's supervising regulator; the reason for the referral is in the
        sealed summary `summary_ref`, never an argument (it would be on every member's ledger)."""
        check_id(application_id, "application id")
        check_id(visit_no, "visit number")
        check_id(summary_ref, "summaryRef")
        require_role(ctx, "doctor")
        visit = call(ctx, "visit", "GetVisit", visit_no)
        if visit["hospital"] != ctx.client.msp_id:
            raise ContractError(
                f"patient of visit {visit_no} is at {visit['hospital']}, not {ctx.client.msp_id}",
                403,
            )
        hospital(ctx, target_hospital)
        if target_hospital == visit["hospital"]:
            raise ContractError(f"visit {visit_no} is already at {target_hospital}", 400)
        if ctx.stub.get_state(application_key(application_id)) is not None:
            raise ContractError(f"application {application_id} already exists", 409)
        regulator = supervising_regulator(ctx, visit["hospital"])
        if call(ctx, "records", "IsAuthorised", summary_ref, regulator) is not True:
            raise ContractError(
                f"record {summary_ref} is not shared with {regulator}; it reviews the summary", 412
            )
        application = {
            "applicationId": application_id,
            "visitNo": visit_no,
            "patientRef": visit["patientRef"],
            "hospital": visit["hospital"],  # the applicant: only its referral may use it
            "targetHospital": target_hospital,
            "regulator": regulator,
            "summaryRef": summary_ref,
            "status": "SUBMITTED",
            "submittedAt": now_iso(ctx),
            "txId": ctx.tx_id,
        }
        _set_deadline(ctx, application)
        ctx.stub.put_state(application_key(application_id), to_json(application))
        protect(ctx, application_key(application_id), regulator)
        ctx.stub.put_state(_visit_application_key(visit_no, application_id), b"1")
        ctx.stub.put_state(_regulator_application_key(regulator, application_id), b"1")
        ctx.stub.set_event(
            "ApplicationSubmitted",
            to_json(
                {
                    "applicationId": application_id,
                    "hospital": visit["hospital"],
                    "regulator": regulator,
                }
            ),
        )
        return to_json(application).decode()

    @transaction
    def ReviewApplication(
        self, ctx: Context, application_id: str, decision: str, reason_code: str, note_ref: str
    ) -> str:
        """Approve or reject. A rejection names a code of `REVIEW_REASONS`; an approval none.
        `note_ref` ("" for none; required with OTHER) is a sealed note of the application's
        patient that the applicant hospital and the regulator can open."""
        check_choice(decision, "decision", DECISIONS)
        if decision == "REJECTED":
            check_code(reason_code, "reasonCode", REVIEW_REASONS)
        elif reason_code:
            raise ContractError('an APPROVED decision takes no reasonCode; pass ""', 400)
        if reason_code == "OTHER" and not note_ref:
            raise ContractError("reasonCode OTHER needs a noteRef: seal a note saying why", 400)
        application = _load(ctx, application_id)
        require_role(ctx, "reviewer")
        if ctx.client.msp_id != application["regulator"]:
            raise ContractError(
                f"application {application_id} is reviewed by {application['regulator']}, "
                f"not {ctx.client.msp_id}",
                403,
            )
        if application["status"] != "SUBMITTED":
            raise ContractError(f"application {application_id} is {application['status']}", 409)
        if note_ref:
            require_sealed_for(
                ctx,
                note_ref,
                "noteRef",
                application["patientRef"],
                application["hospital"],
                application["regulator"],
            )
        application.update(
            status=decision,
            reasonCode=reason_code,
            noteRef=note_ref,
            reviewedAt=now_iso(ctx),
            reviewTxId=ctx.tx_id,
            deadline="",  # reviewed: no step of the regulator's is due any more
        )
        ctx.stub.put_state(application_key(application_id), to_json(application))
        ctx.stub.set_event(
            "ApplicationReviewed",
            to_json(
                {
                    "applicationId": application_id,
                    "hospital": application["hospital"],
                    "decision": decision,
                }
            ),
        )
        return to_json(application).decode()

    @transaction
    def UseApplication(
        self,
        ctx: Context,
        application_id: str,
        from_hospital: str,
        visit_no: str,
        to_hospital: str,
        referral_id: str,
    ) -> str:
        """Consume an approved application (referral contract only): only for a referral by the
        hospital that applied, of the application's visit, to the application's target — so no
        hospital refers upward on another's approval, past its own regulator."""
        if ctx.called_by != "referral":
            raise ContractError("an application is used only by the referral contract", 403)
        application = _load(ctx, application_id)
        # First, and without naming the applicant or the application's state: a hospital that
        # did not apply learns nothing about another hospital's application.
        if application["hospital"] != from_hospital:
            raise ContractError(
                f"application {application_id} was made by another hospital, not {from_hospital}; "
                "a referral needs the origin's own approved application",
                403,
            )
        if application["status"] == "USED":
            raise ContractError(
                f"application {application_id} was already used by referral "
                f"{application['referralId']}",
                409,
            )
        if application["status"] != "APPROVED":
            raise ContractError(f"application {application_id} is {application['status']}", 409)
        if application["visitNo"] != visit_no:
            raise ContractError(
                f"application {application_id} is for visit {application['visitNo']}, "
                f"not visit {visit_no}",
                409,
            )
        if application["targetHospital"] != to_hospital:
            raise ContractError(
                f"application {application_id} approves a referral to "
                f"{application['targetHospital']}, not to {to_hospital}",
                409,
            )
        application.update(status="USED", referralId=referral_id, deadline="")
        ctx.stub.put_state(application_key(application_id), to_json(application))
        return to_json(application).decode()

    @transaction(evaluate=True)
    def GetApplication(self, ctx: Context, application_id: str) -> str:
        application = _load(ctx, application_id)
        require_may_see(
            ctx,
            f"application {application_id}",
            application["hospital"],
            application["targetHospital"],
        )
        require_audit_role_of_regulator(ctx)
        return to_json(application).decode()

    @transaction(evaluate=True)
    def ApplicationsForVisit(self, ctx: Context, visit_no: str) -> list[Any]:
        check_id(visit_no, "visit number")
        require_audit_role_of_regulator(ctx)
        found = []
        for application_id, _ in scan(ctx, "visitapplication", visit_no):
            application = _load(ctx, application_id)
            if may_see(ctx, application["hospital"], application["targetHospital"]):
                found.append(application)
        return sorted(found, key=lambda a: (a["submittedAt"], a["applicationId"]))

    @transaction
    def SetDownwardRule(self, ctx: Context, rule: str) -> str:
        """Whether downward referrals of this regulator's hospitals need an application."""
        check_choice(rule, "rule", DOWNWARD_RULES)
        require_role(ctx, "reviewer")
        if organization(ctx, ctx.client.msp_id).type != "regulator":
            raise ContractError(f"{ctx.client.msp_id} is not a regulator", 403)
        entry = {"regulator": ctx.client.msp_id, "rule": rule, "setAt": now_iso(ctx)}
        ctx.stub.put_state(_rule_key(ctx.client.msp_id), to_json(entry))
        protect(ctx, _rule_key(ctx.client.msp_id), ctx.client.msp_id)
        return to_json(entry).decode()

    @transaction(evaluate=True)
    def DownwardRule(self, ctx: Context, hospital_id: str) -> str:
        """The rule that applies to a hospital's downward referrals (its regulator's)."""
        hospital(ctx, hospital_id)
        regulator = supervising_regulator(ctx, hospital_id)
        raw = ctx.stub.get_state(_rule_key(regulator))
        rule = json.loads(raw)["rule"] if raw else DEFAULT_DOWNWARD_RULE
        return to_json({"hospital": hospital_id, "regulator": regulator, "rule": rule}).decode()

    @transaction
    def SetDeadlineRules(
        self, ctx: Context, review_hours: str, accept_hours: str, complete_days: str
    ) -> str:
        """Publish the time allowed for the next steps in this regulator's jurisdiction (the
        next version of its rules). Items already waiting keep the deadline they were given."""
        rules = deadline.check_rules(review_hours, accept_hours, complete_days)
        require_role(ctx, "reviewer", "admin")
        regulator = ctx.client.msp_id
        if organization(ctx, regulator).type != "regulator":
            raise ContractError(
                f"{regulator} is not a regulator; only a regulator sets deadlines", 403
            )
        version = int(deadline.current_rules(ctx, regulator)["version"]) + 1
        entry = {
            "regulator": regulator,
            "version": version,
            **rules,
            "setAt": now_iso(ctx),
            "txId": ctx.tx_id,
        }
        for key in (deadline.rules_key(regulator), deadline.rules_version_key(regulator, version)):
            ctx.stub.put_state(key, to_json(entry))
            protect(ctx, key, regulator)
        return to_json(entry).decode()

    @transaction(evaluate=True)
    def DeadlineRules(self, ctx: Context, regulator: str) -> str:
        """The regulator's deadline rules in force (published rules are public to members)."""
        if organization(ctx, regulator).type != "regulator":
            raise ContractError(f"{regulator} is not a regulator", 400)
        return to_json(deadline.current_rules(ctx, regulator)).decode()

    @transaction(evaluate=True)
    def OverdueApplications(self, ctx: Context, regulator: str, at: str) -> list[Any]:
        """Applications to `regulator` still unreviewed after their deadline, as of `at` (an
        ISO 8601 time: a contract has no clock), oldest deadline first. For the regulator's
        reviewers and auditors, and those of the regulators above it."""
        when = deadline.check_instant(at, "at")
        require_role(ctx, "reviewer", "auditor")
        if organization(ctx, regulator).type != "regulator":
            raise ContractError(f"{regulator} is not a regulator", 400)
        require_may_see(ctx, f"the review queue of {regulator}", regulator)
        found = [_load(ctx, a) for a, _ in scan(ctx, "regulatorapplication", regulator)]
        return sorted(
            (a for a in found if a["status"] == "SUBMITTED" and deadline.is_overdue(a, when)),
            key=lambda a: (a["deadline"], a["applicationId"]),
        )


def _set_deadline(ctx: Context, application: dict[str, Any]) -> None:
    """The review's deadline under the regulator's rules in force (and which version)."""
    rules = deadline.current_rules(ctx, application["regulator"])
    application["deadline"] = deadline.deadline_after(ctx, hours=int(rules["reviewHours"]))
    application["deadlineRules"] = int(rules["version"])


def _load(ctx: Context, application_id: str) -> dict[str, Any]:
    check_id(application_id, "application id")
    return load(ctx, application_key(application_id), f"application {application_id}")
