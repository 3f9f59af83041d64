"""Two-way referral (双向转诊): the paper's referral contract (figs. 6–8) and its follow-up.

`Refer` makes the paper's checks — the argument count (the contract framework), that the visit
exists and its patient is at the origin hospital, that an approved and unused application for
this visit and target exists (upward always; downward as the origin's regulator rules), that the
clinical package is shared with the target — and its state changes in one transaction: the
application is used, the visit moves to the target, the referral is recorded. The target then
accepts, rejects (the patient returns to the origin) or completes it; completing executes the
benefit-sharing agreement between the two hospitals, if they have one.

No clinical text is on the ledger (docs/privacy.md §5): a rejection carries a code of
`REJECTION_REASONS` and optionally a sealed note; a completion carries `feedbackRef`, the sealed
feedback/discharge document. Both are records entries of the referral's patient that the origin
hospital and its regulator can open.

Each state carries the deadline of its next step (alliance/deadline.py) under the rules in force
of the target's supervising regulator: accept or reject a REFERRED patient within `acceptHours`,
complete an ACCEPTED referral within `completeDays`; `OverdueReferrals` is a regulator's queue.

State: one key per referral, per (hospital, incoming|outgoing, referral) index entry, per (visit,
referral) history entry, and one "in progress" key per visit — referrals of different patients
never conflict, and two concurrent referrals of one patient conflict (one commits).
"""

from __future__ import annotations

import json
from typing import Any

from medalliance.alliance import deadline
from medalliance.alliance.common import (
    HOSPITAL_LEVELS,
    call,
    check_choice,
    check_code,
    check_id,
    check_ref,
    hospital,
    load,
    may_see,
    now_iso,
    protect,
    regulators_above,
    require_audit_role_of_regulator,
    require_may_see,
    require_org,
    require_role,
    require_sealed_for,
    scan,
    to_json,
)
from medalliance.alliance.referral_hold import ReferralHolds
from medalliance.contracts import Context, Contract, create_composite_key, transaction
from medalliance.contracts.api import Organization
from medalliance.errors import ContractError

DIRECTIONS = ("UP", "DOWN")
STATUSES = ("REFERRED", "ACCEPTED", "REJECTED", "COMPLETED")
ROLES = ("doctor",)
SIDES = ("incoming", "outgoing")
# Why a target refuses a referred patient: a closed list (docs/alliance.md §2). OTHER needs a
# sealed note saying what.
REJECTION_REASONS = (
    "NO_BED",  # no bed or slot for the patient now
    "SERVICE_NOT_OFFERED",  # the target does not provide the care needed
    "NOT_INDICATED",  # the package does not show the referral is needed
    "INCOMPLETE_RECORDS",  # the clinical package lacks what the target needs
    "PATIENT_DECLINED",  # the patient chose not to go
    "OTHER",  # see the sealed note
)


def referral_key(referral_id: str) -> str:
    return create_composite_key("referral", [referral_id])


def _side_key(hospital_id: str, side: str, referral_id: str) -> str:
    return create_composite_key("hospitalreferral", [hospital_id, side, referral_id])


def _visit_key(visit_no: str, referral_id: str) -> str:
    return create_composite_key("visitreferral", [visit_no, referral_id])


def _active_key(visit_no: str) -> str:
    return create_composite_key("activereferral", [visit_no])


