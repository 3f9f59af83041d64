"""The visit registry: every visit has a unique visit number (就诊号) bound to a patient pseudonym.

Paper figs. 6–8: a visit belongs to the hospital that holds the patient; only a referral moves
it (`TransferVisit` answers the `referral` contract only). Patients appear only as pseudonyms — a
raw identity is refused — and permissions come from the caller's certificate, never from
arguments.

State: one key per visit, and one index key per (hospital, visit) for `PatientsAt`, so visits
of different patients never conflict; moving a visit rewrites its own two keys only.
"""

from __future__ import annotations

import json
import re
from typing import Any

from medalliance.alliance.common import (
    check_id,
    hospital,
    load,
    now_iso,
    require_may_see,
    require_org,
    require_role,
    scan,
    to_json,
)
from medalliance.contracts import Context, Contract, create_composite_key, transaction
from medalliance.errors import ContractError

_PSEUDONYM = re.compile(r"^[0-9a-f]{16,64}$")
REGISTRARS = ("doctor", "clerk")


def visit_key(visit_no: str) -> str:
    return create_composite_key("visit", [visit_no])


def _at_key(hospital_id: str, visit_no: str) -> str:
    return create_composite_key("visitat", [hospital_id, visit_no])


class VisitContract(Contract):
    name = "visit"

    @transaction
    def RegisterVisit(self, ctx: Context, visit_no: str, patient_ref: str, hospital_id: str) -> str:
        check_id(visit_no, "visit number")
        if not _PSEUDONYM.fullmatch(patient_ref):
            raise ContractError(
                "patientRef must be a pseudonym (16-64 lower-case hex), not an identity", 400
            )
        require_org(ctx, hospital_id, "register a visit")
        hospital(ctx, hospital_id)
        require_role(ctx, *REGISTRARS)
        if ctx.stub.get_state(visit_key(visit_no)) is not None:
            raise ContractError(f"visit {visit_no} already exists", 409)
        record = {
            "visitNo": visit_no,
            "patientRef": patient_ref,
            "hospital": hospital_id,
            "registeredAt": now_iso(ctx),
            "registeredBy": ctx.client.msp_id,
        }
        ctx.stub.put_state(visit_key(visit_no), to_json(record))
        ctx.stub.put_state(_at_key(hospital_id, visit_no), to_json({"patientRef": patient_ref}))
        ctx.stub.set_event(
            "VisitRegistered", to_json({"visitNo": visit_no, "hospital": hospital_id})
        )
        return to_json(record).decode()

    @transaction(evaluate=True)
    def GetVisit(self, ctx: Context, visit_no: str) -> str:
        check_id(visit_no, "visit number")
        return to_json(load(ctx, visit_key(visit_no), f"visit {visit_no}")).decode()

    @transaction(evaluate=True)
    def PatientsAt(self, ctx: Context, hospital_id: str) -> list[Any]:
        """The visits (and their patients' pseudonyms) a hospital currently holds; for the
        hospital itself and its regulators."""
        hospital(ctx, hospital_id)
        require_may_see(ctx, f"the patients of {hospital_id}", hospital_id)
        found = []
        for visit_no, value in scan(ctx, "visitat", hospital_id):
            found.append({"visitNo": visit_no, "patientRef": json.loads(value)["patientRef"]})
        return sorted(found, key=lambda v: v["visitNo"])

    @transaction
    def TransferVisit(self, ctx: Context, visit_no: str, to_hospital: str) -> str:
        """Move a visit to another hospital: only within a referral transaction."""
        if ctx.called_by != "referral":
            raise ContractError("a visit moves only through the referral contract", 403)
        record = load(ctx, visit_key(visit_no), f"visit {visit_no}")
        if record["hospital"] != ctx.client.msp_id:
            raise ContractError(
                f"patient of visit {visit_no} is at {record['hospital']}, not {ctx.client.msp_id}",
                403,
            )
        if to_hospital == record["hospital"]:
            raise ContractError(f"visit {visit_no} is already at {to_hospital}", 409)
        hospital(ctx, to_hospital)
        ctx.stub.del_state(_at_key(record["hospital"], visit_no))
        ctx.stub.put_state(
            _at_key(to_hospital, visit_no), to_json({"patientRef": record["patientRef"]})
        )
        record["hospital"] = to_hospital
        ctx.stub.put_state(visit_key(visit_no), to_json(record))
        return to_json(record).decode()

    @transaction
    def MovePatientRef(self, ctx: Context, visit_no: str, old_ref: str, new_ref: str) -> str:
        """Re-key a visit from the patient's old pseudonym to the new one (the pseudonym
        migration, docs/privacy.md §4): only the hospital holding the visit, only from the
        pseudonym it has now. The old one stays in `formerPatientRefs`, so history links."""
        check_id(visit_no, "visit number")
        if not _PSEUDONYM.fullmatch(new_ref) or new_ref == old_ref:
            raise ContractError(
                "the new patientRef must be a different pseudonym (16-64 lower-case hex)", 400
            )
        require_role(ctx, *REGISTRARS)
        record = load(ctx, visit_key(visit_no), f"visit {visit_no}")
        if record["hospital"] != ctx.client.msp_id:
            raise ContractError(
                f"patient of visit {visit_no} is at {record['hospital']}, not {ctx.client.msp_id}",
                403,
            )
        if record["patientRef"] != old_ref:
            raise ContractError(f"visit {visit_no} is not bound to that old pseudonym", 409)
        record["patientRef"] = new_ref
        record["formerPatientRefs"] = [*record.get("formerPatientRefs", []), old_ref]
        ctx.stub.put_state(visit_key(visit_no), to_json(record))
        ctx.stub.put_state(_at_key(record["hospital"], visit_no), to_json({"patientRef": new_ref}))
        ctx.stub.set_event(
            "PatientRefMoved", to_json({"visitNo": visit_no, "hospital": record["hospital"]})
        )
        return to_json(record).decode()
