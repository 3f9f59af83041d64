"""The auditor role, enforced: audit queries answer auditors and reviewers of the supervising
commission chain only, proven by their own certificate and key, never by a claimed name.

The alliance here is the demo alliance plus a second district commission (West) under the city,
with a hospital of its own: West's auditor is a commission outside the chain of the demo's
hospitals."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import yaml

from medalliance.app.alliance_network import EmbeddedAlliance
from medalliance.app.audit_index import AuditIndex
from medalliance.app.audit_queries import (
    AuditDenied,
    AuditQueries,
    authenticate,
    supervised_hospitals,
)
from medalliance.app.referral_demo import run_referral
from medalliance.database_url import parse_database_url
from medalliance.errors import ContractError, PermissionDenied
from medalliance.identity import CertificateAuthority
from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.config import NetworkConfig
from medalliance.node.embedded import EmbeddedNetwork
from tests.networks import DEMO_ALLIANCE

DISTRICT, CITY, WEST = "DistrictHCMSP", "CityHCMSP", "WestDistrictHCMSP"


def two_district_config() -> NetworkConfig:
    raw = yaml.safe_load(DEMO_ALLIANCE.read_text())
    raw["organizations"] += [
        {"name": "WestDistrictHC", "msp_id": WEST, "domain": "westhc.example.com",
         "type": "regulator", "parent": "CityHC",
         "peers": [{"name": "peer0", "host": "127.0.0.1", "port": 7651}],
         "users": [{"name": "Auditor1", "role": "auditor"}]},
        {"name": "SecondaryHospitalW", "msp_id": "SecondaryWMSP", "domain": "secw.example.com",
         "type": "secondary", "regulator": "WestDistrictHC",
         "peers": [{"name": "peer0", "host": "127.0.0.1", "port": 7751}],
         "users": [{"name": "User1", "role": "doctor"}]},
    ]  # fmt: skip
    return NetworkConfig.model_validate(raw)


@dataclass
class Audited:
    layout: NetworkLayout
    index: AuditIndex
    alliance: EmbeddedAlliance


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Audited]:
    """A referral workflow on the two-district alliance, indexed by the district's peer."""
    directory = tmp_path_factory.mktemp("roles") / "net"
    with EmbeddedNetwork.open(two_district_config(), directory) as network:
        alliance = EmbeddedAlliance(network, "alliance")
        run_referral(alliance, lambda step: None)
        index = AuditIndex(parse_database_url(str(directory / "audit.db")), "alliance")
        index.catch_up(alliance.blocks(DISTRICT, 0, None))
        yield Audited(network.layout, index, alliance)
        index.close()
        alliance.close()


def queries(audited: Audited, org: str, user: str) -> AuditQueries:
    layout = audited.layout
    return AuditQueries(audited.index, layout.config, authenticate(layout, org, user))


@pytest.mark.parametrize(
    ("org", "user"),
    [(DISTRICT, "Auditor1"), (DISTRICT, "Reviewer1"), (CITY, "Auditor1"), (CITY, "Reviewer1")],
    ids=["the district's auditor gets answers", "the district's reviewer gets answers",
         "the city's auditor gets answers about its district's hospitals",
         "the city's reviewer gets answers about its district's hospitals"],
)  # fmt: skip
def test_the_supervising_chain_gets_answers(audited: Audited, org: str, user: str) -> None:
    found = queries(audited, org, user).referrals()
    assert [(r.direction, r.status) for r in found] == [("UP", "COMPLETED"), ("DOWN", "COMPLETED")]


@pytest.mark.parametrize(
    ("org", "user", "message"),
    [("SecondaryHospitalA", "User1", "is doctor of a secondary"),
     ("TertiaryHospitalA", "Clerk1", "is clerk of a tertiary"),
     ("DistrictHC", "Admin", "without a role of a regulator"),
     ("DistrictHC", "User1", "without a role of a regulator")],
    ids=["a hospital doctor is refused", "a hospital clerk is refused",
         "the commission's admin (no audit role) is refused",
         "a commission user without the auditor role is refused"],
)  # fmt: skip
def test_members_without_an_audit_role_are_refused(
    audited: Audited, org: str, user: str, message: str
) -> None:
    with pytest.raises(AuditDenied, match=message):
        queries(audited, org, user)


def test_another_districts_auditor_sees_none_of_these_hospitals(
    audited: Audited,
) -> None:
    west = queries(audited, WEST, "Auditor1")
    assert west.hospitals == ("SecondaryWMSP",)
    assert west.referrals() == []
    assert west.access() == []
    assert west.rejections() == []
    assert all(
        f.value in ("0", "", "0.00") for f in west.indicators(dt.date.today().strftime("%Y-%m"))
    )


