"""Mutual recognition of examination results (检查检验结果互认): the registry on the chain.

Issue 19. A hospital registers each result it performed (`RecordResult`: pseudonym, examination
code, date, and the privacy module's record that holds the sealed FHIR DiagnosticReport /
Observation); before ordering, another hospital asks "already done?" (`RecognisedResults`) and
gets the results still valid from departments whose quality level its regulator's rules
recognise; it asks for one (`RequestResult`: the avoided repeat), which the performing hospital
answers with a privacy-module grant, and the fetch leaves an access event. Ordering a duplicate
anyway records the reason (`OrderDespiteRecognised`). The rules (catalogue, validity windows,
quality levels) are the regulators' (`SetRecognitionRules`, alliance/recognition_rules.py).

These functions belong to the `resource` contract (its namespace; `ResourceContract` inherits
them). Keys: recogrules (regulator), recogrulesversion (regulator, version), examresult (result),
patientresult (pseudonym, code, result), resultrecord (record), resultuse (result, requester),
duplicateorder (order). A relation is required to ask about a patient: a visit of that patient
at the asking hospital (docs/alliance.md §2), so no hospital can enumerate other patients.
"""

from __future__ import annotations

import json
import re
from typing import Any

from medalliance.alliance import recognition_rules as rules_mod
from medalliance.alliance.common import (
    call,
    check_code,
    check_id,
    hospital,
    load,
    may_see,
    now_iso,
    organization,
    protect,
    regulators_above,
    require_org,
    require_role,
    require_sealed_for,
    scan,
    supervising_regulator,
    to_json,
)
from medalliance.contracts import Context, create_composite_key, transaction
from medalliance.errors import ContractError

HOSPITAL_ROLES = ("clerk", "doctor")
# Why a hospital repeats an examination it could have taken over (closed list; OTHER needs a
# sealed note, as free text could describe the patient).
DUPLICATE_REASONS = (
    "CONDITION_CHANGED", "RESULT_INSUFFICIENT", "DIFFERENT_PROTOCOL", "RESULT_UNREADABLE",
    "PATIENT_REQUEST", "OTHER",
)  # fmt: skip
_PSEUDONYM = re.compile(r"[0-9a-f]{16,64}")


def _key(object_type: str, *attributes: str) -> str:
    return create_composite_key(object_type, attributes)


def result_key(result_id: str) -> str:
    return _key("examresult", result_id)


