"""Mutual recognition of examination results through the contracts (issue 19): the regulator's
rules, recording, "already done?", taking a result over with a logged fetch, duplicates with a
reason, and what a hostile or careless hospital tries (refused, nothing written)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from tests.unit.alliance.harness import Alliance

from medalliance.alliance.recognition import DUPLICATE_REASONS
from medalliance.alliance.records import RecordsContract
from medalliance.alliance.resource import ResourceContract
from medalliance.alliance.visit import VisitContract

PATIENT = "9f86d081884c7d65"
OTHER_PATIENT = "2c26b46b68ffc68f"
DIGEST = hashlib.sha256(b"sealed DiagnosticReport").hexdigest()
HB = "718-7"  # LOINC haemoglobin: valid 30 days, level B or better recognised
CT = "CT.CHEST"  # an alliance code: valid 90 days, only level A recognised
TODAY = "2025-11-28"  # the harness clock's date
RULES = {
    "catalogue": {HB: {"validityDays": 30, "minLevel": "B"}, CT: {"validityDays": 90, "minLevel": "A"}},
    "levels": {"TertiaryAMSP": {HB: "A", CT: "B"}, "TertiaryBMSP": {HB: "C"}},
}  # fmt: skip


@pytest.fixture
def alliance() -> Alliance:
    """District rules published; SecondaryA holds visit V-S of PATIENT; results of PATIENT's
    haemoglobin: RES-A1 (TertiaryA, level A, 8 days old), RES-A2 (TertiaryA, 58 days old:
    expired), RES-B1 (TertiaryB, level C: below B), and CT RES-C1 (TertiaryA, level B < A)."""
    a = Alliance({"resource": ResourceContract(), "visit": VisitContract(), "records": RecordsContract()})  # fmt: skip
    a.ok("DistrictHCMSP", "reviewer", "resource", "SetRecognitionRules", json.dumps(RULES))
    a.ok("SecondaryAMSP", "doctor", "visit", "RegisterVisit", "V-S", PATIENT, "SecondaryAMSP")
    a.ok("SecondaryBMSP", "doctor", "visit", "RegisterVisit", "V-O", OTHER_PATIENT, "SecondaryBMSP")  # fmt: skip
    for msp, record, patient in (("TertiaryAMSP", "R-A1", PATIENT), ("TertiaryAMSP", "R-A2", PATIENT),
                                 ("TertiaryBMSP", "R-B1", PATIENT), ("TertiaryAMSP", "R-C1", PATIENT),
                                 ("TertiaryAMSP", "R-X", OTHER_PATIENT), ("TertiaryAMSP", "R-FREE", PATIENT)):  # fmt: skip
        a.ok(msp, "doctor", "records", "RegisterRecord", record, patient, DIGEST, "[]", "[]")
    for msp, result, code, day, record in (("TertiaryAMSP", "RES-A1", HB, "2025-11-20", "R-A1"),
                                           ("TertiaryAMSP", "RES-A2", HB, "2025-10-01", "R-A2"),
                                           ("TertiaryBMSP", "RES-B1", HB, "2025-11-25", "R-B1"),
                                           ("TertiaryAMSP", "RES-C1", CT, "2025-11-27", "R-C1")):  # fmt: skip
        a.ok(msp, "clerk", "resource", "RecordResult", result, PATIENT, code, day, record, msp)
    return a


def ids(found: list[dict[str, Any]]) -> list[str]:
    return [r["resultId"] for r in found]


@pytest.mark.parametrize(
    ("code", "as_of", "offered"),
    [
        pytest.param(HB, TODAY, ["RES-A1"], id="only the valid result of a recognised level is offered"),
        pytest.param(HB, "2025-12-21", [], id="a result past its validity window is not offered"),
        pytest.param(HB, "2025-10-20", ["RES-A2"], id="a result is offered while its window lasts"),
        pytest.param(CT, TODAY, [], id="a department below the examination's minimum level is not offered"),
        pytest.param(HB, "2025-11-28T23:30:00+08:00", ["RES-A1"], id="an instant counts as its UTC date"),
    ],
)  # fmt: skip
def test_already_done_offers_what_the_rules_recognise(
    alliance: Alliance, code: str, as_of: str, offered: list[str]
) -> None:
    found = alliance.ok("SecondaryAMSP", "doctor", "resource", "RecognisedResults", PATIENT, code, as_of, "V-S")  # fmt: skip
    assert ids(found) == offered


def test_a_recognised_result_is_found_requested_granted_and_its_fetch_logged(
    alliance: Alliance,
) -> None:
    [found] = alliance.ok("SecondaryAMSP", "clerk", "resource", "RecognisedResults", PATIENT, HB, TODAY, "V-S")  # fmt: skip
    assert (found["hospital"], found["level"], found["validUntil"], found["recordId"]) == (
        "TertiaryAMSP", "A", "2025-12-20", "R-A1",
    )  # fmt: skip
    use = alliance.ok("SecondaryAMSP", "doctor", "resource", "RequestResult", "RES-A1", "V-S")
    assert (use["requester"], use["hospital"], use["recordId"]) == ("SecondaryAMSP", "TertiaryAMSP", "R-A1")  # fmt: skip
    # Until the performing hospital grants the record, the requester cannot log a fetch of it.
    assert alliance.refused("SecondaryAMSP", "doctor", "records", "LogAccess", "R-A1", "1", "fetch")[0] == 403  # fmt: skip
    alliance.ok("TertiaryAMSP", "clerk", "records", "Grant", "R-A1", "SecondaryAMSP")
    alliance.ok("SecondaryAMSP", "doctor", "records", "LogAccess", "R-A1", "1", "fetch")
    log = alliance.ok("TertiaryAMSP", "clerk", "records", "AccessLog", "R-A1")
    assert [(e["action"], e["org"]) for e in log][-1] == ("fetch", "SecondaryAMSP")
    # A commission's auditor sees its hospitals' results without a visit (oversight).
    audited = alliance.ok("DistrictHCMSP", "auditor", "resource", "RecognisedResults", PATIENT, HB, TODAY, "")  # fmt: skip
    assert ids(audited) == ["RES-A1"]
    assert alliance.ok("OtherHCMSP", "auditor", "resource", "RecognisedResults", PATIENT, HB, TODAY, "") == []  # fmt: skip


def test_a_duplicate_order_records_its_reason_and_the_recognised_results(
    alliance: Alliance,
) -> None:
    order = alliance.ok("SecondaryAMSP", "doctor", "resource", "OrderDespiteRecognised", "ORD-1", "V-S", HB, "CONDITION_CHANGED", "")  # fmt: skip
    assert (order["hospital"], order["reasonCode"], order["recognised"]) == (
        "SecondaryAMSP", "CONDITION_CHANGED", ["RES-A1"],
    )  # fmt: skip
    # Nothing recognised for CT: ordering it is no duplicate, so there is nothing to justify.
    status, message = alliance.refused("SecondaryAMSP", "doctor", "resource", "OrderDespiteRecognised", "ORD-2", "V-S", CT, "CONDITION_CHANGED", "")  # fmt: skip
    assert (status, message) == (409, f"no recognised result of {CT} for the patient of visit V-S; order it as usual")  # fmt: skip


def test_rules_are_versioned_and_a_downgrade_withdraws_recognition(alliance: Alliance) -> None:
    lowered = {**RULES, "levels": {"TertiaryAMSP": {HB: "C"}}}
    entry = alliance.ok("DistrictHCMSP", "reviewer", "resource", "SetRecognitionRules", json.dumps(lowered))  # fmt: skip
    assert entry["version"] == 2
    assert alliance.ok("TertiaryAMSP", "clerk", "resource", "RecognitionRules", "DistrictHCMSP")["levels"] == lowered["levels"]  # fmt: skip
    assert alliance.ok("SecondaryAMSP", "doctor", "resource", "RecognisedResults", PATIENT, HB, TODAY, "V-S") == []  # fmt: skip


RAISED = json.dumps({**RULES, "levels": {"TertiaryBMSP": {HB: "A"}}})
CODES = ", ".join(DUPLICATE_REASONS)
NO_FINDINGS = "examination code must be a LOINC code (e.g. 24627-2) or an alliance code (upper case, e.g. CT.CHEST); findings belong in the sealed report"  # fmt: skip


@pytest.mark.parametrize(
    ("msp", "role", "args", "status", "message"),
    [
        pytest.param("TertiaryBMSP", "clerk", ["SetRecognitionRules", RAISED], 403, "role reviewer or admin required, caller has clerk", id="a hospital cannot raise its own quality level"),
        pytest.param("TertiaryBMSP", "reviewer", ["SetRecognitionRules", RAISED], 403, "TertiaryBMSP is not a regulator; only a regulator sets recognition rules", id="a hospital user with a reviewer role is still no regulator"),
        pytest.param("OtherHCMSP", "reviewer", ["SetRecognitionRules", RAISED], 403, "OtherHCMSP does not supervise TertiaryBMSP; it cannot grade its departments", id="a commission cannot grade another district's hospital"),
        pytest.param("DistrictHCMSP", "reviewer", ["SetRecognitionRules", '{"catalogue": {}, "levels": {}}'], 400, "catalogue must map 1 to 500 examination codes", id="an empty catalogue is refused"),
        pytest.param("SecondaryBMSP", "clerk", ["RecordResult", "RES-9", PATIENT, HB, TODAY, "R-FREE", "TertiaryAMSP"], 403, "caller of SecondaryBMSP cannot record a result for TertiaryAMSP", id="a hospital cannot record a result as another hospital"),
        pytest.param("TertiaryAMSP", "clerk", ["RecordResult", "RES-A1", PATIENT, HB, TODAY, "R-FREE", "TertiaryAMSP"], 409, "result RES-A1 already exists", id="replaying a record with the same id is refused"),
        pytest.param("TertiaryAMSP", "clerk", ["RecordResult", "RES-9", PATIENT, HB, TODAY, "R-A1", "TertiaryAMSP"], 409, "record R-A1 is already result RES-A1", id="one sealed report is one result"),
        pytest.param("TertiaryAMSP", "clerk", ["RecordResult", "RES-9", PATIENT, HB, TODAY, "R-X", "TertiaryAMSP"], 400, "record R-X is not a record of this patient held by TertiaryAMSP", id="another patient's report cannot be attached"),
        pytest.param("TertiaryBMSP", "clerk", ["RecordResult", "RES-9", PATIENT, HB, TODAY, "R-FREE", "TertiaryBMSP"], 400, "record R-FREE is not a record of this patient held by TertiaryBMSP", id="another hospital's report cannot be attached"),
        pytest.param("TertiaryAMSP", "clerk", ["RecordResult", "RES-9", PATIENT, "Hb 7.1 g/dL low", TODAY, "R-FREE", "TertiaryAMSP"], 400, NO_FINDINGS, id="findings typed as a code are refused without being quoted"),
        pytest.param("TertiaryAMSP", "clerk", ["RecordResult", "RES-9", PATIENT, "LOINC.NOT.LISTED", TODAY, "R-FREE", "TertiaryAMSP"], 400, "examination LOINC.NOT.LISTED is not in the catalogue of DistrictHCMSP; see `medalliance result rules`", id="an examination outside the catalogue is refused"),
        pytest.param("TertiaryAMSP", "clerk", ["RecordResult", "RES-9", PATIENT, HB, "2025-11-29", "R-FREE", "TertiaryAMSP"], 400, "performedOn lies in the future", id="a result cannot be dated after today"),
        pytest.param("TertiaryAMSP", "clerk", ["RecordResult", "RES-9", PATIENT, HB, "2025-02-30", "R-FREE", "TertiaryAMSP"], 400, "performedOn must be a date such as 2026-11-28", id="an impossible date is refused"),
        pytest.param("SecondaryBMSP", "doctor", ["RecognisedResults", PATIENT, HB, TODAY, "V-S"], 403, "patient of visit V-S is not at SecondaryBMSP", id="a hospital cannot ask through another hospital's visit"),
        pytest.param("SecondaryBMSP", "doctor", ["RecognisedResults", PATIENT, HB, TODAY, "V-O"], 403, "visit V-O is of another patient", id="enumerating other patients through one's own visit is refused"),
        pytest.param("SecondaryBMSP", "doctor", ["RecognisedResults", PATIENT, HB, TODAY, ""], 400, "visit number '' may use letters, digits and ._- (1-64)", id="a hospital without a visit has no relation"),
        pytest.param("SecondaryBMSP", "doctor", ["RequestResult", "RES-A1", "V-O"], 403, "visit V-O is of another patient", id="requesting another patient's result is refused"),
        pytest.param("SecondaryAMSP", "doctor", ["RequestResult", "RES-A2", "V-S"], 409, "result RES-A2 is no longer recognised (expired or level)", id="an expired result cannot be requested"),
        pytest.param("SecondaryAMSP", "doctor", ["RequestResult", "RES-B1", "V-S"], 409, "result RES-B1 is no longer recognised (expired or level)", id="a lower-level result cannot be requested"),
        pytest.param("SecondaryAMSP", "doctor", ["OrderDespiteRecognised", "ORD-9", "V-S", HB, "OTHER", ""], 400, "reasonCode OTHER needs noteRef, a sealed note", id="a duplicate for another reason needs a sealed note"),
        pytest.param("SecondaryAMSP", "doctor", ["OrderDespiteRecognised", "ORD-9", "V-S", HB, "patient anxious", ""], 400, f"reasonCode must be one of {CODES}; free text goes into a sealed note (a records entry), never onto the ledger", id="a free-text reason is refused"),
        pytest.param("SecondaryBMSP", "doctor", ["OrderDespiteRecognised", "ORD-9", "V-S", HB, "CONDITION_CHANGED", ""], 403, "patient of visit V-S is not at SecondaryBMSP", id="a duplicate is ordered only for one's own visit"),
    ],
)  # fmt: skip
def test_refused_and_nothing_written(
    alliance: Alliance, msp: str, role: str, args: list[str], status: int, message: str
) -> None:
    assert alliance.refused(msp, role, "resource", *args) == (status, message)


@pytest.mark.parametrize(
    ("msp", "role", "args", "message"),
    [
        pytest.param("SecondaryAMSP", "doctor", ["RequestResult", "RES-A1", "V-S"], "SecondaryAMSP has already requested result RES-A1", id="a replayed request is refused"),
        pytest.param("SecondaryAMSP", "doctor", ["OrderDespiteRecognised", "ORD-1", "V-S", HB, "PATIENT_REQUEST", ""], "order ORD-1 already exists", id="a replayed duplicate order is refused"),
    ],
)  # fmt: skip
def test_replays_are_refused(
    alliance: Alliance, msp: str, role: str, args: list[str], message: str
) -> None:
    alliance.ok("SecondaryAMSP", "doctor", "resource", "RequestResult", "RES-A1", "V-S")
    alliance.ok("SecondaryAMSP", "doctor", "resource", "OrderDespiteRecognised", "ORD-1", "V-S", HB, "CONDITION_CHANGED", "")  # fmt: skip
    assert alliance.refused(msp, role, "resource", *args) == (409, message)
