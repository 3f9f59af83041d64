"""The commission's alarm runner on the embedded demo alliance after a full referral workflow:
the workflow raises nothing, an application left unreviewed past its deadline (the network's
clock moved on) raises one alarm on the chain, and restarts — with or without the checkpoint —
raise nothing twice."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.integration.audit.conftest import REGULATOR
from tests.networks import DEMO_ALLIANCE

from medalliance.app.alarm_checkpoint import AlarmCheckpoint
from medalliance.app.alarm_runner import AlarmRunner, RunReport
from medalliance.app.alliance_network import EmbeddedAlliance
from medalliance.audit.integrity import Finding
from medalliance.database_url import parse_database_url
from medalliance.node.config import load_network_config
from medalliance.node.embedded import EmbeddedNetwork

SA, TA = "SecondaryAMSP", "TertiaryAMSP"
PATIENT = "5e" * 16


@dataclass
class Clock:
    """The network's clock, moved by the test: transaction times are what deadlines count."""

    now: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Scene:
    alliance: EmbeddedAlliance
    clock: Clock
    directory: Path


@pytest.fixture
def scene(workflow_template: Path, tmp_path: Path) -> Iterator[Scene]:
    shutil.copytree(workflow_template, tmp_path / "net")
    clock = Clock(dt.datetime.now(dt.UTC))
    config = load_network_config(DEMO_ALLIANCE)
    with EmbeddedNetwork.open(config, tmp_path / "net", clock=clock) as network:
        alliance = EmbeddedAlliance(network, "alliance")
        yield Scene(alliance, clock, tmp_path)
        alliance.close()


def run(scene: Scene, checkpoint: str = "alarms.db") -> RunReport:
    url = parse_database_url(str(scene.directory / checkpoint))
    store = AlarmCheckpoint(url, "alliance")
    try:
        return AlarmRunner(scene.alliance, REGULATOR, "Auditor1", store).run()
    finally:
        store.close()


def alarms_on_chain(scene: Scene) -> list[dict[str, object]]:
    raw = scene.alliance.evaluate(REGULATOR, "Auditor1", "alarm", "AlarmsByStatus", "")
    found: list[dict[str, object]] = json.loads(raw)
    return found


def submit_application(scene: Scene, app_id: str) -> str:
    a = scene.alliance
    a.submit(SA, "User1", "visit", "RegisterVisit", f"V-{app_id}", PATIENT, SA)
    a.submit(SA, "User1", "records", "RegisterRecord", f"R-{app_id}", PATIENT, "ab" * 32, "[]",
             json.dumps([TA]))  # fmt: skip
    done = a.submit(SA, "User1", "report", "SubmitApplication", app_id, f"V-{app_id}", TA,
                    f"R-{app_id}")  # fmt: skip
    return done.tx_id


def test_the_workflow_raises_nothing_and_the_checkpoint_reaches_the_height(scene: Scene) -> None:
    report = run(scene)
    assert (report.raised, report.already, report.ignored) == ([], 0, 0)
    height = scene.alliance.network.peers[0].channel("alliance").height
    assert report.last_block == height - 1
    assert alarms_on_chain(scene) == []


def test_an_unreviewed_application_raises_once_across_restarts(scene: Scene) -> None:
    submitted = submit_application(scene, "APP-LATE")
    assert run(scene).raised == []  # within its 48 hours
    scene.clock.now += dt.timedelta(hours=49)
    scene.alliance.submit(SA, "User1", "visit", "RegisterVisit", "V-TICK", PATIENT, SA)  # a block

    first = run(scene)
    assert [(r.rule_id, r.subjects) for r in first.raised] == [
        ("application.review_overdue", ("APP-LATE",))
    ]
    (alarm,) = alarms_on_chain(scene)
    assert (alarm["alarmId"], alarm["status"], alarm["raisedBy"]) == (
        first.raised[0].alarm_id, "OPEN", REGULATOR,
    )  # fmt: skip
    assert alarm["triggers"] == [submitted]

    restarted = run(scene)  # the same checkpoint: nothing new
    assert (restarted.raised, restarted.already) == ([], 1)
    lost = run(scene, "another-checkpoint.db")  # the chain refuses the same alarm id
    assert (lost.raised, lost.already) == ([], 1)
    assert len(alarms_on_chain(scene)) == 1