class ResultRecognition:
    """The recognition functions; mixed into `ResourceContract` (one namespace, one policy)."""

    @transaction
    def SetRecognitionRules(self, ctx: Context, rules: str) -> dict[str, Any]:
        """A regulator publishes its rules (the next version); it may grade only hospitals it
        supervises, directly or below. The keys then need the regulator's own peer."""
        clean = rules_mod.check_rules(rules)
        require_role(ctx, "reviewer", "admin")
        regulator = ctx.client.msp_id
        if organization(ctx, regulator).type != "regulator":
            raise ContractError(
                f"{regulator} is not a regulator; only a regulator sets recognition rules", 403
            )
        for msp_id in clean["levels"]:
            hospital(ctx, msp_id)
            if regulator not in regulators_above(ctx, msp_id):
                raise ContractError(
                    f"{regulator} does not supervise {msp_id}; it cannot grade its departments",
                    403,
                )
        version = int(_rules_of(ctx, regulator).get("version", 0)) + 1
        entry = {"regulator": regulator, "version": version, **clean,
                 "setAt": now_iso(ctx), "txId": ctx.tx_id}  # fmt: skip
        for key in (_key("recogrules", regulator), _key("recogrulesversion", regulator, f"{version:06d}")):  # fmt: skip
            ctx.stub.put_state(key, to_json(entry))
            protect(ctx, key, regulator)
        ctx.stub.set_event("RecognitionRulesSet", to_json({"regulator": regulator, "version": version}))  # fmt: skip
        return entry

    @transaction(evaluate=True)
    def RecognitionRules(self, ctx: Context, regulator: str) -> dict[str, Any]:
        """A regulator's rules in force (version 0, empty, until it publishes)."""
        if organization(ctx, regulator).type != "regulator":
            raise ContractError(f"{regulator} is not a regulator", 400)
        found = _rules_of(ctx, regulator)
        return found or {"regulator": regulator, "version": 0, "catalogue": {}, "levels": {}}

    @transaction
    def RecordResult(
        self,
        ctx: Context,
        result_id: str,
        pseudonym: str,
        code: str,
        performed_on: str,
        record_id: str,
        performing_hospital: str,
    ) -> dict[str, Any]:
        """The performing hospital registers a result it performed; the report stays sealed in
        `record_id` (a records entry of this patient owned by that hospital)."""
        require_role(ctx, *HOSPITAL_ROLES)
        check_id(result_id, "result id")
        _check_pseudonym(pseudonym)
        rules_mod.check_code(code)
        day = rules_mod.check_date(performed_on, "performedOn")
        check_id(record_id, "record id")
        hospital(ctx, performing_hospital)
        require_org(ctx, performing_hospital, "record a result")
        if day > rules_mod.check_date(now_iso(ctx), "now"):
            raise ContractError("performedOn lies in the future", 400)
        rules = _rules_for(ctx, performing_hospital)
        if code not in rules["catalogue"]:
            raise ContractError(
                f"examination {code} is not in the catalogue of {rules['regulator']}; "
                "see `medalliance result rules`",
                400,
            )
        if ctx.stub.get_state(result_key(result_id)) is not None:
            raise ContractError(f"result {result_id} already exists", 409)
        used = ctx.stub.get_state(_key("resultrecord", record_id))
        if used is not None:
            raise ContractError(f"record {record_id} is already result {json.loads(used)}", 409)
        record = call(ctx, "records", "GetRecord", record_id)
        if record["patientRef"] != pseudonym or record["owner"] != performing_hospital:
            raise ContractError(
                f"record {record_id} is not a record of this patient held by {performing_hospital}",
                400,
            )
        result = {"resultId": result_id, "patientRef": pseudonym, "code": code,
                  "performedOn": day.isoformat(), "recordId": record_id,
                  "hospital": performing_hospital, "recordedAt": now_iso(ctx), "txId": ctx.tx_id}  # fmt: skip
        ctx.stub.put_state(result_key(result_id), to_json(result))
        protect(ctx, result_key(result_id), performing_hospital)
        ctx.stub.put_state(_key("patientresult", pseudonym, code, result_id), to_json(result_id))
        ctx.stub.put_state(_key("resultrecord", record_id), to_json(result_id))
        ctx.stub.set_event("ResultRecorded", _pick(result, "resultId", "hospital", "code"))
        return result

    @transaction(evaluate=True)
    def RecognisedResults(
        self, ctx: Context, pseudonym: str, code: str, as_of: str, visit_no: str
    ) -> list[dict[str, Any]]:
        """ "Already done?": the patient's results of `code` valid on `as_of` from departments
        whose level the rules recognise, newest first. A hospital names its visit of the patient
        (`visit_no`); a regulator's auditor or reviewer passes "" and sees its hospitals'."""
        _check_pseudonym(pseudonym)
        rules_mod.check_code(code)
        day = rules_mod.check_date(as_of, "asOf")
        _require_relation(ctx, pseudonym, visit_no)
        found = _recognised(ctx, pseudonym, code, day.isoformat())
        return [r for r in found if visit_no or may_see(ctx, r["hospital"])]

    @transaction
    def RequestResult(self, ctx: Context, result_id: str, visit_no: str) -> dict[str, Any]:
        """Take over a recognised result instead of repeating it (the avoided repeat): the
        performing hospital then grants the record (privacy module) and the fetch is logged."""
        require_role(ctx, *HOSPITAL_ROLES)
        result = load(ctx, result_key(check_id(result_id, "result id")), f"result {result_id}")
        _require_relation(ctx, result["patientRef"], visit_no)
        requester = ctx.client.msp_id
        if requester == result["hospital"]:
            raise ContractError(f"result {result_id} was performed by {requester} itself", 409)
        today = rules_mod.check_date(now_iso(ctx), "now").isoformat()
        recognised = _recognised(ctx, result["patientRef"], result["code"], today)
        if result_id not in {r["resultId"] for r in recognised}:
            raise ContractError(f"result {result_id} is no longer recognised (expired or level)", 409)  # fmt: skip
        key = _key("resultuse", result_id, requester)
        if ctx.stub.get_state(key) is not None:
            raise ContractError(f"{requester} has already requested result {result_id}", 409)
        use = {"resultId": result_id, "requester": requester, "hospital": result["hospital"],
               "code": result["code"], "recordId": result["recordId"], "visitNo": visit_no,
               "requestedAt": now_iso(ctx), "txId": ctx.tx_id}  # fmt: skip
        ctx.stub.put_state(key, to_json(use))
        ctx.stub.set_event("RecognisedResultRequested", _pick(use, "resultId", "requester", "hospital", "recordId"))  # fmt: skip
        return use

    @transaction
    def OrderDespiteRecognised(
        self, ctx: Context, order_id: str, visit_no: str, code: str, reason_code: str,
        note_ref: str,
    ) -> dict[str, Any]:  # fmt: skip
        """Order an examination again although recognised results exist: the reason (a code of
        `DUPLICATE_REASONS`; `OTHER` with a sealed note for the regulator) goes on the chain.
        409 when nothing is recognised: that is an ordinary order, not a duplicate."""
        require_role(ctx, "doctor")
        check_id(order_id, "order id")
        rules_mod.check_code(code)
        check_code(reason_code, "reasonCode", DUPLICATE_REASONS)
        caller = ctx.client.msp_id
        visit = _visit_at(ctx, visit_no, caller)
        if ctx.stub.get_state(_key("duplicateorder", order_id)) is not None:
            raise ContractError(f"order {order_id} already exists", 409)
        if reason_code == "OTHER" or note_ref:
            if not note_ref:
                raise ContractError("reasonCode OTHER needs noteRef, a sealed note", 400)
            require_sealed_for(ctx, note_ref, "noteRef", visit["patientRef"],
                               caller, supervising_regulator(ctx, caller))  # fmt: skip
        today = rules_mod.check_date(now_iso(ctx), "now").isoformat()
        found = _recognised(ctx, visit["patientRef"], code, today)
        if not found:
            raise ContractError(
                f"no recognised result of {code} for the patient of visit {visit_no}; "
                "order it as usual",
                409,
            )
        order = {"orderId": order_id, "hospital": caller, "visitNo": visit_no,
                 "patientRef": visit["patientRef"], "code": code, "reasonCode": reason_code,
                 "noteRef": note_ref, "recognised": [r["resultId"] for r in found],
                 "orderedAt": now_iso(ctx), "txId": ctx.tx_id}  # fmt: skip
        ctx.stub.put_state(_key("duplicateorder", order_id), to_json(order))
        ctx.stub.set_event("DuplicateOrdered", _pick(order, "orderId", "hospital", "code", "reasonCode"))  # fmt: skip
        return order


