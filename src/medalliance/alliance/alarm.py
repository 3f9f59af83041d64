"""Alarms (告警) on the chain: a health commission raises, acknowledges and closes them.

The audit module's rules (audit/rules.py) find what a commission must look at — an overdue
review, a referral ping-pong, an access without a grant — and the commission records it here, so
that how each alarm was handled is itself on the ledger and auditable: every transition is one
transaction, with its time, organisation and tx id in the alarm's history.

Who may act: only a regulator's reviewers and auditors raise an alarm, and only the raising
commission's chain — the raiser and the regulators above it — may acknowledge or close it or read
it. A hospital never writes an alarm, even one about itself, and no function deletes one. The
alarm's key carries the raiser's key-level policy (`protect`), so a forged write or deletion
without the raising commission's peer does not validate (docs/alliance.md §1).

No clinical text is on the ledger (docs/privacy.md §5): an alarm holds a rule id and version, a
severity, subject ids (referral, application, record, organisation ids), the tx ids that
triggered it and, on acknowledging or closing, a note reference: a records entry the acting
commission can open, never the note itself.

State: one key per alarm, one index key per (raiser, alarm). Alarm ids are chosen by the raiser;
the rules runner derives them from rule and subject, so raising the same finding twice is refused
(409) and a restarted runner raises nothing twice.
"""

from __future__ import annotations

import json
import re
from typing import Any

from medalliance.alliance.common import (
    call,
    check_choice,
    check_id,
    check_ref,
    load,
    now_iso,
    organization,
    protect,
    regulators_above,
    require_role,
    scan,
    to_json,
)
from medalliance.contracts import Context, Contract, create_composite_key, transaction
from medalliance.errors import ContractError

SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
STATUSES = ("OPEN", "ACKNOWLEDGED", "CLOSED")
ROLES = ("auditor", "reviewer")
MAX_SUBJECTS = 32
MAX_TRIGGERS = 64
MAX_LIST_CHARS = 8192  # refuse a huge list before parsing it
_EVENTS = {"OPEN": "AlarmRaised", "ACKNOWLEDGED": "AlarmAcknowledged", "CLOSED": "AlarmClosed"}
_RULE_ID = re.compile(r"[a-z][a-z0-9_.-]{0,63}")

__all__ = ["SEVERITIES", "STATUSES", "AlarmContract", "alarm_key"]


def alarm_key(alarm_id: str) -> str:
    return create_composite_key("alarm", [alarm_id])


def _raiser_key(raiser: str, alarm_id: str) -> str:
    return create_composite_key("raiseralarm", [raiser, alarm_id])


class AlarmContract(Contract):
    name = "alarm"

    @transaction
    def RaiseAlarm(
        self,
        ctx: Context,
        alarm_id: str,
        rule_id: str,
        rule_version: str,
        severity: str,
        subjects: str,
        triggers: str,
        escalate_to: str,
    ) -> str:
        """Record an alarm of the caller's commission. `subjects` is a JSON array of the ids it
        is about, `triggers` one of the tx ids that triggered it; `escalate_to` is "" or a
        regulator above the caller (the parent commission) that must see to it."""
        check_id(alarm_id, "alarm id")
        if not _RULE_ID.fullmatch(rule_id):
            raise ContractError("ruleId must be lower-case letters, digits and ._- (1-64)", 400)
        if not (rule_version.isascii() and rule_version.isdigit() and len(rule_version) <= 6):
            raise ContractError("ruleVersion must be a whole number (e.g. 1)", 400)
        check_choice(severity, "severity", SEVERITIES)
        subject_ids = _id_list(subjects, "subjects", 1, MAX_SUBJECTS)
        trigger_ids = _id_list(triggers, "triggers", 0, MAX_TRIGGERS)
        raiser = _require_commission(ctx)
        if escalate_to and escalate_to not in regulators_above(ctx, raiser):
            raise ContractError(f"escalateTo must be a regulator above {raiser} or empty", 400)
        if ctx.stub.get_state(alarm_key(alarm_id)) is not None:
            raise ContractError(f"alarm {alarm_id} already exists", 409)
        alarm: dict[str, Any] = {
            "alarmId": alarm_id,
            "ruleId": rule_id,
            "ruleVersion": int(rule_version),
            "severity": severity,
            "subjects": subject_ids,
            "triggers": trigger_ids,
            "raisedBy": raiser,
            "escalateTo": escalate_to,
            "raisedAt": now_iso(ctx),
            "history": [],
        }
        _record(ctx, alarm, "OPEN", "")
        protect(ctx, alarm_key(alarm_id), raiser)
        ctx.stub.put_state(_raiser_key(raiser, alarm_id), b"1")
        return to_json(alarm).decode()

    @transaction
    def AcknowledgeAlarm(self, ctx: Context, alarm_id: str, note_ref: str) -> str:
        """The commission has seen the alarm and is looking into it; `note_ref` is "" or a
        sealed note (a records entry the acting commission can open)."""
        alarm = _for_chain(ctx, alarm_id, "acknowledge")
        if alarm["status"] != "OPEN":
            raise ContractError(f"alarm {alarm_id} is {alarm['status']}", 409)
        if note_ref:
            _check_note(ctx, note_ref)
        _record(ctx, alarm, "ACKNOWLEDGED", note_ref)
        return to_json(alarm).decode()

    @transaction
    def CloseAlarm(self, ctx: Context, alarm_id: str, note_ref: str) -> str:
        """The alarm is handled; `note_ref` (required) is the sealed note saying how."""
        check_ref(note_ref, "noteRef")
        alarm = _for_chain(ctx, alarm_id, "close")
        if alarm["status"] == "CLOSED":
            raise ContractError(f"alarm {alarm_id} is already CLOSED", 409)
        _check_note(ctx, note_ref)
        _record(ctx, alarm, "CLOSED", note_ref)
        return to_json(alarm).decode()

    @transaction(evaluate=True)
    def GetAlarm(self, ctx: Context, alarm_id: str) -> str:
        return to_json(_for_chain(ctx, alarm_id, "read")).decode()

    @transaction(evaluate=True)
    def AlarmsByStatus(self, ctx: Context, status: str) -> list[Any]:
        """The alarms of the caller's commission and of the commissions below it, all or of one
        status ("" for all), oldest first."""
        if status:
            check_choice(status, "status", STATUSES)
        caller = _require_commission(ctx)
        raisers = [
            org.msp_id
            for org in ctx.organizations.values()
            if org.type == "regulator"
            and (org.msp_id == caller or caller in regulators_above(ctx, org.msp_id))
        ]
        found = [
            load(ctx, alarm_key(alarm_id), f"alarm {alarm_id}")
            for raiser in sorted(raisers)
            for alarm_id, _ in scan(ctx, "raiseralarm", raiser)
        ]
        return sorted(
            (a for a in found if not status or a["status"] == status),
            key=lambda a: (a["raisedAt"], a["alarmId"]),
        )


