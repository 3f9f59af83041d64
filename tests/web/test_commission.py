"""The commission's pages and API over the embedded demo (one alliance for the module): the
reviewer's queue and decisions, the auditor's trace, rules, alarms and indicators, and what
hostile or careless callers get — a clear refusal, and nothing changed on the ledger."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI

from medalliance.web.backend import WebBackend
from tests.web.conftest import StaffClient
from tests.web.staff_clients import logged_in

DISTRICT, CITY, A, B = "DistrictHCMSP", "CityHCMSP", "SecondaryAMSP", "TertiaryBMSP"
HX = {"HX-Request": "true"}


@dataclass(frozen=True)
class Pending:
    approve: str
    reject: str
    other: str  # left pending for the hostile tests
    visit: str


def _evaluate(
    backend: WebBackend, org: str, user: str, contract: str, fn: str, *args: str
) -> object:
    return json.loads(backend.network.evaluate(org, user, contract, fn, *args))


def _application(backend: WebBackend, application_id: str) -> dict[str, str]:
    found = _evaluate(backend, DISTRICT, "Reviewer1", "report", "GetApplication", application_id)
    assert isinstance(found, dict)
    return found


def _height(backend: WebBackend) -> int:
    return len(list(backend.network.blocks(DISTRICT, 0, None)))


@pytest.fixture(scope="module")
def as_user(web_app: FastAPI) -> Iterator[Callable[[str], StaffClient]]:
    """A logged-in client per account, kept for the module."""
    yield from logged_in(web_app)


@pytest.fixture(scope="module")
def demo_visit(web_backend: WebBackend) -> tuple[str, str]:
    """The demo's visit (back at SecondaryA after the return referral) and its summary record."""
    visits = _evaluate(web_backend, DISTRICT, "Reviewer1", "visit", "PatientsAt", A)
    assert isinstance(visits, list)
    visit = visits[0]["visitNo"]
    applications = _evaluate(
        web_backend, DISTRICT, "Auditor1", "report", "ApplicationsForVisit", visit
    )
    assert isinstance(applications, list)
    return visit, applications[0]["summaryRef"]


@pytest.fixture(scope="module")
def pending(web_backend: WebBackend, demo_visit: tuple[str, str]) -> Pending:
    """Three applications of SecondaryA waiting for DistrictHC's review."""
    visit, summary = demo_visit
    ids = Pending("APP-WEB-APPROVE", "APP-WEB-REJECT", "APP-WEB-OTHER", visit)
    for application_id in (ids.approve, ids.reject, ids.other):
        web_backend.network.submit(
            A, "User1", "report", "SubmitApplication", application_id, visit, B, summary
        )
    return ids


def _row(html: str, application_id: str) -> str:
    match = re.search(rf'<tr id="application-{application_id}".*?</tr>', html, re.DOTALL)
    assert match, f"no row of {application_id}"
    return match.group(0)


def test_the_reviewer_sees_the_queue_and_approves_with_the_block_shown(
    as_user: Callable[[str], StaffClient], web_backend: WebBackend, pending: Pending
) -> None:
    reviewer = as_user("reviewer.districthc")
    page = reviewer.get("/commission/queue")
    assert page.status_code == 200
    row = _row(page.text, pending.approve)
    assert f'id="approve-{pending.approve}"' in row
    assert f'id="reject-{pending.approve}"' in row
    assert pending.visit in row
    decided = reviewer.post_form(f"/commission/applications/{pending.approve}/review",
                                 {"decision": "APPROVED"}, headers=HX)  # fmt: skip
    assert decided.status_code == 200  # type: ignore[attr-defined]
    committed = re.search(r'data-tx-id="([0-9a-f]{64})" data-block="(\d+)"', decided.text)  # type: ignore[attr-defined]
    assert committed, decided.text  # type: ignore[attr-defined]
    application = _application(web_backend, pending.approve)
    assert application["status"] == "APPROVED"
    assert application["reviewTxId"] == committed.group(1)
    # A live refresh of the rows keeps the decision, with its transaction, in view.
    rows = reviewer.get("/commission/queue/rows").text
    assert f'data-application-id="{pending.approve}" data-decision="APPROVED"' in rows
    assert committed.group(1) in rows
    block = next(
        iter(web_backend.network.blocks(DISTRICT, int(committed.group(2)), int(committed.group(2))))
    )
    assert committed.group(1) in {tx.tx_id for tx in _txs(block)}


