"""Alarms (告警) of the commission and the commissions below it: list, acknowledge, close.

The `alarm` contract (alliance/alarm.py) is the record: the raising commission and the
regulators above it may acknowledge and close an alarm, each act one transaction in the alarm's
history. A note is sealed with the privacy module for the acting commission (alarm notes are
about supervision, not a patient: they are registered under a reference derived from the alarm
id, `ALARM_NOTE_SCOPE`, so no patient's record index ever lists them) and only its record id
reaches the chain. Closing needs a note; acknowledging takes one optionally.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from medalliance.alliance.alarm import STATUSES
from medalliance.app.alliance_network import AllianceNetwork
from medalliance.app.referral_demo import seal_note
from medalliance.errors import Conflict, InvalidArgument
from medalliance.web.services.commission_staff import commission_caller
from medalliance.web.services.contract_refusal import translated
from medalliance.web.staff import Staff

__all__ = ["ALARM_ACTIONS", "STATUSES", "AlarmAct", "AlarmActed", "AlarmRow", "act", "alarms"]

ALARM_ACTIONS = ("acknowledge", "close")
ALARM_NOTE_SCOPE = b"medalliance.alarm-note/1|"
NOTE_CHARS_MAX = 2000
_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True, slots=True)
class AlarmRow:
    alarm_id: str
    rule_id: str
    rule_version: int
    severity: str
    status: str
    subjects: tuple[str, ...]
    raised_by: str
    escalate_to: str
    raised_at: str
    history: tuple[tuple[str, str, str, str], ...]  # (status, at, by, tx id)


@dataclass(frozen=True, slots=True)
class AlarmAct:
    alarm_id: str
    action: str  # acknowledge | close
    note: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class AlarmActed:
    alarm_id: str
    status: str
    note_ref: str
    tx_id: str
    block: int


def alarms(network: AllianceNetwork, staff: Staff, status: str = "") -> tuple[AlarmRow, ...]:
    """The alarms of the caller's commission and those below it, oldest first."""
    caller = commission_caller(network, staff)
    if status and status not in STATUSES:
        raise InvalidArgument(f"the status must be one of {', '.join(STATUSES)}")
    raw = translated(
        lambda: network.evaluate(caller.msp_id, caller.user, "alarm", "AlarmsByStatus", status)
    )
    return tuple(_row(a) for a in json.loads(raw))


def act(network: AllianceNetwork, staff: Staff, request: AlarmAct) -> AlarmActed:
    """Acknowledge or close an alarm. Raises `InvalidArgument` for a bad id, action or a close
    without a note; the contract's refusals (another chain's alarm: 403, unknown: 404, already
    closed: 409) as their categories. The note is sealed only after the alarm is read back."""
    caller = commission_caller(network, staff)
    if not _ID.fullmatch(request.alarm_id):
        raise InvalidArgument("an alarm id uses letters, digits and ._- (1-64 characters)")
    if request.action not in ALARM_ACTIONS:
        raise InvalidArgument(f"the action must be one of {', '.join(ALARM_ACTIONS)}")
    if request.action == "close" and not request.note.strip():
        raise InvalidArgument("closing an alarm needs a note saying how it was handled")
    if len(request.note) > NOTE_CHARS_MAX:
        raise InvalidArgument(f"the note is longer than {NOTE_CHARS_MAX} characters; shorten it")
    # Read first: an alarm the caller may not touch, or one past this step, is refused before
    # anything is sealed (a refused act leaves no orphan note on the ledger).
    raw = translated(
        lambda: network.evaluate(caller.msp_id, caller.user, "alarm", "GetAlarm", request.alarm_id)
    )
    status = str(json.loads(raw)["status"])
    if status == "CLOSED" or (request.action == "acknowledge" and status != "OPEN"):
        raise Conflict(f"alarm {request.alarm_id} is {status}; reload the list")
    note_ref = ""
    if request.note.strip():
        note_ref = f"NOTE-{secrets.token_hex(8)}"
        scope = hashlib.sha256(ALARM_NOTE_SCOPE + request.alarm_id.encode()).hexdigest()[:32]
        seal_note(network, caller.msp_id, caller.user, [], note_ref, scope, "alarm-note",
                  request.note)  # fmt: skip
    function = "AcknowledgeAlarm" if request.action == "acknowledge" else "CloseAlarm"
    done = translated(
        lambda: network.submit(
            caller.msp_id, caller.user, "alarm", function, request.alarm_id, note_ref
        )
    )
    status = str(json.loads(done.payload)["status"])
    return AlarmActed(request.alarm_id, status, note_ref, done.tx_id, done.block)


def _row(alarm: dict[str, Any]) -> AlarmRow:
    return AlarmRow(
        str(alarm["alarmId"]), str(alarm["ruleId"]), int(alarm["ruleVersion"]),
        str(alarm["severity"]), str(alarm["status"]), tuple(alarm["subjects"]),
        str(alarm["raisedBy"]), str(alarm.get("escalateTo", "")), str(alarm["raisedAt"]),
        tuple((h["status"], h["at"], h["by"], h["txId"]) for h in alarm["history"]),
    )  # fmt: skip