def test_a_referral_not_accepted_in_time_is_escalated_to_the_parent_commission(
    scene: Scene,
) -> None:
    a = scene.alliance
    a.submit(TA, "User1", "visit", "RegisterVisit", "V-DOWN", PATIENT, TA)
    a.submit(TA, "User1", "records", "RegisterRecord", "R-DOWN", PATIENT, "ab" * 32, "[]",
             json.dumps([SA]))  # fmt: skip
    referred = a.submit(TA, "User1", "referral", "Refer", "REF-DOWN", "", "V-DOWN", TA, SA,
                        "DOWN", "R-DOWN")  # fmt: skip
    referral = json.loads(referred.payload)
    assert referral["deadline"] > referral["referredAt"]  # the contract's own deadline: 24 h
    scene.clock.now += dt.timedelta(hours=25)
    late = a.evaluate(REGULATOR, "Auditor1", "referral", "OverdueReferrals", REGULATOR,
                      scene.clock.now.isoformat())  # fmt: skip
    assert [r["referralId"] for r in json.loads(late)] == ["REF-DOWN"]
    a.submit(SA, "User1", "visit", "RegisterVisit", "V-TICK", PATIENT, SA)  # a later block

    (raised,) = run(scene).raised
    assert (raised.rule_id, raised.subjects) == ("referral.accept_overdue", ("REF-DOWN",))
    (alarm,) = alarms_on_chain(scene)
    assert (alarm["escalateTo"], alarm["severity"]) == ("CityHCMSP", "HIGH")
    city = a.evaluate("CityHCMSP", "Auditor1", "alarm", "AlarmsByStatus", "OPEN")
    assert [x["alarmId"] for x in json.loads(city)] == [raised.alarm_id]


def test_the_runner_frees_a_slot_held_past_the_acceptance_deadline(scene: Scene) -> None:
    a = scene.alliance
    a.submit(SA, "User1", "resource", "PublishResource", "OP-1", SA, "OUTPATIENT", "clinic",
             json.dumps(["2030-01-10T09:00"]))  # fmt: skip
    a.submit(TA, "User1", "visit", "RegisterVisit", "V-HOLD", PATIENT, TA)
    a.submit(TA, "User1", "records", "RegisterRecord", "R-HOLD", PATIENT, "ab" * 32, "[]",
             json.dumps([SA]))  # fmt: skip
    a.submit(TA, "User1", "referral", "ReferWithHold", "REF-HOLD", "", "V-HOLD", TA, SA, "DOWN",
             "R-HOLD", "OP-1", "2030-01-10T09:00")  # fmt: skip

    def sweep() -> list[str]:
        store = AlarmCheckpoint(parse_database_url(str(scene.directory / "sweep.db")), "alliance")
        try:
            runner = AlarmRunner(a, REGULATOR, "Auditor1", store, hold_sweep=True)
            runner.run()
            return [referral for referral, _ in runner.holds_released]
        finally:
            store.close()

    assert sweep() == []  # within its 24 hours
    scene.clock.now += dt.timedelta(hours=25)
    a.submit(SA, "User1", "visit", "RegisterVisit", "V-TICK", PATIENT, SA)  # a later block
    assert sweep() == ["REF-HOLD"]
    hold = json.loads(a.evaluate(SA, "User1", "resource", "GetHold", "REF-HOLD"))
    assert [h["status"] for h in hold["history"]] == ["HELD", "LAPSED"]
    assert sweep() == []  # nothing twice


def test_an_integrity_divergence_is_raised_once_while_it_lasts_and_again_when_it_returns(
    scene: Scene,
) -> None:
    """The monitor's findings (a source the runner reads) become `integrity.divergence` alarms:
    one per divergence across restarts, none while it lasts, a new one when it comes back."""
    peer = "peer0.secondaryb.example.com"
    findings: list[Finding] = []

    def diverging(height: int) -> None:
        findings[:] = [Finding("alliance", height, peer, "SecondaryBMSP", "state-hash",
                               "a" * 64, "b" * 64, ("p1", "p2", "p3"))]  # fmt: skip

    def run_with_monitor(*, known: bool = True) -> RunReport:
        store = AlarmCheckpoint(parse_database_url(str(scene.directory / "alarms.db")), "alliance")
        source = (lambda: list(findings)) if known else (lambda: None)
        try:
            return AlarmRunner(scene.alliance, REGULATOR, "Auditor1", store,
                               integrity=source).run()  # fmt: skip
        finally:
            store.close()

    assert run_with_monitor().raised == []  # no finding: nothing
    diverging(40)
    (first,) = run_with_monitor().raised
    assert (first.rule_id, first.subjects) == (
        "integrity.divergence", (peer, "SecondaryBMSP", "alliance", "height-40"))  # fmt: skip
    diverging(41)  # the same divergence, seen at the next height: not raised again
    assert run_with_monitor().raised == []
    assert run_with_monitor(known=False).raised == []  # the monitor unreadable: nothing ends
    assert run_with_monitor().raised == []
    findings.clear()  # the peer is repaired ...
    assert run_with_monitor().raised == []
    diverging(57)  # ... and diverges again later: a new finding
    (second,) = run_with_monitor().raised
    assert second.subjects[-1] == "height-57"
    on_chain = [a for a in alarms_on_chain(scene) if a["ruleId"] == "integrity.divergence"]
    assert sorted((a["alarmId"], a["severity"], a["escalateTo"]) for a in on_chain) == sorted(
        [(first.alarm_id, "CRITICAL", ""), (second.alarm_id, "CRITICAL", "")])  # fmt: skip
