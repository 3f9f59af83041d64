"""The visit registry: every visit has a unique visit number (就诊号) bound to a patient pseudonym.

Paper figs. 6–8: a visit belongs to the hospital that holds the patient; only that hospital may
move it (the core of a referral). Patients appear only as pseudonyms — a raw identity is refused —
and permissions come from the caller's certificate, never from arguments.
"""

from __future__ import annotations

import datetime as dt
import json
import re

from medalliance.contracts import Context, Contract, create_composite_key, transaction
from medalliance.errors import ContractError

_PSEUDONYM = re.compile(r"^[0-9a-f]{16,64}$")
_VISIT_NO = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _key(visit_no: str) -> str:
    return create_composite_key("visit", [visit_no])


class VisitContract(Contract):
    name = "visit"

    @transaction
    def RegisterVisit(self, ctx: Context, visit_no: str, patient_ref: str, hospital: str) -> str:
        if not _VISIT_NO.match(visit_no):
            raise ContractError(
                f"visit number {visit_no!r} may use letters, digits and ._- (1-64)", 400
            )
        if not _PSEUDONYM.match(patient_ref):
            raise ContractError(
                "patientRef must be a pseudonym (16-64 lower-case hex), not an identity", 400
            )
        if ctx.client.msp_id != hospital:
            raise ContractError(
                f"caller of {ctx.client.msp_id} cannot register a visit at {hospital}", 403
            )
        if ctx.stub.get_state(_key(visit_no)) is not None:
            raise ContractError(f"visit {visit_no} already exists", 409)
        when = dt.datetime.fromtimestamp(ctx.tx_timestamp_ms / 1000, tz=dt.UTC)
        record = {
            "visitNo": visit_no,
            "patientRef": patient_ref,
            "hospital": hospital,
            "registeredAt": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "registeredBy": ctx.client.msp_id,
        }
        ctx.stub.put_state(_key(visit_no), _json(record))
        ctx.stub.set_event("VisitRegistered", _json({"visitNo": visit_no, "hospital": hospital}))
        return _json(record).decode()

    @transaction(evaluate=True)
    def GetVisit(self, ctx: Context, visit_no: str) -> str:
        raw = ctx.stub.get_state(_key(visit_no))
        if raw is None:
            raise ContractError(f"visit {visit_no} does not exist", 404)
        return raw.decode()

    @transaction(evaluate=True)
    def VisitsAt(self, ctx: Context, hospital: str) -> list[object]:
        visits = [json.loads(v) for _, v in ctx.stub.get_state_by_partial_composite_key("visit")]
        return sorted((v for v in visits if v["hospital"] == hospital), key=lambda v: v["visitNo"])

    @transaction
    def TransferVisit(self, ctx: Context, visit_no: str, to_hospital: str) -> str:
        raw = ctx.stub.get_state(_key(visit_no))
        if raw is None:
            raise ContractError(f"visit {visit_no} does not exist", 404)
        record = json.loads(raw)
        if record["hospital"] != ctx.client.msp_id:
            raise ContractError(
                f"patient of visit {visit_no} is at {record['hospital']}, not {ctx.client.msp_id}",
                403,
            )
        if to_hospital == record["hospital"]:
            raise ContractError(f"visit {visit_no} is already at {to_hospital}", 409)
        if to_hospital not in ctx.channel_orgs:
            raise ContractError(f"{to_hospital} is not a member of channel {ctx.channel_id}", 404)
        record["hospital"] = to_hospital
        ctx.stub.put_state(_key(visit_no), _json(record))
        ctx.stub.set_event("VisitTransferred", _json({"visitNo": visit_no, "to": to_hospital}))
        return _json(record).decode()


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