class ReferralContract(ReferralHolds, Contract):
    name = "referral"

    @transaction
    def Refer(
        self,
        ctx: Context,
        referral_id: str,
        application_id: str,
        visit_no: str,
        from_hospital: str,
        to_hospital: str,
        direction: str,
        clinical_ref: str,
    ) -> str:
        check_id(referral_id, "referral id")
        check_id(visit_no, "visit number")
        check_id(clinical_ref, "clinicalRef")
        check_choice(direction, "direction", DIRECTIONS)
        require_org(ctx, from_hospital, "refer a patient")
        require_role(ctx, *ROLES)
        _check_levels(ctx, from_hospital, to_hospital, direction)
        if ctx.stub.get_state(referral_key(referral_id)) is not None:
            raise ContractError(f"referral {referral_id} already exists", 409)
        visit = call(ctx, "visit", "GetVisit", visit_no)
        if visit["hospital"] != from_hospital:
            raise ContractError(
                f"patient of visit {visit_no} is at {visit['hospital']}, not {from_hospital}", 409
            )
        active = ctx.stub.get_state(_active_key(visit_no))
        if active is not None:
            raise ContractError(f"visit {visit_no} has referral {active.decode()} in progress", 409)
        if _needs_application(ctx, from_hospital, direction) or application_id:
            if not application_id:
                raise ContractError(
                    f"a {direction} referral from {from_hospital} needs an approved application",
                    412,
                )
            check_id(application_id, "application id")
            call(
                ctx,
                "report",
                "UseApplication",
                application_id,
                from_hospital,
                visit_no,
                to_hospital,
                referral_id,
            )
        if call(ctx, "records", "IsAuthorised", clinical_ref, to_hospital) is not True:
            raise ContractError(
                f"record {clinical_ref} is not shared with {to_hospital}; share it first", 412
            )
        call(ctx, "visit", "TransferVisit", visit_no, to_hospital)
        referral = {
            "referralId": referral_id,
            "applicationId": application_id,
            "visitNo": visit_no,
            "patientRef": visit["patientRef"],
            "fromHospital": from_hospital,
            "toHospital": to_hospital,
            "direction": direction,
            "clinicalRef": clinical_ref,
            "status": "REFERRED",
            "referredAt": now_iso(ctx),
            "history": [],
        }
        _record(ctx, referral, "REFERRED")
        protect(ctx, referral_key(referral_id), to_hospital)
        ctx.stub.put_state(_side_key(from_hospital, "outgoing", referral_id), b"1")
        ctx.stub.put_state(_side_key(to_hospital, "incoming", referral_id), b"1")
        ctx.stub.put_state(_visit_key(visit_no, referral_id), b"1")
        ctx.stub.put_state(_active_key(visit_no), referral_id.encode())
        _announce(ctx, "ReferralCreated", referral)
        return to_json(referral).decode()

    @transaction
    def AcceptReferral(self, ctx: Context, referral_id: str) -> str:
        referral = _for_target(ctx, referral_id, "accept", "REFERRED")
        if referral.get("hold"):  # the held slot becomes the patient's booking
            call(ctx, "resource", "BookHold", referral_id, referral["visitNo"])
        _record(ctx, referral, "ACCEPTED")
        _announce(ctx, "ReferralAccepted", referral)
        return to_json(referral).decode()

    @transaction
    def RejectReferral(
        self, ctx: Context, referral_id: str, reason_code: str, note_ref: str
    ) -> str:
        """The target refuses the patient, who returns to the origin hospital. `reason_code` is
        one of `REJECTION_REASONS`; `note_ref` ("" for none; required with OTHER) a sealed note
        of the patient for the origin and its regulator."""
        check_code(reason_code, "reasonCode", REJECTION_REASONS)
        if reason_code == "OTHER" and not note_ref:
            raise ContractError("reasonCode OTHER needs a noteRef: seal a note saying why", 400)
        referral = _for_target(ctx, referral_id, "reject", "REFERRED")
        if note_ref:
            _require_for_origin(ctx, referral, note_ref, "noteRef")
        call(ctx, "visit", "TransferVisit", referral["visitNo"], referral["fromHospital"])
        if referral.get("hold"):
            call(ctx, "resource", "ReleaseHold", referral_id, "REJECTED")
        referral.update(reasonCode=reason_code, noteRef=note_ref)
        _record(ctx, referral, "REJECTED")
        ctx.stub.del_state(_active_key(referral["visitNo"]))
        _announce(ctx, "ReferralRejected", referral)
        return to_json(referral).decode()

    @transaction
    def CompleteReferral(self, ctx: Context, referral_id: str, feedback_ref: str) -> str:
        """The target finished the episode; the hospitals' agreement settles it. `feedback_ref`
        is the sealed feedback/discharge document: a records entry of the patient that the
        origin and its regulator can open (the outcome is never an argument)."""
        check_ref(feedback_ref, "feedbackRef")
        referral = _for_target(ctx, referral_id, "complete", "ACCEPTED")
        _require_for_origin(ctx, referral, feedback_ref, "feedbackRef")
        referral["feedbackRef"] = feedback_ref
        referral["settlement"] = call(
            ctx,
            "settlement",
            "Execute",
            referral_id,
            referral["fromHospital"],
            referral["toHospital"],
            referral["direction"],
            referral.get("careType", "outpatient"),
        )
        _record(ctx, referral, "COMPLETED")
        ctx.stub.del_state(_active_key(referral["visitNo"]))
        _announce(ctx, "ReferralCompleted", referral)
        return to_json(referral).decode()

    @transaction(evaluate=True)
    def GetReferral(self, ctx: Context, referral_id: str) -> str:
        referral = _load(ctx, referral_id)
        _require_party(ctx, referral)
        require_audit_role_of_regulator(ctx)
        return to_json(referral).decode()

    @transaction(evaluate=True)
    def ReferralsByHospital(
        self, ctx: Context, hospital_id: str, side: str, status: str
    ) -> list[Any]:
        """A hospital's incoming or outgoing referrals, all or of one status ("" for all)."""
        hospital(ctx, hospital_id)
        check_choice(side, "side", SIDES)
        if status:
            check_choice(status, "status", STATUSES)
        require_may_see(ctx, f"the referrals of {hospital_id}", hospital_id)
        require_audit_role_of_regulator(ctx)
        found = [_load(ctx, rid) for rid, _ in scan(ctx, "hospitalreferral", hospital_id, side)]
        return sorted(
            (r for r in found if not status or r["status"] == status),
            key=lambda r: (r["referredAt"], r["referralId"]),
        )

    @transaction(evaluate=True)
    def ReferralHistory(self, ctx: Context, visit_no: str) -> list[Any]:
        """Every referral of a visit the caller may see, oldest first: the regulator's trace
        (a commission's auditors and reviewers only)."""
        check_id(visit_no, "visit number")
        require_audit_role_of_regulator(ctx)
        found = [_load(ctx, rid) for rid, _ in scan(ctx, "visitreferral", visit_no)]
        return sorted(
            (r for r in found if may_see(ctx, r["fromHospital"], r["toHospital"])),
            key=lambda r: (r["referredAt"], r["referralId"]),
        )

    @transaction(evaluate=True)
    def OverdueReferrals(self, ctx: Context, regulator: str, at: str) -> list[Any]:
        """Referrals to the hospitals `regulator` supervises (directly or through the regulators
        below it) whose next step is past its deadline as of `at` (an ISO 8601 time), oldest
        deadline first. For the reviewers and auditors of that regulator's chain."""
        when = deadline.check_instant(at, "at")
        require_role(ctx, "reviewer", "auditor")
        if organization_type(ctx, regulator) != "regulator":
            raise ContractError(f"{regulator} is not a regulator", 400)
        require_may_see(ctx, f"the referral queue of {regulator}", regulator)
        found = [
            _load(ctx, rid)
            for org in _supervised(ctx, regulator)
            for rid, _ in scan(ctx, "hospitalreferral", org.msp_id, "incoming")
        ]
        return sorted(
            (r for r in found if deadline.is_overdue(r, when)),
            key=lambda r: (r["deadline"], r["referralId"]),
        )


