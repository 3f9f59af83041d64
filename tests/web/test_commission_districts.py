"""Two districts under one city: a district's commission reviews and traces only its own
hospitals. The demo alliance has one district (DistrictHC under CityHC), so this module adds a
second, District2HC, with no hospital of its own, and drives the commission services directly
over an embedded network (no web server needed to ask who may review what)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from medalliance.app.alliance_network import EmbeddedAlliance
from medalliance.app.audit_queries import AuditDenied
from medalliance.app.referral_demo import seal_note
from medalliance.errors import MedallianceError, PermissionDenied
from medalliance.node.config import NetworkConfig
from medalliance.node.embedded import EmbeddedNetwork
from medalliance.web.services import (
    commission_alarms,
    commission_audit,
    commission_review,
    commission_trace,
)
from tests.networks import DEMO_ALLIANCE

A, B, DISTRICT, DISTRICT2, CITY = (
    "SecondaryAMSP", "TertiaryBMSP", "DistrictHCMSP", "District2HCMSP", "CityHCMSP",
)  # fmt: skip
VISIT, APPLICATION, ALARM = "V-D2-1", "APP-D2-1", "ALM-D2-1"
PATIENT_REF = "5eed0123456789abcdef0123456789ab"


@dataclass(frozen=True)
class Staff:
    msp_id: str
    identity: str
    role: str


def _config() -> NetworkConfig:
    data = yaml.safe_load(DEMO_ALLIANCE.read_text(encoding="utf-8"))
    data["organizations"].append({
        "name": "District2HC", "msp_id": DISTRICT2, "domain": "district2hc.example.com",
        "type": "regulator", "parent": "CityHC",
        "peers": [{"name": "peer0", "host": "127.0.0.1", "port": 7651}],
        "users": [{"name": "Auditor1", "role": "auditor"}, {"name": "Reviewer1", "role": "reviewer"}],
    })  # fmt: skip
    return NetworkConfig.model_validate(data)


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedAlliance]:
    """SecondaryA's application, waiting for DistrictHC's review."""
    directory: Path = tmp_path_factory.mktemp("districts") / "net"
    with EmbeddedNetwork.open(_config(), directory) as network:
        alliance = EmbeddedAlliance(network, "alliance")
        alliance.submit(A, "User1", "visit", "RegisterVisit", VISIT, PATIENT_REF, A)
        seal_note(alliance, A, "User1", [B], "R-D2-1", PATIENT_REF, "summary", "chest pain")
        alliance.submit(A, "User1", "report", "SubmitApplication", APPLICATION, VISIT, B, "R-D2-1")
        alliance.submit(DISTRICT, "Auditor1", "alarm", "RaiseAlarm", ALARM, "network.change", "1",
                        "MEDIUM", '["alliance"]', "[]", "")  # fmt: skip
        yield alliance
        alliance.close()


def _status(alliance: EmbeddedAlliance) -> str:
    raw = alliance.evaluate(DISTRICT, "Reviewer1", "report", "GetApplication", APPLICATION)
    return str(json.loads(raw)["status"])


def _alarm(alliance: EmbeddedAlliance) -> str:
    raw = alliance.evaluate(DISTRICT, "Auditor1", "alarm", "GetAlarm", ALARM)
    return str(json.loads(raw)["status"])


def _height(alliance: EmbeddedAlliance) -> int:
    return len(list(alliance.blocks(DISTRICT, 0, None)))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def test_each_commission_sees_the_queue_of_its_own_chain(alliance: EmbeddedAlliance) -> None:
    own = commission_review.review_queue(alliance, Staff(DISTRICT, "Reviewer1", "reviewer"), _now())
    assert [(i.application_id, i.decidable) for i in own.items] == [(APPLICATION, True)]
    city = commission_review.review_queue(alliance, Staff(CITY, "Reviewer1", "reviewer"), _now())
    assert [(i.application_id, i.decidable) for i in city.items] == [(APPLICATION, False)]
    other = commission_review.review_queue(
        alliance, Staff(DISTRICT2, "Reviewer1", "reviewer"), _now()
    )
    assert other.items == ()


@pytest.mark.parametrize(
    ("call", "refusal"),
    [
        pytest.param(
            lambda a: commission_review.decide(
                a, Staff(DISTRICT2, "Reviewer1", "reviewer"),
                commission_review.ReviewInput(APPLICATION, "APPROVED"),
            ),
            commission_review.ApplicationNotFound,
            id="another district's reviewer cannot decide it: it is not in its queue",
        ),
        pytest.param(
            lambda a: commission_review.decide(
                a, Staff(CITY, "Reviewer1", "reviewer"),
                commission_review.ReviewInput(APPLICATION, "REJECTED", "DUPLICATE", "seen"),
            ),
            PermissionDenied,
            id="the city's reviewer cannot decide its district's application",
        ),
        pytest.param(
            lambda a: commission_trace.trace(a, Staff(DISTRICT2, "Auditor1", "auditor"), VISIT),
            commission_trace.VisitNotTraced,
            id="another district's auditor cannot trace the visit",
        ),
        pytest.param(
            lambda a: commission_audit.access_log(
                a, Staff(DISTRICT2, "Auditor1", "auditor"), org=A
            ),
            AuditDenied,
            id="another district's auditor cannot read the hospital's access log",
        ),
        pytest.param(
            lambda a: commission_alarms.act(
                a, Staff(DISTRICT2, "Reviewer1", "reviewer"),
                commission_alarms.AlarmAct(ALARM, "close", "not ours"),
            ),
            PermissionDenied,
            id="another district cannot close the district's alarm",
        ),
        pytest.param(
            lambda a: commission_review.review_queue(a, Staff(A, "User1", "reviewer"), _now()),
            AuditDenied,
            id="a hospital user claiming the reviewer role is refused",
        ),
    ],
)  # fmt: skip
def test_another_chain_is_refused_and_nothing_changes(
    alliance: EmbeddedAlliance, call: object, refusal: type[MedallianceError]
) -> None:
    before = _height(alliance)
    with pytest.raises(refusal):
        call(alliance)  # type: ignore[operator]
    assert _status(alliance) == "SUBMITTED"
    assert _alarm(alliance) == "OPEN"
    assert _height(alliance) == before


def test_the_city_traces_its_districts_visit(alliance: EmbeddedAlliance) -> None:
    found = commission_trace.trace(alliance, Staff(CITY, "Auditor1", "auditor"), VISIT)
    kinds = [s.kind for s in found.steps]
    assert kinds[:1] == ["visit.registered"]
    assert "application.submitted" in kinds


@pytest.mark.parametrize(
    ("hours_later", "overdue"),
    [
        pytest.param(1, False, id="an application within the 48 review hours is not overdue"),
        pytest.param(49, True, id="an application past the 48 review hours is overdue"),
    ],
)
def test_the_queue_marks_an_application_past_its_review_deadline(
    alliance: EmbeddedAlliance, hours_later: int, overdue: bool
) -> None:
    later = _now() + dt.timedelta(hours=hours_later)
    queue = commission_review.review_queue(alliance, Staff(DISTRICT, "Auditor1", "auditor"), later)
    (item,) = queue.items
    assert item.overdue is overdue
    assert item.deadline
    assert float(item.age_hours) >= hours_later - 0.1
