"""Benefit-sharing v2 through the hospital's JSON API and settlement page, on the demo alliance:
the demo agreement's statement lists each entry with its rule and transaction and a digest; both
clerks sign the month (API and page form; the page then shows it closed); a third hospital, a second signature and a
declaration the terms have no share for are refused; v2 terms proposed through the API show in
words, and bad v2 terms are refused naming the field."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from tests.web.conftest import StaffClient
from tests.web.test_hospital_sharing import API, post

MONTH = dt.datetime.now(dt.UTC).strftime("%Y-%m")


def demo_agreement(clerk: StaffClient) -> str:
    (active,) = [a for a in clerk.get(f"{API}/agreements").json() if a["status"] == "ACTIVE"]
    return str(active["agreement_id"])


def statement_of(client: StaffClient, agreement_id: str) -> Any:
    return client.get(f"{API}/agreements/{agreement_id}/statement", params={"period": MONTH}).json()


def test_both_clerks_sign_the_month_and_others_are_refused(
    client_as: Callable[[str], StaffClient],
) -> None:
    clerk_a, clerk_b = client_as("clerk.secondarya"), client_as("clerk.tertiarya")
    agreement_id = demo_agreement(clerk_a)
    before = statement_of(clerk_a, agreement_id)
    assert {e["rule"] for e in before["entries"]} == {"flat"}
    assert all(e["txId"] for e in before["entries"])
    assert (len(before["digest"]), before["signatures"], before["closed"]) == (64, {}, False)

    no_share = post(clerk_b, f"/agreements/{agreement_id}/declare",
                    {"referral_id": before["entries"][0]["referralId"], "amount_cents": 100})  # fmt: skip
    assert no_share.status_code == 409
    assert "has no UP share" in no_share.json()["message"]
    sign = f"/agreements/{agreement_id}/statement/sign?period={MONTH}"
    assert post(client_as("clerk.secondaryb"), sign).status_code == 403
    assert post(clerk_a, sign).status_code == 200
    assert post(clerk_a, sign).status_code == 409
    # The partner signs through the page's form.
    signed = clerk_b.post_form(f"/hospital/settlement/agreements/{agreement_id}/sign", {"period": MONTH})  # fmt: skip
    assert signed.status_code == 200, signed.text[:300]  # type: ignore[attr-defined]
    after = statement_of(clerk_b, agreement_id)
    assert (after["closed"], sorted(after["signatures"])) == (True, ["SecondaryAMSP", "TertiaryAMSP"])  # fmt: skip
    assert after["digest"] == before["digest"]
    page = clerk_a.get("/hospital/settlement", params={"period": MONTH})
    assert page.status_code == 200
    assert after["digest"] in page.text


def test_v2_terms_through_the_api_show_in_words_and_bad_ones_name_the_field(
    client_as: Callable[[str], StaffClient],
) -> None:
    clerk = client_as("clerk.secondaryb")
    bad = post(clerk, "/agreements", {"partner": "TertiaryAMSP", "terms": {
        "version": 2, "shares": {"UP": {"basisPoints": 0, "payer": "target"}}}})  # fmt: skip
    assert bad.status_code == 400
    assert "terms.shares.UP.basisPoints" in bad.json()["message"]
    terms = {"version": 2, "shares": {"UP": {"basisPoints": 250, "payer": "target"}},
             "consultation": {"amountCents": 12000, "payer": "requester"}}  # fmt: skip
    assert (
        post(clerk, "/agreements", {"partner": "TertiaryAMSP", "terms": terms}).status_code == 200
    )
    (proposed,) = clerk.get(f"{API}/agreements").json()
    assert proposed["terms"] == (
        "UP: 2.5% of the declared amount, paid by the target; "
        "consultation: 120.00 paid by the requester"
    )


def test_the_page_declare_form_checks_the_amount_and_shows_the_contracts_refusal(
    client_as: Callable[[str], StaffClient],
) -> None:
    clerk = client_as("clerk.tertiarya")
    agreement_id = demo_agreement(clerk)
    referral_id = statement_of(clerk, agreement_id)["entries"][0]["referralId"]
    form = f"/hospital/settlement/agreements/{agreement_id}/declare"
    bad = clerk.post_form(form, {"referral_id": referral_id, "amount": "lots"})
    assert bad.status_code == 400  # type: ignore[attr-defined]
    assert "an amount like 1234.56" in bad.text  # type: ignore[attr-defined]
    refused = clerk.post_form(form, {"referral_id": referral_id, "amount": "1234.56"})
    assert refused.status_code == 409  # type: ignore[attr-defined]
    assert "has no UP share" in refused.text  # type: ignore[attr-defined]