def organization_type(ctx: Context, msp_id: str) -> str:
    found = ctx.organizations.get(msp_id)
    if found is None:
        raise ContractError(f"{msp_id} is not a member of channel {ctx.channel_id}", 404)
    return found.type


def _supervised(ctx: Context, regulator: str) -> list[Organization]:
    return [
        org
        for org in ctx.organizations.values()
        if org.type in HOSPITAL_LEVELS and regulator in regulators_above(ctx, org.msp_id)
    ]


def _check_levels(ctx: Context, from_hospital: str, to_hospital: str, direction: str) -> None:
    origin = HOSPITAL_LEVELS[hospital(ctx, from_hospital).type]
    target = HOSPITAL_LEVELS[hospital(ctx, to_hospital).type]
    if to_hospital == from_hospital:
        raise ContractError(f"a referral needs two hospitals; both are {from_hospital}", 400)
    if direction == "UP" and target <= origin:
        raise ContractError(
            f"an UP referral goes to a higher-level hospital; {to_hospital} is not above "
            f"{from_hospital}",
            400,
        )
    if direction == "DOWN" and target >= origin:
        raise ContractError(
            f"a DOWN referral goes to a lower-level hospital; {to_hospital} is not below "
            f"{from_hospital}",
            400,
        )


def _needs_application(ctx: Context, from_hospital: str, direction: str) -> bool:
    if direction == "UP":
        return True
    rule = call(ctx, "report", "DownwardRule", from_hospital)
    return bool(rule["rule"] == "APPROVAL_REQUIRED")


