"""The paper's referral (fig. 5) through the web pages of three organisations, in real Chromium
against one `medalliance demo --serve` process; plus the refusals a careless user meets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.browser.server import DemoServer


def test_a_wrong_password_is_refused_then_rate_limited(
    browser: Any, demo_server: DemoServer
) -> None:
    context = browser.new_context(base_url=demo_server.url, locale="en-US")
    page = context.new_page()
    page.goto("/login")
    for _ in range(5):
        page.fill("input[name=username]", "clerk.secondaryb")
        page.fill("input[name=password]", "not the password")
        page.click("form[action='/login'] button[type=submit]")
        assert "Wrong username or password" in page.inner_text("[role=alert]")
    page.fill("input[name=username]", "clerk.secondaryb")
    page.fill("input[name=password]", demo_server.logins["clerk.secondaryb"])
    page.click("form[action='/login'] button[type=submit]")
    assert "Too many failed logins" in page.inner_text("[role=alert]")
    assert page.url.endswith("/login")
    context.close()


def test_pages_load_their_scripts_under_the_csp(new_page: Callable[..., Any]) -> None:
    page = new_page("doctor.secondarya")
    assert page.evaluate("typeof htmx") == "object"
    assert page.evaluate("typeof echarts") == "object"
    assert page.page_errors == [] or all("404" in e for e in page.page_errors), page.page_errors


def _done(page: Any, testid: str) -> str:
    """The id a write's confirmation page shows, after checking it names its transaction and block."""
    page.wait_for_load_state()
    if page.locator("[data-testid=done-title]").count() == 0:
        shown = page.locator(".error, [role=alert], .field-error").all_inner_texts()
        raise AssertionError(f"no confirmation at {page.url}; the page says {shown}")
    assert page.inner_text("[data-testid=tx-id]").strip()
    assert page.inner_text("[data-testid=tx-block]").strip().isdigit()
    return str(page.inner_text(f"[data-testid={testid}]")).strip()


def test_the_referral_of_fig5_through_three_organisations(
    new_page: Callable[..., Any], demo_server: DemoServer
) -> None:
    doctor = new_page("doctor.secondarya")  # secondary hospital A
    tertiary = new_page("doctor.tertiarya")  # tertiary hospital B
    # B watches its incoming referrals before A refers: the new one must appear without reload.
    tertiary.goto("/hospital/incoming")
    tertiary.evaluate("window.__notReloaded = true")

    # A's doctor registers a visit of a patient of A's store and applies twice.
    doctor.goto("/hospital/patients")
    doctor.click("[data-testid=open-patient-sa-p1]")  # an example patient of A (examples/fhir)
    patient_url = doctor.url
    doctor.click("[data-testid=register-visit]")
    visit = _done(doctor, "visit-no")
    applications = []
    for purpose in ("PCI for acute myocardial infarction", "PCI, second application"):
        doctor.goto(f"{patient_url}/refer?visit={visit}")
        doctor.select_option("[data-testid=field-target]", "TertiaryAMSP")
        doctor.fill("[data-testid=field-diagnosis-code]", "I21.0")
        doctor.fill("[data-testid=field-diagnosis-display]", "Acute myocardial infarction")
        doctor.fill("[data-testid=field-purpose]", purpose)
        doctor.click("[data-testid=referral-apply]")
        applications.append(_done(doctor, "application-id"))
    rejected, approved = applications

    # The city commission's reviewer does not supervise A: nothing to decide, while they wait.
    city = new_page("reviewer.cityhc")
    city.goto("/commission/queue")
    city.locator("#review-queue [data-testid=queue-empty]").wait_for()
    assert city.locator("[data-testid=approve]").count() == 0
    assert city.locator("[data-testid=reject]").count() == 0

    # The district commission's reviewer rejects one and approves the other.
    reviewer = new_page("reviewer.districthc")
    reviewer.goto("/commission/queue")
    row = reviewer.locator(f"#application-{rejected}")
    row.locator("[data-testid=reason]").select_option(index=1)
    row.locator("[data-testid=reject]").click()
    reviewer.locator(
        f"#application-{rejected}[data-decision=REJECTED] [data-testid=committed]"
    ).wait_for()
    reviewer.locator(f"#application-{approved} [data-testid=approve]").click()
    decided = reviewer.locator(
        f"#application-{approved}[data-decision=APPROVED] [data-testid=committed]"
    )
    decided.wait_for()
    assert decided.get_attribute("data-block").isdigit()

    # A's doctor refers the patient with the approved application (the rejected one offers none).
    doctor.goto("/hospital/outgoing")
    assert doctor.locator(f"[data-testid=refer-{rejected}]").count() == 0
    doctor.click(f"[data-testid=refer-{approved}]")
    referral = _done(doctor, "referral-id")

    # B sees it arrive live (server-sent events → htmx refresh), then accepts and completes.
    tertiary.locator(f"[data-testid=incoming-row-{referral}]").wait_for(timeout=60_000)
    assert tertiary.evaluate("window.__notReloaded") is True
    tertiary.click(f"[data-testid=open-{referral}]")
    tertiary.click("[data-testid=accept]")
    _done(tertiary, "tx-id")
    tertiary.goto(f"/hospital/referrals/{referral}")
    tertiary.fill("[data-testid=feedback]", "PCI done, one stent, stable; rehabilitation at A")
    tertiary.click("[data-testid=complete]")
    _done(tertiary, "tx-id")
    tertiary.goto(f"/hospital/referrals/{referral}")
    assert tertiary.get_attribute("#referral", "data-status") == "COMPLETED"

    # ... and refers the patient back down to A.
    tertiary.click("[data-testid=refer-back]")
    tertiary.fill("[data-testid=field-purpose]", "Rehabilitation after PCI")
    tertiary.click("[data-testid=referral-apply]")
    down = _done(tertiary, "referral-id")
    assert down != referral

    # The city commission's auditor traces the visit: every step with its block.
    auditor = new_page("auditor.cityhc")
    auditor.goto("/commission/trace")
    auditor.fill("[data-testid=trace-query]", visit)
    auditor.click("[data-testid=trace-submit]")
    steps = auditor.locator("[data-testid=trace-step]")
    steps.first.wait_for()
    kinds = steps.evaluate_all("rows => rows.map(r => r.dataset.kind)")
    blocks = steps.evaluate_all("rows => rows.map(r => r.dataset.block)")
    assert all(b.isdigit() for b in blocks), blocks
    text = auditor.inner_text("[data-testid=trace-steps]")
    for shown in (rejected, approved, referral, down):
        assert shown in text, f"{shown} missing from the trace: {kinds}"

    # Another hospital cannot open the referral, as a page or through the API.
    other = new_page("doctor.secondaryb")
    response = other.goto(f"/hospital/referrals/{referral}")
    assert response.status in (403, 404)
    assert "PCI" not in other.content()
    api = other.request.get(f"/api/v1/hospital/referrals/{referral}")
    assert api.status in (403, 404)

    for page in (doctor, tertiary, reviewer, auditor):
        assert [e for e in page.page_errors if "Content Security Policy" in e] == []