def _rules_of(ctx: Context, regulator: str) -> dict[str, Any]:
    raw = ctx.stub.get_state(_key("recogrules", regulator))
    found: dict[str, Any] = json.loads(raw) if raw else {}
    return found


def _rules_for(ctx: Context, msp_id: str) -> dict[str, Any]:
    """The rules governing a hospital's results: its nearest regulator's that published any."""
    for regulator in regulators_above(ctx, msp_id):
        found = _rules_of(ctx, regulator)
        if found:
            return found
    raise ContractError(f"no regulator above {msp_id} has published recognition rules", 412)


def _recognised(ctx: Context, pseudonym: str, code: str, day: str) -> list[dict[str, Any]]:
    found = []
    for result_id, _ in scan(ctx, "patientresult", pseudonym, code):
        result = load(ctx, result_key(result_id), f"result {result_id}")
        try:
            rules = _rules_for(ctx, result["hospital"])
        except ContractError:
            continue
        entry = rules["catalogue"].get(code)
        level = rules["levels"].get(result["hospital"], {}).get(code, "")
        if entry is None or not rules_mod.meets(level, entry["minLevel"]):
            continue  # not graded, or graded below what the regulator recognises
        until = rules_mod.valid_until(result["performedOn"], entry["validityDays"]).isoformat()
        if result["performedOn"] <= day <= until:
            found.append({**result, "level": level, "validUntil": until,
                          "rulesOf": rules["regulator"], "rulesVersion": rules["version"]})  # fmt: skip
    return sorted(found, key=lambda r: (r["performedOn"], r["resultId"]), reverse=True)


def _require_relation(ctx: Context, pseudonym: str, visit_no: str) -> None:
    """A hospital asks about a patient only through its own visit of that patient; a regulator's
    auditor or reviewer asks about the hospitals it supervises (checked per result)."""
    caller = ctx.client.msp_id
    if organization(ctx, caller).type == "regulator" and not visit_no:
        require_role(ctx, "auditor", "reviewer")
        return
    require_role(ctx, *HOSPITAL_ROLES)
    visit = _visit_at(ctx, visit_no, caller)
    if visit["patientRef"] != pseudonym:
        # The same answer whether or not the pseudonym exists: nothing to enumerate.
        raise ContractError(f"visit {visit_no} is of another patient", 403)


def _visit_at(ctx: Context, visit_no: str, msp_id: str) -> dict[str, Any]:
    check_id(visit_no, "visit number")
    visit: dict[str, Any] = call(ctx, "visit", "GetVisit", visit_no)
    if visit["hospital"] != msp_id:
        raise ContractError(f"patient of visit {visit_no} is not at {msp_id}", 403)
    return visit


def _check_pseudonym(value: str) -> None:
    if not _PSEUDONYM.fullmatch(value):
        raise ContractError("pseudonym must be 16-64 lower-case hex (never an identity)", 400)


def _pick(record: dict[str, Any], *fields: str) -> bytes:
    return to_json({name: record[name] for name in fields})


__all__ = ["DUPLICATE_REASONS", "ResultRecognition", "result_key"]
