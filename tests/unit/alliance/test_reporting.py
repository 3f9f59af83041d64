"""Periodic statistics: hospitals report to their district, districts aggregate for the city."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import chaincode_event_pb2
from tests.unit.alliance.harness import ORGS, Alliance

from medalliance.alliance.reporting import ReportingContract
from medalliance.contracts.api import Organization
from medalliance.contracts.simulation import SimulationResult

NOV, OCT = "2026-11", "2026-10"


@pytest.fixture
def alliance() -> Alliance:
    return Alliance({"reporting": ReportingContract()})


def submit(alliance: Alliance, msp_id: str, report_id: str, period: str, **counts: int) -> Any:
    return alliance.ok(
        msp_id, "clerk", "reporting", "SubmitReport", report_id, period, json.dumps(counts)
    )


def event_of(result: SimulationResult) -> tuple[str, Any]:
    assert result.event is not None
    event = chaincode_event_pb2.ChaincodeEvent.FromString(result.event)
    return event.event_name, json.loads(event.payload)


@pytest.fixture
def filed(alliance: Alliance) -> Alliance:
    """TertiaryA, SecondaryA (district) and SecondaryC (other district) report for November;
    the district aggregates its two as AGG-D."""
    submit(alliance, "TertiaryAMSP", "RPT-TA", NOV, outpatientVisits=120, referralsOut=3)
    submit(alliance, "SecondaryAMSP", "RPT-SA", NOV, outpatientVisits=80, referralsIn=5)
    submit(alliance, "SecondaryCMSP", "RPT-SC", NOV, outpatientVisits=1000)
    alliance.ok("DistrictHCMSP", "reviewer", "reporting", "AggregateReports", "AGG-D", NOV)
    return alliance


# --- SubmitReport ---------------------------------------------------------------------------------


def test_a_clerk_reports_to_its_supervising_regulator(alliance: Alliance) -> None:
    metrics = '{"referralsOut": 3, "outpatientVisits": 120, "sharedExaminations": 0}'
    result = alliance.call("TertiaryAMSP", "clerk", "reporting", "SubmitReport", "R1", NOV, metrics)
    assert result.status == 200, result.message
    expected = {
        "reportId": "R1",
        "period": "2026-11",
        "submitter": "TertiaryAMSP",
        "level": "hospital",
        "recipient": "DistrictHCMSP",
        "metrics": {"outpatientVisits": 120, "referralsOut": 3, "sharedExaminations": 0},
        "submittedAt": "2025-11-28T12:00:01.000Z",
        "txId": "tx00001",
    }
    assert result.payload.decode() == (
        '{"level":"hospital","metrics":{"outpatientVisits":120,"referralsOut":3,'
        '"sharedExaminations":0},"period":"2026-11","recipient":"DistrictHCMSP","reportId":"R1",'
        '"submittedAt":"2025-11-28T12:00:01.000Z","submitter":"TertiaryAMSP","txId":"tx00001"}'
    )
    assert event_of(result) == (
        "ReportSubmitted",
        {
            "reportId": "R1",
            "period": NOV,
            "submitter": "TertiaryAMSP",
            "recipient": "DistrictHCMSP",
        },
    )
    assert alliance.ok("DistrictHCMSP", "auditor", "reporting", "GetReport", "R1") == expected


def test_the_boundaries_of_metrics_are_accepted(alliance: Alliance) -> None:
    metrics = {f"m{i:02d}": i for i in range(49)} | {"a" * 48: 10**12 - 1}
    record = submit(alliance, "SecondaryCMSP", "R1", NOV, **metrics)
    assert record["metrics"] == metrics
    assert record["recipient"] == "OtherHCMSP"


@pytest.mark.parametrize(
    ("msp_id", "role", "args", "status", "message"),
    [
        pytest.param(
            "TertiaryAMSP",
            "doctor",
            ["R9", NOV, '{"a": 1}'],
            403,
            "role clerk required, caller has doctor",
            id="only a clerk submits reports",
        ),
        pytest.param(
            "TertiaryAMSP",
            None,
            ["R9", NOV, '{"a": 1}'],
            403,
            "role clerk required, caller has no role",
            id="a certificate without a role submits nothing",
        ),
        pytest.param(
            "DistrictHCMSP",
            "clerk",
            ["R9", NOV, '{"a": 1}'],
            400,
            "DistrictHCMSP is a regulator organisation, not a hospital",
            id="only a hospital submits reports",
        ),
        pytest.param(
            "TertiaryAMSP",
            "clerk",
            ["RPT-2", NOV, '{"a": 1}'],
            409,
            "report RPT-TA for 2026-11 already exists",
            id="a hospital reports once per period",
        ),
        pytest.param(
            "TertiaryBMSP",
            "clerk",
            ["RPT-TA", NOV, '{"a": 1}'],
            409,
            "report RPT-TA already exists",
            id="a report id is unique across hospitals",
        ),
        pytest.param(
            "TertiaryAMSP",
            "clerk",
            ["RPT-TA", OCT, '{"a": 1}'],
            409,
            "report RPT-TA already exists",
            id="a report id is unique across periods",
        ),
        pytest.param(
            "TertiaryBMSP",
            "clerk",
            ["R 9", NOV, '{"a": 1}'],
            400,
            "report id 'R 9' may use letters, digits and ._- (1-64)",
            id="a report id is checked",
        ),
        pytest.param(
            "TertiaryBMSP",
            "clerk",
            ["R9", "2026/11", '{"a": 1}'],
            400,
            "period must be YYYY-MM (e.g. 2026-11), not '2026/11'",
            id="a period is YYYY-MM",
        ),
        pytest.param(
            "TertiaryBMSP",
            "clerk",
            ["R9", "2026-13", '{"a": 1}'],
            400,
            "period must be YYYY-MM (e.g. 2026-11), not '2026-13'",
            id="a period has a valid month",
        ),
        pytest.param(
            "TertiaryBMSP",
            "clerk",
            ["R9", "2026-00", '{"a": 1}'],
            400,
            "period must be YYYY-MM (e.g. 2026-11), not '2026-00'",
            id="there is no month zero",
        ),
        pytest.param(
            "TertiaryBMSP",
            "clerk",
            ["R9", "2026-11\n", '{"a": 1}'],
            400,
            "period must be YYYY-MM (e.g. 2026-11), not '2026-11\\n'",
            id="a period has nothing after the month",
        ),
    ],
)
def test_submit_refusals(
    filed: Alliance, msp_id: str, role: str | None, args: list[str], status: int, message: str
) -> None:
    assert filed.refused(msp_id, role, "reporting", "SubmitReport", *args) == (status, message)


def test_a_hospital_without_a_regulator_cannot_report(
    alliance: Alliance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ORGS, "SecondaryCMSP", Organization("SecondaryCMSP", "secondary"))
    assert alliance.refused(
        "SecondaryCMSP", "clerk", "reporting", "SubmitReport", "R1", NOV, '{"a": 1}'
    ) == (412, "SecondaryCMSP has no supervising regulator in the registry")


VALUE_RULE = "must be a whole number from 0 to 999999999999, not"


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        pytest.param("visits=3", "metrics is not valid JSON: Expecting value at 0", id="not JSON"),
        pytest.param(
            '{"a": 1',
            "metrics is not valid JSON: Expecting ',' delimiter at 7",
            id="truncated JSON",
        ),
        pytest.param("", "metrics is not valid JSON: Expecting value at 0", id="empty"),
        pytest.param(
            '{"a": ' + "9" * 5000 + "}",
            "metrics is not valid JSON",
            id="a number too long to parse",
        ),
        pytest.param("[1, 2]", "metrics must be a JSON object, not an array", id="an array"),
        pytest.param('"a"', "metrics must be a JSON object, not a string", id="a string"),
        pytest.param("3", "metrics must be a JSON object, not a number", id="a number"),
        pytest.param("true", "metrics must be a JSON object, not a boolean", id="a boolean"),
        pytest.param("null", "metrics must be a JSON object, not null", id="null"),
        pytest.param("{}", "metrics has 0 entries; 1 to 50", id="no metrics"),
        pytest.param(
            json.dumps({f"m{i}": 1 for i in range(51)}),
            "metrics has 51 entries; 1 to 50",
            id="more than 50 metrics",
        ),
        pytest.param('{"a": 1, "a": 2}', "metric 'a' appears more than once", id="a name twice"),
        *[
            pytest.param(
                json.dumps({name: 1}),
                f"metric name {name!r} must be a letter then up to 47 letters, digits or _",
                id=why,
            )
            for name, why in [
                ("1visits", "a name starts with a letter"),
                ("", "a name is not empty"),
                ("out-patient", "a name has no hyphen"),
                ("visitsé", "a name is ASCII"),
                ("visits\n", "a name has no trailing newline"),
                ("a" * 49, "a name has at most 48 characters"),
            ]
        ],
        *[
            pytest.param(
                json.dumps({"visits": value}), f"metric visits {VALUE_RULE} {text}", id=why
            )
            for value, text, why in [
                (-1, "-1", "a count is not negative"),
                (1.5, "1.5", "a count is not a fraction"),
                (2.0, "2.0", "a count is not a float even when whole"),
                (True, "true", "a boolean is not a count"),
                ("5", '"5"', "a numeric string is not a count"),
                (None, "null", "null is not a count"),
                ({"n": 1}, '{"n": 1}', "a count is not an object"),
                (10**12, "1000000000000", "a count is below 10**12"),
            ]
        ],
        pytest.param('{"visits": NaN}', f"metric visits {VALUE_RULE} NaN", id="NaN is not a count"),
    ],
)
def test_malformed_metrics_are_refused(alliance: Alliance, metrics: str, message: str) -> None:
    assert alliance.refused(
        "TertiaryAMSP", "clerk", "reporting", "SubmitReport", "R1", NOV, metrics
    ) == (400, message)


@pytest.mark.parametrize(
    ("function", "args", "expected"),
    [
        pytest.param("SubmitReport", ["R1", NOV], 3, id="SubmitReport takes three arguments"),
        pytest.param("AggregateReports", ["A", NOV, "x"], 2, id="AggregateReports takes two"),
        pytest.param("GetReport", [], 1, id="GetReport takes one"),
        pytest.param("ReportsTo", ["DistrictHCMSP"], 2, id="ReportsTo takes two"),
        pytest.param("ReportsOf", ["TertiaryAMSP"], 2, id="ReportsOf takes two"),
    ],
)
def test_wrong_argument_counts_are_refused(
    alliance: Alliance, function: str, args: list[str], expected: int
) -> None:
    assert alliance.refused("TertiaryAMSP", "clerk", "reporting", function, *args) == (
        400,
        f"{function} takes {expected} arguments, got {len(args)}",
    )


# --- AggregateReports -----------------------------------------------------------------------------


def test_a_district_sums_its_hospitals_reports_for_the_city(alliance: Alliance) -> None:
    submit(alliance, "TertiaryAMSP", "RPT-TA", NOV, outpatientVisits=120, referralsOut=3)
    submit(alliance, "SecondaryAMSP", "RPT-SA", NOV, outpatientVisits=80, referralsIn=5)
    submit(alliance, "SecondaryBMSP", "RPT-SB", NOV, sharedExaminations=0, referralsOut=2)
    submit(alliance, "TertiaryBMSP", "RPT-TB-OCT", OCT, outpatientVisits=7)  # another month
    submit(alliance, "SecondaryCMSP", "RPT-SC", NOV, outpatientVisits=1000)  # another district
    result = alliance.call(
        "DistrictHCMSP", "reviewer", "reporting", "AggregateReports", "AGG-D", NOV
    )
    assert result.status == 200, result.message
    expected = {
        "reportId": "AGG-D",
        "period": NOV,
        "submitter": "DistrictHCMSP",
        "level": "regulator",
        "recipient": "CityHCMSP",
        "metrics": {
            "outpatientVisits": 200,
            "referralsIn": 5,
            "referralsOut": 5,
            "sharedExaminations": 0,
        },
        "sources": ["RPT-SA", "RPT-SB", "RPT-TA"],
        "submittedAt": "2025-11-28T12:00:06.000Z",
        "txId": "tx00006",
    }
    assert json.loads(result.payload) == expected
    assert event_of(result) == (
        "ReportAggregated",
        {
            "reportId": "AGG-D",
            "period": NOV,
            "submitter": "DistrictHCMSP",
            "recipient": "CityHCMSP",
            "sources": ["RPT-SA", "RPT-SB", "RPT-TA"],
        },
    )
    assert alliance.ok("CityHCMSP", "auditor", "reporting", "ReportsTo", "CityHCMSP", NOV) == [
        expected
    ]


def test_an_aggregate_is_summed_again_one_level_up(
    alliance: Alliance, monkeypatch: pytest.MonkeyPatch
) -> None:
    # OtherHC as a sub-district of DistrictHC: SecondaryC → OtherHC → DistrictHC → CityHC.
    monkeypatch.setitem(
        ORGS, "OtherHCMSP", Organization("OtherHCMSP", "regulator", parent="DistrictHCMSP")
    )
    submit(alliance, "SecondaryCMSP", "RPT-SC", NOV, outpatientVisits=1000, referralsIn=1)
    submit(alliance, "TertiaryAMSP", "RPT-TA", NOV, outpatientVisits=120)
    other = alliance.ok("OtherHCMSP", "reviewer", "reporting", "AggregateReports", "AGG-O", NOV)
    assert (other["recipient"], other["sources"]) == ("DistrictHCMSP", ["RPT-SC"])
    district = alliance.ok(
        "DistrictHCMSP", "reviewer", "reporting", "AggregateReports", "AGG-D", NOV
    )
    assert district["sources"] == ["AGG-O", "RPT-TA"]
    assert district["metrics"] == {"outpatientVisits": 1120, "referralsIn": 1}
    assert alliance.ok("CityHCMSP", "auditor", "reporting", "GetReport", "RPT-SC")["txId"]


@pytest.mark.parametrize(
    ("msp_id", "role", "args", "status", "message"),
    [
        pytest.param(
            "DistrictHCMSP",
            "auditor",
            ["AGG-2", NOV],
            403,
            "role reviewer required, caller has auditor",
            id="only a reviewer aggregates",
        ),
        pytest.param(
            "TertiaryAMSP",
            "reviewer",
            ["AGG-2", NOV],
            403,
            "TertiaryAMSP is a tertiary organisation, not a regulator",
            id="only a regulator aggregates",
        ),
        pytest.param(
            "CityHCMSP",
            "reviewer",
            ["AGG-2", NOV],
            412,
            "CityHCMSP has no parent regulator to report to",
            id="the city has nobody to report to",
        ),
        pytest.param(
            "DistrictHCMSP",
            "reviewer",
            ["AGG-2", "2026-12"],
            412,
            "no reports to DistrictHCMSP for 2026-12",
            id="there is nothing to aggregate in a month without reports",
        ),
        pytest.param(
            "DistrictHCMSP",
            "reviewer",
            ["AGG-2", NOV],
            409,
            "report AGG-D for 2026-11 already exists",
            id="a district aggregates once per period",
        ),
        pytest.param(
            "OtherHCMSP",
            "reviewer",
            ["RPT-TA", NOV],
            409,
            "report RPT-TA already exists",
            id="an aggregate cannot take a report's id",
        ),
        pytest.param(
            "OtherHCMSP",
            "reviewer",
            ["AGG-O", "11-2026"],
            400,
            "period must be YYYY-MM (e.g. 2026-11), not '11-2026'",
            id="an aggregate's period is checked",
        ),
        pytest.param(
            "OtherHCMSP",
            "reviewer",
            ["AGG/O", NOV],
            400,
            "report id 'AGG/O' may use letters, digits and ._- (1-64)",
            id="an aggregate's id is checked",
        ),
    ],
)
def test_aggregate_refusals(
    filed: Alliance, msp_id: str, role: str, args: list[str], status: int, message: str
) -> None:
    assert filed.refused(msp_id, role, "reporting", "AggregateReports", *args) == (
        status,
        message,
    )


def test_a_district_aggregates_only_what_was_addressed_to_it(filed: Alliance) -> None:
    other = filed.ok("OtherHCMSP", "reviewer", "reporting", "AggregateReports", "AGG-O", NOV)
    assert (other["metrics"], other["sources"]) == ({"outpatientVisits": 1000}, ["RPT-SC"])
    district = filed.ok("CityHCMSP", "auditor", "reporting", "GetReport", "AGG-D")
    assert district["metrics"] == {"outpatientVisits": 200, "referralsIn": 5, "referralsOut": 3}


# --- who sees what --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msp_id", "report_id", "visible"),
    [
        pytest.param("TertiaryAMSP", "RPT-TA", True, id="a hospital sees its own report"),
        pytest.param("DistrictHCMSP", "RPT-TA", True, id="the district sees its hospital's"),
        pytest.param("CityHCMSP", "RPT-TA", True, id="the city sees a hospital's report"),
        pytest.param("TertiaryBMSP", "RPT-TA", False, id="a hospital cannot see another's"),
        pytest.param("OtherHCMSP", "RPT-TA", False, id="another district cannot see it"),
        pytest.param("SecondaryCMSP", "RPT-SC", True, id="other district's hospital sees its own"),
        pytest.param("DistrictHCMSP", "RPT-SC", False, id="a district cannot see another's"),
        pytest.param("DistrictHCMSP", "AGG-D", True, id="the district sees its aggregate"),
        pytest.param("CityHCMSP", "AGG-D", True, id="the city sees the aggregate"),
        pytest.param("OtherHCMSP", "AGG-D", False, id="another district cannot see it either"),
        pytest.param("TertiaryAMSP", "AGG-D", False, id="a hospital cannot see the aggregate"),
    ],
)
def test_get_report_visibility(filed: Alliance, msp_id: str, report_id: str, visible: bool) -> None:
    role = "auditor" if msp_id.endswith("HCMSP") else "doctor"
    if visible:
        report = filed.ok(msp_id, role, "reporting", "GetReport", report_id)
        assert report["reportId"] == report_id
    else:
        assert filed.refused(msp_id, role, "reporting", "GetReport", report_id) == (
            403,
            f"{msp_id} is neither a party to report {report_id} nor their regulator",
        )


def test_get_report_refuses_unknown_and_malformed_ids(filed: Alliance) -> None:
    get = ("CityHCMSP", "auditor", "reporting", "GetReport")
    assert filed.refused(*get, "NOPE") == (404, "report NOPE does not exist")
    assert filed.refused(*get, "") == (400, "report id '' may use letters, digits and ._- (1-64)")


def test_reports_to_a_regulator_by_report_id(filed: Alliance) -> None:
    ta = filed.ok("TertiaryAMSP", "clerk", "reporting", "GetReport", "RPT-TA")
    sa = filed.ok("SecondaryAMSP", "clerk", "reporting", "GetReport", "RPT-SA")
    agg = filed.ok("DistrictHCMSP", "auditor", "reporting", "GetReport", "AGG-D")
    to_district = ("reporting", "ReportsTo", "DistrictHCMSP", NOV)
    assert filed.ok("DistrictHCMSP", "auditor", *to_district) == [sa, ta]
    assert filed.ok("CityHCMSP", "auditor", *to_district) == [sa, ta]
    assert filed.ok("CityHCMSP", "auditor", "reporting", "ReportsTo", "CityHCMSP", NOV) == [agg]
    assert (
        filed.ok("DistrictHCMSP", "auditor", "reporting", "ReportsTo", "DistrictHCMSP", OCT) == []
    )


@pytest.mark.parametrize(
    ("msp_id", "args", "status", "message"),
    [
        pytest.param(
            "OtherHCMSP",
            ["DistrictHCMSP", NOV],
            403,
            "OtherHCMSP is neither a party to the reports to DistrictHCMSP nor their regulator",
            id="a district cannot list another district's reports",
        ),
        pytest.param(
            "TertiaryAMSP",
            ["DistrictHCMSP", NOV],
            403,
            "TertiaryAMSP is neither a party to the reports to DistrictHCMSP nor their regulator",
            id="a hospital cannot list its district's reports",
        ),
        pytest.param(
            "DistrictHCMSP",
            ["CityHCMSP", NOV],
            403,
            "DistrictHCMSP is neither a party to the reports to CityHCMSP nor their regulator",
            id="a district cannot list the city's reports",
        ),
        pytest.param(
            "CityHCMSP",
            ["TertiaryAMSP", NOV],
            400,
            "TertiaryAMSP is a tertiary organisation, not a regulator",
            id="reports go only to regulators",
        ),
        pytest.param(
            "CityHCMSP",
            ["NobodyMSP", NOV],
            404,
            "NobodyMSP is not a member of channel alliance",
            id="the regulator must be a channel member",
        ),
        pytest.param(
            "CityHCMSP",
            ["DistrictHCMSP", ""],
            400,
            "period must be YYYY-MM (e.g. 2026-11), not ''",
            id="ReportsTo needs a period",
        ),
    ],
)
def test_reports_to_refusals(
    filed: Alliance, msp_id: str, args: list[str], status: int, message: str
) -> None:
    assert filed.refused(msp_id, "auditor", "reporting", "ReportsTo", *args) == (status, message)


def test_reports_of_a_submitter_by_period_then_id(filed: Alliance) -> None:
    october = submit(filed, "TertiaryAMSP", "ZZ-OCT", OCT, outpatientVisits=90)
    november = filed.ok("TertiaryAMSP", "clerk", "reporting", "GetReport", "RPT-TA")
    of_ta = ("reporting", "ReportsOf", "TertiaryAMSP")
    assert filed.ok("TertiaryAMSP", "doctor", *of_ta, "") == [october, november]
    assert filed.ok("CityHCMSP", "auditor", *of_ta, "") == [october, november]
    assert filed.ok("DistrictHCMSP", "auditor", *of_ta, NOV) == [november]
    assert filed.ok("DistrictHCMSP", "auditor", *of_ta, "2026-12") == []
    aggregate = filed.ok("CityHCMSP", "auditor", "reporting", "GetReport", "AGG-D")
    of_district = ("reporting", "ReportsOf", "DistrictHCMSP", "")
    assert filed.ok("CityHCMSP", "auditor", *of_district) == [aggregate]


@pytest.mark.parametrize(
    ("msp_id", "args", "status", "message"),
    [
        pytest.param(
            "TertiaryBMSP",
            ["TertiaryAMSP", ""],
            403,
            "TertiaryBMSP is neither a party to the reports of TertiaryAMSP nor their regulator",
            id="a hospital cannot list another hospital's reports",
        ),
        pytest.param(
            "OtherHCMSP",
            ["TertiaryAMSP", NOV],
            403,
            "OtherHCMSP is neither a party to the reports of TertiaryAMSP nor their regulator",
            id="a district cannot list another district's hospital's reports",
        ),
        pytest.param(
            "TertiaryAMSP",
            ["DistrictHCMSP", ""],
            403,
            "TertiaryAMSP is neither a party to the reports of DistrictHCMSP nor their regulator",
            id="a hospital cannot list its district's aggregates",
        ),
        pytest.param(
            "CityHCMSP",
            ["NobodyMSP", ""],
            404,
            "NobodyMSP is not a member of channel alliance",
            id="the submitter must be a channel member",
        ),
        pytest.param(
            "CityHCMSP",
            ["TertiaryAMSP", "2026-1"],
            400,
            "period must be YYYY-MM (e.g. 2026-11), not '2026-1'",
            id="a given period is checked",
        ),
    ],
)
def test_reports_of_refusals(
    filed: Alliance, msp_id: str, args: list[str], status: int, message: str
) -> None:
    role = "auditor" if msp_id.endswith("HCMSP") else "doctor"
    assert filed.refused(msp_id, role, "reporting", "ReportsOf", *args) == (status, message)


# --- concurrency ----------------------------------------------------------------------------------


def _rwsets(result: SimulationResult) -> list[tuple[str, kv_rwset_pb2.KVRWSet]]:
    tx = rwset_pb2.TxReadWriteSet.FromString(result.rwset)
    return [(ns.namespace, kv_rwset_pb2.KVRWSet.FromString(ns.rwset)) for ns in tx.ns_rwset]


def _written(result: SimulationResult) -> set[tuple[str, str]]:
    return {(ns, w.key) for ns, kv in _rwsets(result) for w in kv.writes}


def _conflicts(first: SimulationResult, second: SimulationResult) -> bool:
    """Would `second` fail MVCC validation (a key read or a range phantom) after `first`?"""
    written = _written(first)
    for ns, kv in _rwsets(second):
        if any((ns, r.key) in written for r in kv.reads):
            return True
        for rq in kv.range_queries_info:
            if any(n == ns and rq.start_key <= k < rq.end_key for n, k in written):
                return True
    return False


@pytest.mark.parametrize(
    ("first", "second", "conflict"),
    [
        pytest.param(
            ("TertiaryAMSP", "R1", NOV),
            ("TertiaryBMSP", "R2", NOV),
            False,
            id="two hospitals reporting for one month never conflict",
        ),
        pytest.param(
            ("TertiaryAMSP", "R1", OCT),
            ("TertiaryAMSP", "R2", NOV),
            False,
            id="one hospital reporting for two months never conflicts",
        ),
        pytest.param(
            ("TertiaryAMSP", "R1", NOV),
            ("TertiaryAMSP", "R2", NOV),
            True,
            id="one hospital reporting twice for one month conflicts",
        ),
    ],
)
def test_which_submissions_conflict(
    alliance: Alliance,
    first: tuple[str, str, str],
    second: tuple[str, str, str],
    conflict: bool,
) -> None:
    def simulate(msp_id: str, report_id: str, period: str) -> SimulationResult:
        args = ("SubmitReport", report_id, period, '{"outpatientVisits": 1}')
        result = alliance.call(msp_id, "clerk", "reporting", *args, commit=False)
        assert result.status == 200, result.message
        return result

    a, b = simulate(*first), simulate(*second)  # both endorsed on the same state
    assert (_conflicts(a, b), _conflicts(b, a)) == (conflict, conflict)
    if not conflict:
        assert len(_written(a)) == len(_written(b)) == 3  # report, reportby, reportto
        assert not _written(a) & _written(b)


@pytest.mark.parametrize(
    ("hospital", "period", "conflict"),
    [
        pytest.param("TertiaryBMSP", NOV, True, id="a report for the aggregated month conflicts"),
        pytest.param("TertiaryBMSP", OCT, False, id="a report for another month does not"),
        pytest.param("SecondaryCMSP", NOV, False, id="a report to another district does not"),
    ],
)
def test_a_report_committed_during_aggregation(
    alliance: Alliance, hospital: str, period: str, conflict: bool
) -> None:
    submit(alliance, "TertiaryAMSP", "RPT-TA", NOV, outpatientVisits=1)
    aggregate = alliance.call(
        "DistrictHCMSP", "reviewer", "reporting", "AggregateReports", "AGG-D", NOV, commit=False
    )
    report = alliance.call(
        hospital, "clerk", "reporting", "SubmitReport", "LATE", period, '{"a": 1}', commit=False
    )
    assert aggregate.status == report.status == 200
    # the aggregate's range read sees the late report (phantom), so it cannot silently omit it
    assert _conflicts(report, aggregate) == conflict