def test_a_claimed_user_without_its_own_certificate_is_refused(
    audited: Audited,
) -> None:
    with pytest.raises(AuditDenied, match="no certificate and key of user Auditor9"):
        queries(audited, DISTRICT, "Auditor9")


def test_an_auditors_certificate_with_another_key_is_refused(
    audited: Audited,
) -> None:
    layout = audited.layout
    real = layout.user_msp_dir(DISTRICT, "Auditor1")
    forged = layout.user_msp_dir(DISTRICT, "Mallory")
    shutil.copytree(layout.user_msp_dir(DISTRICT, "Reviewer1"), forged)
    for cert in (forged / "signcerts").iterdir():
        cert.write_bytes(next((real / "signcerts").iterdir()).read_bytes())
    try:
        with pytest.raises(PermissionDenied):
            queries(audited, DISTRICT, "Mallory")
    finally:
        shutil.rmtree(forged.parent)


def test_a_certificate_from_a_foreign_ca_claiming_the_auditor_role_is_refused(
    audited: Audited,
) -> None:
    layout = audited.layout
    now = dt.datetime.now(dt.UTC)
    ca = CertificateAuthority.create("ca.districthc.example.com", "districthc.example.com", now=now)
    issued = ca.issue("Auditor2@districthc.example.com", node_ou="client", now=now,
                      alliance_role="auditor")  # fmt: skip
    forged = layout.user_msp_dir(DISTRICT, "Auditor2")
    (forged / "signcerts").mkdir(parents=True)
    (forged / "keystore").mkdir()
    (forged / "signcerts" / "cert.pem").write_bytes(issued.cert_pem)
    (forged / "keystore" / "priv_sk").write_bytes(issued.key_pem)
    try:
        with pytest.raises(PermissionDenied, match="DistrictHCMSP"):
            queries(audited, DISTRICT, "Auditor2")
    finally:
        shutil.rmtree(forged.parent)


def test_naming_a_hospital_outside_the_chain_is_refused(
    audited: Audited,
) -> None:
    west = queries(audited, WEST, "Auditor1")
    for ask in (lambda: west.referrals(from_org="SecondaryAMSP"),
                lambda: west.access(org="TertiaryAMSP")):  # fmt: skip
        with pytest.raises(AuditDenied, match=r"does not supervise (SecondaryAMSP|TertiaryAMSP)"):
            ask()


def test_supervision_follows_the_regulator_hierarchy(
    audited: Audited,
) -> None:
    config = audited.layout.config
    district = supervised_hospitals(config, DISTRICT)
    assert district == ("SecondaryAMSP", "SecondaryBMSP", "TertiaryAMSP", "TertiaryBMSP")
    assert supervised_hospitals(config, CITY) == tuple(sorted((*district, "SecondaryWMSP")))


# --- the contracts' own traces: ReferralHistory and AccessLog ------------------------------------

TRACE_CALLERS = [
    # organisation, user, what the trace answers ("refused: ..." for a 403)
    ("DistrictHC", "Auditor1", "2 referrals"),
    ("DistrictHC", "Reviewer1", "2 referrals"),
    ("CityHC", "Auditor1", "2 referrals"),
    ("SecondaryHospitalA", "User1", "2 referrals"),
    ("DistrictHC", "User1", "refused: role auditor or reviewer required"),
    ("DistrictHC", "Admin", "refused: role auditor or reviewer required"),
    ("WestDistrictHC", "Auditor1", "0 referrals"),
]


@pytest.mark.parametrize(
    ("org", "user", "answer"),
    TRACE_CALLERS,
    ids=[f"ReferralHistory asked by {u}@{o}: {a}" for o, u, a in TRACE_CALLERS],
)
def test_referral_history_needs_the_audit_role_of_a_commission(
    audited: Audited, org: str, user: str, answer: str
) -> None:
    visit = audited.index.facts(["visit.registered"])[0].subject
    call = lambda: audited.alliance.evaluate(org, user, "referral", "ReferralHistory", visit)  # noqa: E731
    if answer.startswith("refused: "):
        with pytest.raises(ContractError, match=answer.removeprefix("refused: ")):
            call()
    else:
        assert f"{len(json.loads(call()))} referrals" == answer


ACCESS_CALLERS = [
    ("DistrictHC", "Auditor1", "answered"),
    ("CityHC", "Reviewer1", "answered"),
    ("SecondaryHospitalA", "User1", "answered"),  # the record's owner
    ("DistrictHC", "User1", "refused: role auditor or reviewer required"),
    ("TertiaryHospitalA", "User1", "refused: is for SecondaryAMSP and its regulators"),
    ("WestDistrictHC", "Auditor1", "refused: is for SecondaryAMSP and its regulators"),
]


