"""The operator's pages and API over the embedded demo: nodes, members, contracts, the block
explorer (equal to the ledger, never a patient's data) and membership votes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI

from medalliance.ledger.block import header_hash, transactions_filter
from medalliance.web.backend import WebBackend
from tests.web.conftest import StaffClient
from tests.web.staff_clients import logged_in

OPERATOR = "operator.tertiarya"


@pytest.fixture(scope="module")
def as_user(web_app: FastAPI) -> Iterator[Callable[[str], StaffClient]]:
    """A logged-in client per account, kept for the module."""
    yield from logged_in(web_app)


@pytest.fixture(scope="module")
def patient_data(web_backend: WebBackend) -> list[str]:
    """Names and identifiers (ID card numbers, record numbers, pseudonyms) of every patient in
    the demo hospitals' stores."""
    found: set[str] = set()
    for org in ("SecondaryHospitalA", "TertiaryHospitalA"):
        for patient in web_backend.store(org).search("Patient", {}):
            for name in patient.get("name", ()):
                found.add(name.get("text", ""))
                found.add(name.get("family", "") + "".join(name.get("given", ())))
            found.update(i["value"] for i in patient.get("identifier", ()))
    found.discard("")
    assert found, "the demo stores hold no patient"
    return sorted(found)


def test_the_block_explorer_shows_the_ledgers_hashes_and_codes(
    as_user: Callable[[str], StaffClient], web_backend: WebBackend
) -> None:
    operator = as_user(OPERATOR)
    blocks = list(web_backend.network.blocks("TertiaryAMSP", 0, None))
    for raw in (blocks[0], blocks[-1]):
        number = int(raw.header.number)
        view = operator.get(f"/api/v1/operator/blocks/{number}").json()
        assert view["header_hash"] == header_hash(raw.header).hex()
        assert view["data_hash"] == bytes(raw.header.data_hash).hex()
        assert view["previous_hash"] == bytes(raw.header.previous_hash).hex()
        codes = transactions_filter(raw)
        assert [t["validation_code"] for t in view["transactions"]] == [
            "VALID" if c == 0 else str(c) for c in codes
        ]
        page = operator.get(f"/operator/blocks/{number}").text
        assert f'data-testid="header-hash">{view["header_hash"]}<' in page
    last = operator.get(f"/api/v1/operator/blocks/{len(blocks) - 1}").json()
    assert last["certificate_round"] == 0
    assert len(last["signatures"]) >= 3  # a BFT quorum of the four consenters
    assert last["transactions"][0]["function"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        pytest.param("/api/v1/operator/blocks/999999", 404, id="a block past the end is not found"),
        pytest.param("/api/v1/operator/blocks/-1", 404, id="a negative block is not found"),
        pytest.param("/api/v1/operator/blocks/x", 422, id="a block that is not a number is refused"),
        pytest.param("/api/v1/operator/blocks?count=1000", 422, id="a huge page is refused"),
    ],
)  # fmt: skip
def test_the_explorer_refuses_what_is_not_there(
    as_user: Callable[[str], StaffClient], path: str, status: int
) -> None:
    assert as_user(OPERATOR).get(path).status_code == status


def test_no_operator_page_shows_a_patients_name_or_id_number(
    as_user: Callable[[str], StaffClient], web_backend: WebBackend, patient_data: list[str]
) -> None:
    operator = as_user(OPERATOR)
    height = operator.get("/api/v1/operator/blocks?count=1").json()["height"]
    pages = ["/operator/nodes", "/operator/members", "/operator/contracts", "/operator/votes",
             "/operator/blocks", *(f"/operator/blocks/{n}" for n in range(height))]  # fmt: skip
    for path in pages:
        page = operator.get(path)
        assert page.status_code == 200, path
        for value in patient_data:
            assert value not in page.text, f"{path} shows patient data"