def test_the_reviewer_rejects_with_a_reason_and_a_sealed_note_through_the_api(
    as_user: Callable[[str], StaffClient], web_backend: WebBackend, pending: Pending
) -> None:
    reviewer = as_user("reviewer.districthc")
    answer = reviewer.post(
        f"/api/v1/commission/applications/{pending.reject}/review",
        json={"decision": "REJECTED", "reason_code": "TARGET_NO_CAPACITY", "note": "无床位"},
        headers={"X-CSRF-Token": reviewer.csrf_token},
    )
    assert answer.status_code == 200, answer.text
    decision = answer.json()
    application = _application(web_backend, pending.reject)
    assert (application["status"], application["reasonCode"]) == ("REJECTED", "TARGET_NO_CAPACITY")
    assert application["noteRef"] == decision["note_ref"]
    assert application["reviewTxId"] == decision["tx_id"]
    assert "无床位" not in json.dumps(application, ensure_ascii=False)  # sealed, not on the chain


@pytest.mark.parametrize(
    ("username", "form", "status"),
    [
        pytest.param("auditor.cityhc", {"decision": "APPROVED"}, 403, id="an auditor cannot approve"),
        pytest.param("reviewer.cityhc", {"decision": "APPROVED"}, 403,
                     id="the city's reviewer cannot decide its district's application"),
        pytest.param("doctor.secondarya", {"decision": "APPROVED"}, 403,
                     id="the applicant's doctor cannot approve its own application"),
        pytest.param("operator.districthc", {"decision": "APPROVED"}, 403,
                     id="the commission's operator cannot approve"),
        pytest.param("reviewer.districthc", {"decision": "REJECTED"}, 400,
                     id="a rejection without a reason code is refused"),
        pytest.param("reviewer.districthc", {"decision": "MAYBE"}, 400,
                     id="a decision that is neither approve nor reject is refused"),
        pytest.param("reviewer.districthc", {"decision": "REJECTED", "reason_code": "OTHER"}, 400,
                     id="reason OTHER without a note is refused"),
    ],
)  # fmt: skip
def test_a_decision_not_allowed_is_refused_and_changes_nothing(
    as_user: Callable[[str], StaffClient],
    web_backend: WebBackend,
    pending: Pending,
    username: str,
    form: dict[str, str],
    status: int,
) -> None:
    before = _height(web_backend)
    answer = as_user(username).post_form(f"/commission/applications/{pending.other}/review", form)
    assert answer.status_code == status  # type: ignore[attr-defined]
    assert _application(web_backend, pending.other)["status"] == "SUBMITTED"
    assert _height(web_backend) == before


@pytest.mark.parametrize(
    ("application_id", "status", "says"),
    [
        pytest.param("APP-FORGED-404", 404, "no application APP-FORGED-404",
                     id="a forged application id is not in the queue"),
        pytest.param("../../etc", 404, "", id="a path in the id is refused"),
        pytest.param("APP WITH SPACES", 400, "letters, digits", id="a malformed id is refused"),
    ],
)  # fmt: skip
def test_a_forged_application_id_gets_a_clear_refusal_and_changes_nothing(
    as_user: Callable[[str], StaffClient],
    web_backend: WebBackend,
    application_id: str,
    status: int,
    says: str,
) -> None:
    reviewer = as_user("reviewer.districthc")
    before = _height(web_backend)
    answer = reviewer.post(
        f"/api/v1/commission/applications/{application_id}/review",
        json={"decision": "APPROVED"},
        headers={"X-CSRF-Token": reviewer.csrf_token},
    )
    assert answer.status_code == status
    assert says in answer.text
    assert _height(web_backend) == before


def test_a_decided_application_cannot_be_decided_again(
    as_user: Callable[[str], StaffClient], web_backend: WebBackend, pending: Pending
) -> None:
    reviewer = as_user("reviewer.districthc")
    reviewer.post_form(
        f"/commission/applications/{pending.approve}/review", {"decision": "APPROVED"}
    )
    before = _height(web_backend)
    again = reviewer.post_form(f"/commission/applications/{pending.approve}/review",
                               {"decision": "REJECTED", "reason_code": "DUPLICATE"})  # fmt: skip
    assert again.status_code == 409  # type: ignore[attr-defined]
    assert "already APPROVED" in again.text  # type: ignore[attr-defined]
    assert _height(web_backend) == before