@pytest.mark.parametrize(
    ("org", "user", "answer"),
    ACCESS_CALLERS,
    ids=[f"AccessLog asked by {u}@{o}: {a}" for o, u, a in ACCESS_CALLERS],
)
def test_a_records_access_log_is_for_its_owner_and_the_commissions_auditors(
    audited: Audited, org: str, user: str, answer: str
) -> None:
    record = next(
        f.subject
        for f in audited.index.facts(["record.shared"])
        if f.attribute("org") == "SecondaryAMSP"
    )
    call = lambda: audited.alliance.evaluate(org, user, "records", "AccessLog", record)  # noqa: E731
    if answer.startswith("refused: "):
        with pytest.raises(ContractError, match=answer.removeprefix("refused: ")):
            call()
    else:
        assert [e["action"] for e in json.loads(call())] == ["decrypt"]


# --- the other regulator reads: a commission reads through its auditors and reviewers -----------

REGULATOR_READS = ("GetReferral", "ReferralsByHospital", "GetApplication", "ApplicationsForVisit",
                   "ReportsTo")  # fmt: skip
_ROLE = "refused: role auditor or reviewer required"
_STRANGER = "refused: is neither a party"
READ_CALLERS = [
    # organisation, user, function, answer ("answered", "empty" or "refused: <message>")
    *[("DistrictHC", "Auditor1", f, "answered") for f in REGULATOR_READS],
    *[("DistrictHC", "Reviewer1", f, "answered") for f in REGULATOR_READS],
    *[("CityHC", "Auditor1", f, "answered") for f in REGULATOR_READS],
    *[("DistrictHC", "Admin", f, _ROLE) for f in REGULATOR_READS],
    *[("DistrictHC", "User1", f, _ROLE) for f in REGULATOR_READS],
    *[("CityHC", "Admin", f, _ROLE) for f in REGULATOR_READS],
    *[("SecondaryHospitalA", "User1", f, "answered") for f in REGULATOR_READS[:4]],
    ("SecondaryHospitalA", "User1", "ReportsTo", _STRANGER),
    ("SecondaryHospitalB", "User1", "GetReferral", _STRANGER),
    ("SecondaryHospitalB", "User1", "GetApplication", _STRANGER),
    ("SecondaryHospitalB", "User1", "ApplicationsForVisit", "empty"),
    ("WestDistrictHC", "Auditor1", "GetReferral", _STRANGER),
    ("WestDistrictHC", "Auditor1", "ReferralsByHospital", _STRANGER),
    ("WestDistrictHC", "Auditor1", "ReportsTo", _STRANGER),
]


def _read_args(audited: Audited, function: str) -> tuple[str, ...]:
    """The contract and arguments of one regulator read over the audited workflow's ids."""
    referral = audited.index.facts(["referral.created"])[0]
    application = audited.index.facts(["application.submitted"])[0]
    visit = audited.index.facts(["visit.registered"])[0].subject
    return {
        "GetReferral": ("referral", referral.subject),
        "ReferralsByHospital": ("referral", referral.attribute("from_hospital"), "outgoing", ""),
        "GetApplication": ("report", application.subject),
        "ApplicationsForVisit": ("report", visit),
        "ReportsTo": ("reporting", DISTRICT, dt.date.today().strftime("%Y-%m")),
    }[function]


@pytest.mark.parametrize(
    ("org", "user", "function", "answer"),
    READ_CALLERS,
    ids=[f"{f} asked by {u}@{o}: {a}" for o, u, f, a in READ_CALLERS],
)
def test_regulator_reads_answer_parties_and_the_commissions_auditors_and_reviewers(
    audited: Audited, org: str, user: str, function: str, answer: str
) -> None:
    contract, *args = _read_args(audited, function)
    assert audited.index.facts(["referral.created"])[0].attribute("from_hospital") == (
        "SecondaryAMSP"
    )  # the party of the table
    blocks_before = len(list(audited.alliance.blocks(DISTRICT, 0, None)))
    call = lambda: audited.alliance.evaluate(org, user, contract, function, *args)  # noqa: E731
    if answer.startswith("refused: "):
        with pytest.raises(ContractError, match=answer.removeprefix("refused: ")) as refused:
            call()
        assert refused.value.status_code == 403
    elif function == "ReportsTo":
        assert json.loads(call()) == []  # the demo files no report; the caller may ask
    else:
        assert (json.loads(call()) != []) == (answer == "answered")
    # A read writes nothing: the ledger is as long as before.
    assert len(list(audited.alliance.blocks(DISTRICT, 0, None))) == blocks_before