def test_nodes_members_and_contracts(as_user: Callable[[str], StaffClient]) -> None:
    operator = as_user(OPERATOR)
    nodes = operator.get("/api/v1/operator/nodes").json()
    assert {n["organization"] for n in nodes if n["role"] == "peer"} == {
        "CityHCMSP", "DistrictHCMSP", "TertiaryAMSP", "TertiaryBMSP", "SecondaryAMSP",
        "SecondaryBMSP",
    }  # fmt: skip
    members = operator.get("/api/v1/operator/members").json()
    assert len(members["members"]) == 6
    assert len(members["consenters"]) == 4
    contracts = {c["name"]: c for c in operator.get("/api/v1/operator/contracts").json()}
    assert {"referral", "report", "records", "alarm"} <= set(contracts)
    assert contracts["referral"]["sequence"] == 1
    assert contracts["referral"]["endorsement_policy"] == (  # a commission and a hospital
        "AND(OR('CityHCMSP.peer', 'DistrictHCMSP.peer'), OR('TertiaryAMSP.peer', 'TertiaryBMSP.peer'))"
    )


def test_a_membership_vote_is_proposed_signed_once_per_organisation(
    as_user: Callable[[str], StaffClient], web_backend: WebBackend
) -> None:
    a, b = as_user(OPERATOR), as_user("operator.tertiaryb")
    proposed = a.post("/api/v1/operator/votes", json={"change": "remove-org", "target": "SecondaryBMSP"},
                      headers={"X-CSRF-Token": a.csrf_token})  # fmt: skip
    assert proposed.status_code == 200, proposed.text
    vote_id = proposed.json()["vote_id"]
    a.post_form(f"/operator/votes/{vote_id}/sign")
    again = a.post_form(f"/operator/votes/{vote_id}/sign")
    assert again.status_code == 409  # type: ignore[attr-defined]
    signed = b.post(
        f"/api/v1/operator/votes/{vote_id}/sign", headers={"X-CSRF-Token": b.csrf_token}
    )
    assert signed.json()["signers"] == ["Admin@TertiaryAMSP", "Admin@TertiaryBMSP"]
    # The embedded demo's ordering stage applies no configuration update: a clear refusal.
    refused = a.post_form(f"/operator/votes/{vote_id}/submit")
    assert refused.status_code == 503  # type: ignore[attr-defined]
    members = a.get("/api/v1/operator/members").json()["members"]
    assert "SecondaryBMSP" in {m["msp_id"] for m in members}
    stored = web_backend.layout.directory / "web" / "votes" / f"{vote_id}.json"
    assert len(json.loads(stored.read_text())["signatures"]) == 2


@pytest.mark.parametrize(
    ("username", "path"),
    [
        pytest.param("reviewer.districthc", "/operator/blocks", id="a commission reviewer"),
        pytest.param("auditor.cityhc", "/api/v1/operator/blocks/1", id="a commission auditor"),
        pytest.param("doctor.secondarya", "/operator/nodes", id="a hospital doctor"),
        pytest.param("clerk.tertiaryb", "/api/v1/operator/votes", id="a hospital clerk"),
    ],
)
def test_only_an_operator_opens_the_operator_pages(
    as_user: Callable[[str], StaffClient], username: str, path: str
) -> None:
    assert as_user(username).get(path).status_code == 403


def test_a_vote_with_a_bad_change_or_target_is_refused_and_nothing_is_stored(
    as_user: Callable[[str], StaffClient], web_backend: WebBackend
) -> None:
    operator = as_user(OPERATOR)
    folder = web_backend.layout.directory / "web" / "votes"
    before = sorted(folder.glob("*.json")) if folder.exists() else []
    for form in ({"change": "drop-table", "target": "X"}, {"change": "remove-org", "target": "NoSuchMSP"},
                 {"change": "remove-org", "target": "../../x"}):  # fmt: skip
        answer = operator.post_form("/operator/votes", form)
        assert answer.status_code in (400, 404), form  # type: ignore[attr-defined]
        assert re.search(r'data-testid="error"', answer.text)  # type: ignore[attr-defined]
    after = sorted(folder.glob("*.json")) if folder.exists() else []
    assert after == before