def _require_commission(ctx: Context) -> str:
    """The caller is a reviewer or auditor of a regulator; its MSP id."""
    caller = ctx.client.msp_id
    if organization(ctx, caller).type != "regulator":
        raise ContractError(
            f"{caller} is not a health commission; only commissions keep alarms", 403
        )
    require_role(ctx, *ROLES)
    return caller


def _for_chain(ctx: Context, alarm_id: str, action: str) -> dict[str, Any]:
    """The alarm, for a commission of the raiser's chain (the raiser or a regulator above)."""
    check_id(alarm_id, "alarm id")
    caller = _require_commission(ctx)
    alarm = load(ctx, alarm_key(alarm_id), f"alarm {alarm_id}")
    raiser = alarm["raisedBy"]
    if caller != raiser and caller not in regulators_above(ctx, raiser):
        raise ContractError(
            f"{caller} cannot {action} alarm {alarm_id}: only {raiser} and the commissions "
            "above it may",
            403,
        )
    return alarm


def _check_note(ctx: Context, note_ref: str) -> None:
    """A records entry the acting commission can open: the note is sealed, never an argument."""
    check_ref(note_ref, "noteRef")
    if call(ctx, "records", "IsAuthorised", note_ref, ctx.client.msp_id) is not True:
        raise ContractError(
            f"noteRef {note_ref} is not shared with {ctx.client.msp_id}; seal the note for it", 412
        )


def _id_list(text: str, what: str, least: int, most: int) -> list[str]:
    """A JSON array of ids, `least` to `most` of them, without repeats."""
    if len(text) > MAX_LIST_CHARS:
        raise ContractError(f"{what} is {len(text)} characters; at most {MAX_LIST_CHARS}", 400)
    try:
        ids = json.loads(text)
    except ValueError:
        raise ContractError(f'{what} must be a JSON array of ids, e.g. ["REF-1"]', 400) from None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ContractError(f'{what} must be a JSON array of ids, e.g. ["REF-1"]', 400)
    if not least <= len(ids) <= most:
        raise ContractError(f"{what} must name {least} to {most} ids, not {len(ids)}", 400)
    if len(set(ids)) != len(ids):
        raise ContractError(f"{what} names an id twice", 400)
    for one in ids:
        check_ref(one, what)
    return ids


def _record(ctx: Context, alarm: dict[str, Any], status: str, note_ref: str) -> None:
    alarm["status"] = status
    alarm["history"].append(
        {
            "status": status,
            "at": now_iso(ctx),
            "by": ctx.client.msp_id,
            "noteRef": note_ref,
            "txId": ctx.tx_id,
        }
    )
    ctx.stub.put_state(alarm_key(alarm["alarmId"]), to_json(alarm))
    ctx.stub.set_event(
        _EVENTS[status],
        to_json({k: alarm[k] for k in ("alarmId", "ruleId", "raisedBy", "status")}),
    )