def test_a_form_without_its_csrf_token_decides_nothing(
    as_user: Callable[[str], StaffClient], web_backend: WebBackend, pending: Pending
) -> None:
    reviewer = as_user("reviewer.districthc")
    refused = reviewer.post(f"/commission/applications/{pending.other}/review",
                            data={"decision": "APPROVED"})  # fmt: skip
    assert refused.status_code == 403
    assert _application(web_backend, pending.other)["status"] == "SUBMITTED"


@pytest.mark.parametrize(
    ("username", "home"),
    [
        pytest.param(
            "reviewer.districthc", "/commission/queue", id="a reviewer starts at the queue"
        ),
        pytest.param("auditor.cityhc", "/commission/trace", id="an auditor starts at the trace"),
    ],
)
def test_each_commission_role_starts_at_its_page(
    as_user: Callable[[str], StaffClient], username: str, home: str
) -> None:
    client = as_user(username)
    first = client.get("/", follow_redirects=False).headers["location"]
    assert client.get(first, follow_redirects=False).headers["location"] == home


def test_the_city_reviewer_sees_its_districts_queue_but_has_nothing_to_decide(
    as_user: Callable[[str], StaffClient], pending: Pending
) -> None:
    queue = as_user("reviewer.cityhc").get("/api/v1/commission/queue").json()
    mine = [i for i in queue["items"] if i["application_id"] == pending.other]
    assert mine
    assert not any(i["decidable"] for i in queue["items"])
    page = as_user("reviewer.cityhc").get("/commission/queue").text
    assert 'data-testid="approve"' not in page
    assert 'data-testid="queue-empty"' in page  # nothing for the city itself to review
    watched = as_user("reviewer.cityhc").get("/commission/queue/rows?part=watched").text
    assert f'data-application-id="{pending.other}"' in watched


@pytest.mark.parametrize(
    "username",
    [
        pytest.param("doctor.secondarya", id="a hospital doctor"),
        pytest.param("clerk.tertiaryb", id="a hospital clerk"),
        pytest.param("operator.cityhc", id="the city's operator"),
    ],
)
@pytest.mark.parametrize(
    "path",
    ["/commission/queue", "/commission/trace", "/commission/alarms", "/api/v1/commission/queue",
     "/api/v1/commission/access"],
)  # fmt: skip
def test_anyone_but_a_commission_reviewer_or_auditor_gets_403(
    as_user: Callable[[str], StaffClient], username: str, path: str
) -> None:
    assert as_user(username).get(path).status_code == 403


EXPECTED_KINDS = {
    "visit.registered", "application.submitted", "application.reviewed", "application.used",
    "referral.created", "referral.accepted", "referral.completed", "settlement.entry",
    "record.shared", "record.accessed",
}  # fmt: skip


def test_the_auditor_traces_the_demo_visit_with_every_step_in_its_block(
    as_user: Callable[[str], StaffClient], web_backend: WebBackend, demo_visit: tuple[str, str]
) -> None:
    auditor = as_user("auditor.cityhc")
    page = auditor.post_form("/commission/trace", {"query": demo_visit[0]})
    assert page.status_code == 200  # type: ignore[attr-defined]
    steps = re.findall(r'data-testid="trace-step" data-kind="([a-z._]+)" data-block="(\d+)" '
                       r'data-tx-id="([0-9a-f]{64})"', page.text)  # type: ignore[attr-defined]  # fmt: skip
    assert {kind for kind, _, _ in steps} >= EXPECTED_KINDS
    assert [k for k, _, _ in steps].count("referral.created") == 2  # up, and back down
    for _, number, tx_id in steps:
        block = next(iter(web_backend.network.blocks(CITY, int(number), int(number))))
        assert tx_id in {tx.tx_id for tx in _txs(block)}


