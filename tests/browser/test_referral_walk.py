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
