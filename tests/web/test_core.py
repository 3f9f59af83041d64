"""The web client's own routes over the embedded demo: login, sessions, CSRF, tokens, events."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from medalliance.web.backend import WebBackend
from tests.web.conftest import StaffClient, login


def test_login_sends_each_role_to_its_home(client_as: Callable[[str], StaffClient]) -> None:
    for username, home in [
        ("doctor.secondarya", "/hospital/"),
        ("reviewer.districthc", "/commission/"),
        ("operator.cityhc", "/operator/"),
    ]:
        client = client_as(username)
        response = client.get("/", follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, home)


def test_me_names_the_identity_the_account_signs_as(
    client_as: Callable[[str], StaffClient],
) -> None:
    me = client_as("clerk.tertiaryb").get("/api/v1/me").json()
    assert (me["organization"], me["msp_id"], me["identity"], me["role"]) == (
        "TertiaryHospitalB", "TertiaryBMSP", "Clerk1", "clerk",
    )  # fmt: skip
    assert me["csrf_token"]


def test_a_page_without_a_session_redirects_to_login(anonymous_client: TestClient) -> None:
    response = anonymous_client.get("/", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert anonymous_client.get("/api/v1/me").status_code == 401


def test_logout_ends_the_session(client_as: Callable[[str], StaffClient]) -> None:
    client = client_as("doctor.tertiarya")
    assert client.post_form("/logout", follow_redirects=False).status_code == 303  # type: ignore[attr-defined]
    assert client.get("/api/v1/me").status_code == 401


def test_a_bearer_token_acts_for_its_account(
    web_backend: WebBackend, anonymous_client: TestClient
) -> None:
    issued = web_backend.accounts.issue_token("clerk.secondarya", "HIS")
    me = anonymous_client.get("/api/v1/me", headers={"Authorization": f"Bearer {issued.token}"})
    assert me.json()["username"] == "clerk.secondarya"
    assert login(anonymous_client, "clerk.secondarya", "not the password").status_code == 401  # type: ignore[attr-defined]


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    client_as: Callable[[str], StaffClient], web_backend: WebBackend
) -> None:
    client = client_as("auditor.cityhc")
    before = web_backend.accounts.get("auditor.cityhc").language
    refused = client.post("/language", data={"language": "en" if before != "en" else "zh_CN"})
    assert refused.status_code == 403
    assert "security token" in refused.text
    assert web_backend.accounts.get("auditor.cityhc").language == before
    assert client.get("/api/v1/me").status_code == 200  # the session survives the refusal


def test_the_login_page_carries_a_strict_csp_and_no_inline_script(
    anonymous_client: TestClient,
) -> None:
    page = anonymous_client.get("/login")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "<script>" not in page.text
    assert " style=" not in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert 'lang="zh-CN"' in page.text
    assert "登录" in page.text


def test_a_reconnecting_event_stream_gets_what_its_organisation_missed(
    client_as: Callable[[str], StaffClient], web_backend: WebBackend
) -> None:
    """The demo's facts are in the hub (its blocks are published as they commit); a stream
    that says it saw event 0 gets the ones its organisation may see, and only those."""
    hub = web_backend.events
    for block in web_backend.network.blocks("CityHC", 0, None):
        hub.publish_block(block)
    expected = [e.seq for e in hub.visible_to("SecondaryAMSP")]
    assert expected, "the demo published nothing for SecondaryAMSP"
    assert len(expected) < len(hub.recent), "every event is visible to SecondaryAMSP"
    client = client_as("clerk.secondarya")
    seqs: list[int] = []
    with client.stream("GET", "/events", headers={"Last-Event-ID": "0"}) as stream:
        for line in stream.iter_lines():
            if line.startswith("id:"):
                seqs.append(int(line[3:]))
            if len(seqs) == len(expected):
                break
    assert seqs == expected
    assert all("SecondaryAMSP" in e.audience for e in hub.recent if e.seq in seqs)