def test_a_pseudonym_traces_the_same_visit(
    as_user: Callable[[str], StaffClient], web_backend: WebBackend, demo_visit: tuple[str, str]
) -> None:
    visit = _evaluate(web_backend, DISTRICT, "Auditor1", "visit", "GetVisit", demo_visit[0])
    assert isinstance(visit, dict)
    auditor = as_user("auditor.districthc")
    headers = {"X-CSRF-Token": auditor.csrf_token}
    by_visit = auditor.post(
        "/api/v1/commission/trace", json={"query": demo_visit[0]}, headers=headers
    )
    by_ref = auditor.post(
        "/api/v1/commission/trace", json={"query": visit["patientRef"]}, headers=headers
    )
    assert by_ref.status_code == 200
    assert demo_visit[0] in by_ref.json()["visits"]
    visit_steps = {s["tx_id"] for s in by_visit.json()["steps"]}
    assert visit_steps <= {s["tx_id"] for s in by_ref.json()["steps"]}


@pytest.mark.parametrize(
    ("query", "status"),
    [
        pytest.param("V-NOT-A-VISIT", 404, id="an unknown visit is not found"),
        pytest.param("0123456789abcdef0123", 404, id="an unknown pseudonym is not found"),
        pytest.param("V 1; DROP TABLE", 400, id="a malformed query is refused"),
        pytest.param("", 422, id="an empty query is refused"),
    ],
)
def test_a_trace_of_nothing_known_says_so(
    as_user: Callable[[str], StaffClient], query: str, status: int
) -> None:
    auditor = as_user("auditor.cityhc")
    answer = auditor.post("/api/v1/commission/trace", json={"query": query},
                          headers={"X-CSRF-Token": auditor.csrf_token})  # fmt: skip
    assert answer.status_code == status


def test_the_reviewer_sets_the_downward_rule_and_an_auditor_cannot(
    as_user: Callable[[str], StaffClient], web_backend: WebBackend
) -> None:
    def rule() -> str:
        found = _evaluate(web_backend, A, "User1", "report", "DownwardRule", A)
        assert isinstance(found, dict)
        return str(found["rule"])

    refused = as_user("auditor.districthc").post_form("/commission/rules/downward",
                                                        {"rule": "APPROVAL_REQUIRED"})  # fmt: skip
    assert refused.status_code == 403  # type: ignore[attr-defined]
    assert rule() == "NO_APPROVAL"
    page = as_user("reviewer.districthc").post_form("/commission/rules/downward",
                                                      {"rule": "APPROVAL_REQUIRED"})  # fmt: skip
    assert page.status_code == 200  # type: ignore[attr-defined]
    assert 'data-testid="committed"' in page.text  # type: ignore[attr-defined]
    assert rule() == "APPROVAL_REQUIRED"


def test_alarms_are_acknowledged_and_closed_with_a_note_by_the_raising_chain(
    as_user: Callable[[str], StaffClient], web_backend: WebBackend
) -> None:
    web_backend.network.submit(DISTRICT, "Auditor1", "alarm", "RaiseAlarm", "ALM-WEB-1",
                               "network.change", "1", "MEDIUM", '["alliance"]', "[]", "")  # fmt: skip
    doctor = as_user("doctor.secondarya")
    assert doctor.post_form("/commission/alarms/ALM-WEB-1/acknowledge").status_code == 403  # type: ignore[attr-defined]
    city = as_user("auditor.cityhc")
    listed = city.get("/api/v1/commission/alarms?status=OPEN").json()
    assert [a["alarm_id"] for a in listed] == ["ALM-WEB-1"]
    acked = city.post("/api/v1/commission/alarms/ALM-WEB-1/acknowledge", json={},
                      headers={"X-CSRF-Token": city.csrf_token})  # fmt: skip
    assert acked.json()["status"] == "ACKNOWLEDGED"
    no_note = city.post_form("/commission/alarms/ALM-WEB-1/close", {"note": " "})
    assert no_note.status_code == 400  # type: ignore[attr-defined]
    closed = as_user("reviewer.districthc").post_form("/commission/alarms/ALM-WEB-1/close",
                                                        {"note": "planned change"})  # fmt: skip
    assert 'data-testid="committed"' in closed.text  # type: ignore[attr-defined]
    alarm = _evaluate(web_backend, DISTRICT, "Auditor1", "alarm", "GetAlarm", "ALM-WEB-1")
    assert isinstance(alarm, dict)
    assert [h["status"] for h in alarm["history"]] == ["OPEN", "ACKNOWLEDGED", "CLOSED"]
    rows = city.get("/commission/alarms/rows").text  # what a live event swaps in
    assert 'data-alarm-id="ALM-WEB-1" data-status="CLOSED"' in rows