def _load(ctx: Context, referral_id: str) -> dict[str, Any]:
    check_id(referral_id, "referral id")
    return load(ctx, referral_key(referral_id), f"referral {referral_id}")


def _require_party(ctx: Context, referral: dict[str, Any]) -> None:
    require_may_see(
        ctx, f"referral {referral['referralId']}", referral["fromHospital"], referral["toHospital"]
    )


def _for_target(ctx: Context, referral_id: str, action: str, status: str) -> dict[str, Any]:
    referral = _load(ctx, referral_id)
    require_org(ctx, referral["toHospital"], f"{action} referral {referral_id}")
    require_role(ctx, *ROLES)
    if referral["status"] != status:
        raise ContractError(f"referral {referral_id} is {referral['status']}", 409)
    return referral


def _require_for_origin(ctx: Context, referral: dict[str, Any], record_id: str, what: str) -> None:
    """A sealed document of the referral's patient that the origin and its regulator open."""
    origin = referral["fromHospital"]
    readers = [origin, *regulators_above(ctx, origin)[:1]]  # its supervising regulator
    require_sealed_for(ctx, record_id, what, referral["patientRef"], *readers)


def _record(ctx: Context, referral: dict[str, Any], status: str) -> None:
    referral["status"] = status
    _set_deadline(ctx, referral)
    referral["history"].append(
        {"status": status, "at": now_iso(ctx), "by": ctx.client.msp_id, "txId": ctx.tx_id}
    )
    ctx.stub.put_state(referral_key(referral["referralId"]), to_json(referral))


def _set_deadline(ctx: Context, referral: dict[str, Any]) -> None:
    """The deadline of the next step of a referral entering its status ("" when none is due),
    under the rules in force of the target's supervising regulator (defaults without one)."""
    target = ctx.organizations.get(referral["toHospital"])
    regulator = target.regulator if target is not None else ""
    if regulator:
        rules = call(ctx, "report", "DeadlineRules", regulator)
    else:
        rules = {"version": 0, **deadline.DEFAULTS}
    if referral["status"] == "REFERRED":
        referral["deadline"] = deadline.deadline_after(ctx, hours=int(rules["acceptHours"]))
    elif referral["status"] == "ACCEPTED":
        referral["deadline"] = deadline.deadline_after(ctx, days=int(rules["completeDays"]))
    else:
        referral["deadline"] = ""
    referral["deadlineRules"] = int(rules["version"])


def _announce(ctx: Context, name: str, referral: dict[str, Any]) -> None:
    """The event hospital connectors listen to: ids only, never clinical content."""
    event = {
        key: referral[key]
        for key in ("referralId", "visitNo", "fromHospital", "toHospital", "direction")
    }
    event.update(status=referral["status"], clinicalRef=referral["clinicalRef"])
    ctx.stub.set_event(name, json.dumps(event, sort_keys=True).encode())