def test_indicators_charts_and_the_signed_report(
    as_user: Callable[[str], StaffClient], web_backend: WebBackend
) -> None:
    auditor = as_user("auditor.districthc")
    page = auditor.get("/commission/indicators")
    assert page.status_code == 200
    period = re.search(r'name="period" id="indicators-period" value="([0-9-]{7})"', page.text)
    assert period
    assert 'data-chart-url="/api/v1/commission/charts/volumes' in page.text
    chart = auditor.get(f"/api/v1/commission/charts/volumes?until={period.group(1)}").json()
    assert sum(chart["series"][0]["data"]) >= 1  # the demo's upward referral
    report = auditor.get(f"/api/v1/commission/report?period={period.group(1)}&format=json")
    assert report.status_code == 200
    assert report.json()["signer"]["mspId"] == DISTRICT
    assert auditor.get("/api/v1/commission/report?period=2026-13").status_code == 422
    pdf = auditor.get(f"/commission/report?period={period.group(1)}&format=pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")


def _txs(block: object) -> list[object]:
    from medalliance.ledger.tx import parse_envelope

    return [parse_envelope(bytes(d)) for d in block.data.data]  # type: ignore[attr-defined]


def test_reports_go_up_the_hierarchy_only_by_a_district_reviewer(
    as_user: Callable[[str], StaffClient], web_backend: WebBackend
) -> None:
    period = "2026-10"
    web_backend.network.submit(A, "Clerk1", "reporting", "SubmitReport", "RPT-WEB-A", period,
                               '{"referralsUp": 3}')  # fmt: skip
    district = as_user("reviewer.districthc")
    listed = district.get(f"/api/v1/commission/reports?period={period}").json()
    assert [r["report_id"] for r in listed["reports"]] == ["RPT-WEB-A"]
    assert listed["parent"] == CITY
    before = _height(web_backend)
    for username in ("auditor.districthc", "reviewer.cityhc"):  # not a reviewer; no parent
        refused = as_user(username).post_form("/commission/reports/aggregate", {"period": period})
        assert refused.status_code == 403  # type: ignore[attr-defined]
    assert _height(web_backend) == before
    done = district.post_form("/commission/reports/aggregate", {"period": period})
    assert 'data-testid="committed"' in done.text  # type: ignore[attr-defined]
    city = as_user("auditor.cityhc").get(f"/api/v1/commission/reports?period={period}").json()
    assert [(r["submitter"], r["metrics"], r["sources"]) for r in city["reports"]] == [
        (DISTRICT, {"referralsUp": 3}, ["RPT-WEB-A"])
    ]


def test_deadline_rules_are_published_by_a_reviewer(
    as_user: Callable[[str], StaffClient], web_backend: WebBackend
) -> None:
    form = {"review_hours": "24", "accept_hours": "12", "complete_days": "20"}
    assert (
        as_user("auditor.districthc").post_form("/commission/rules/deadlines", form).status_code
        == 403
    )  # type: ignore[attr-defined]
    bad = as_user("reviewer.districthc").post_form("/commission/rules/deadlines",
                                                   {**form, "review_hours": "0"})  # fmt: skip
    assert bad.status_code == 422  # type: ignore[attr-defined]
    as_user("reviewer.districthc").post_form("/commission/rules/deadlines", form)
    rules = as_user("auditor.districthc").get("/api/v1/commission/deadline-rules").json()
    assert (
        rules["version"],
        rules["review_hours"],
        rules["accept_hours"],
        rules["complete_days"],
    ) == (1, 24, 12, 20)


def test_a_refused_click_shows_the_refusal_in_its_row(
    as_user: Callable[[str], StaffClient], pending: Pending
) -> None:
    reviewer = as_user("reviewer.districthc")
    reviewer.post_form(
        f"/commission/applications/{pending.approve}/review", {"decision": "APPROVED"}
    )
    again = reviewer.post_form(f"/commission/applications/{pending.approve}/review",
                               {"decision": "APPROVED"}, headers=HX)  # fmt: skip
    assert again.status_code == 200  # type: ignore[attr-defined]  # htmx swaps only 2xx
    assert 'data-testid="refused-row"' in again.text  # type: ignore[attr-defined]
    assert "already APPROVED" in again.text  # type: ignore[attr-defined]
