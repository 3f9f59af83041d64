"""A hostile or careless hospital cannot block another hospital's connector (issue 12).

Secondary hospital A refers patients up to tertiary hospital B on the embedded demo alliance.
Some of A's packages are at fault: sealed for someone else under B's name, not a clinical package
at all, another patient's data under the referred patient's pseudonym, or never handed over. B's
connector quarantines each with its reason, imports none of it, and still imports the valid
referral behind them; `retry` imports a quarantined referral once its cause is fixed and keeps
it (with the new attempt) while it is not. A peer B cannot reach stops the sync instead, and a
later run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from medalliance.app.alliance_network import EmbeddedAlliance, GatewayAlliance
from medalliance.app.connector import Connector
from medalliance.app.hospital_db import HospitalDatabase
from medalliance.app.packages import seal_package
from medalliance.app.pseudonyms import PseudonymClient, pseudonym_client
from medalliance.app.quarantine import PackageRefused
from medalliance.errors import NotFound, Unavailable
from medalliance.node.config import load_network_config
from medalliance.node.embedded import EmbeddedNetwork, utc_now
from medalliance.node.package_holding import Held
from medalliance.privacy.envelope import seal
from medalliance.privacy.keys import recipient_key
from tests.networks import DEMO_ALLIANCE

A, B, B2, C = "SecondaryAMSP", "TertiaryAMSP", "TertiaryBMSP", "DistrictHCMSP"
ID_NUMBER = "11010519491231002X"  # GB 11643's example number
OTHER_ID = "110101199003074514"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("alliance")
    EmbeddedNetwork.open(load_network_config(DEMO_ALLIANCE), directory).close()
    return directory


@pytest.fixture
def alliance(template: Path, tmp_path: Path) -> Iterator[EmbeddedAlliance]:
    shutil.copytree(template, tmp_path / "net")
    with EmbeddedNetwork.open(load_network_config(DEMO_ALLIANCE), tmp_path / "net") as network:
        alliance = EmbeddedAlliance(network, "alliance")
        yield alliance
        alliance.close()


def key(alliance: EmbeddedAlliance, org: str) -> PseudonymClient:
    return pseudonym_client(alliance, org, "User1")


def visit_data(alliance: EmbeddedAlliance, db: HospitalDatabase, visit: str, id_number: str) -> str:
    """A's patient with `id_number` and a visit of theirs; their pseudonym."""
    ref = key(alliance, A).pseudonym("resident-id", id_number)
    db.add_patient(ref, name="张三", sex="M", birth_date="1949-12-31", id_type="resident-id",
                   id_number=id_number)  # fmt: skip
    db.add_visit(visit, ref, "2026-11-29", diagnoses=[("I21.0", "STEMI")])
    return ref


def register(alliance: EmbeddedAlliance, visit: str, ref: str) -> None:
    alliance.submit(A, "User1", "visit", "RegisterVisit", visit, ref, A)


def refer(
    alliance: EmbeddedAlliance,
    visit: str,
    ref: str,
    data: bytes,
    *,
    seal_with: Callable[[bytes, str], tuple[bytes, str, str]] | None = None,
    hand_over: bool = True,
) -> Held:
    """Register record R-<visit> under `ref` for B, hand its package to the peers (unless
    `hand_over` is False), get C's approval and refer REF-<visit> up to B. Returns the package."""
    record = f"R-{visit}"
    if seal_with is None:
        package, sealed = seal_package(alliance.layout, A, [B], data, record_id=record, version=1,
                                       now=utc_now())  # fmt: skip
        held, digest, commitments = (
            Held(package.to_bytes(), tuple(sealed)),
            package.digest,
            json.dumps(package.key_commitments),
        )
    else:
        raw, digest, commitments = seal_with(data, record)
        held = Held(raw, ())
    alliance.submit(A, "User1", "records", "RegisterRecord", record, ref, digest, "[]",
                    commitments)  # fmt: skip
    if hand_over:
        alliance.push(A, held)
    alliance.submit(A, "User1", "report", "SubmitApplication", f"APP-{visit}", visit, B, record)
    alliance.submit(C, "Reviewer1", "report", "ReviewApplication", f"APP-{visit}", "APPROVED", "",
                    "")  # fmt: skip
    alliance.submit(A, "User1", "referral", "Refer", f"REF-{visit}", f"APP-{visit}", visit, A, B,
                    "UP", record)  # fmt: skip
    return held


def sealed_for_someone_else(
    alliance: EmbeddedAlliance,
) -> Callable[[bytes, str], tuple[bytes, str, str]]:
    """A package whose key 'for B' is wrapped for B2's key: the ledger's commitment matches the
    package, so B's peer keeps it, but B cannot open it."""

    def build(data: bytes, record: str) -> tuple[bytes, str, str]:
        now = utc_now()
        layout = alliance.layout
        keys = [recipient_key(layout.org_msp_dir(m), m, now) for m in (A, C)]
        b2 = recipient_key(layout.org_msp_dir(B2), B2, now)
        keys.append(dataclasses.replace(b2, msp_id=B))
        package = seal(data, record_id=record, version=1, recipients=keys)
        return package.to_bytes(), package.digest, json.dumps(package.key_commitments)

    return build


def state(db: HospitalDatabase) -> tuple[list[dict[str, object]], list[str]]:
    """What B's database holds that a referral would change: its referrals and the visits of
    the referred patients."""
    visits = [v for r in db.patient_identities() for v in db.visits_of(r[0])]
    return db.referrals(), visits


FAULTS = {
    "a package sealed for another hospital under the target's name": "NotARecipient: ",
    "a package whose content is not a clinical package": "InvalidArgument: malformed clinical",
    "another patient's data under the referred patient's pseudonym": "not the referred patient's",
    "a package never handed to any peer": "NotFound: version 1 of record R-V-LATE is not held",
}


def test_bad_packages_are_quarantined_and_the_next_referral_still_imports(
    alliance: EmbeddedAlliance, tmp_path: Path
) -> None:
    a_db = HospitalDatabase.open(tmp_path / "a.db")
    ref = visit_data(alliance, a_db, "V-OK", ID_NUMBER)
    for visit in ("V-KEY", "V-JUNK", "V-OTHER", "V-LATE", "V-OK"):
        register(alliance, visit, ref)
    refer(alliance, "V-KEY", ref, b"{}", seal_with=sealed_for_someone_else(alliance))
    refer(alliance, "V-JUNK", ref, b"this is not JSON")
    stranger = visit_data(alliance, a_db, "V-X", OTHER_ID)
    wrong, _ = a_db.export_visit("V-X")
    assert json.loads(wrong)["patient"]["patientRef"] == stranger
    refer(alliance, "V-OTHER", ref, wrong)
    late = refer(alliance, "V-LATE", ref, a_db.export_visit("V-OK")[0], hand_over=False)
    refer(alliance, "V-OK", ref, a_db.export_visit("V-OK")[0])

    b_db = HospitalDatabase.open(tmp_path / "b.db")
    connector = Connector(alliance, B, "User1", b_db, key(alliance, B))
    report = connector.sync()

    assert report.imported == ["REF-V-OK"]
    assert report.quarantined == ["REF-V-KEY", "REF-V-JUNK", "REF-V-OTHER", "REF-V-LATE"]
    entries = {e.referral_id: e for e in b_db.quarantined()}
    reasons = dict(
        zip(FAULTS, ("REF-V-KEY", "REF-V-JUNK", "REF-V-OTHER", "REF-V-LATE"), strict=True)
    )
    for fault, referral in reasons.items():
        entry = entries[referral]
        assert (entry.record_id, entry.first_attempt) == (f"R-{referral[4:]}", entry.last_attempt)
        assert FAULTS[fault] in entry.reason, (fault, entry.reason)
        assert ID_NUMBER not in entry.reason
        assert "张三" not in entry.reason
    # only the valid referral reached B's database
    assert [r["referralId"] for r in b_db.referrals()] == ["REF-V-OK"]
    assert b_db.visit_summary("V-OK")["source"] == "referral:REF-V-OK"
    for visit in ("V-KEY", "V-JUNK", "V-OTHER", "V-LATE"):
        with pytest.raises(NotFound):
            b_db.visit_summary(visit)

    # a second run: nothing imported twice, nothing quarantined twice
    again = connector.sync()
    assert (again.imported, again.quarantined) == ([], [])
    b_db.set_last_block(-1)  # even with the checkpoint lost
    replay = connector.sync()
    assert (replay.imported, replay.quarantined) == ([], [])
    assert len(b_db.quarantined()) == 4

    # retry while the cause is still there: refused again, kept with a new attempt, nothing written
    before = state(b_db)
    with pytest.raises(PackageRefused, match="REF-V-LATE is quarantined"):
        connector.retry("REF-V-LATE")
    assert state(b_db) == before
    assert [e.referral_id for e in b_db.quarantined()] == list(reasons.values())

    # the package is handed over late: retry imports it and it leaves the quarantine
    alliance.push(A, late)
    connector.retry("REF-V-LATE")
    assert b_db.visit_summary("V-LATE")["source"] == "referral:REF-V-LATE"
    assert "REF-V-LATE" not in [e.referral_id for e in b_db.quarantined()]
    with pytest.raises(NotFound, match="REF-V-LATE is not quarantined"):
        connector.retry("REF-V-LATE")


def test_a_package_of_another_patient_stays_quarantined_on_retry(
    alliance: EmbeddedAlliance, tmp_path: Path
) -> None:
    a_db = HospitalDatabase.open(tmp_path / "a.db")
    ref = visit_data(alliance, a_db, "V-1", ID_NUMBER)
    visit_data(alliance, a_db, "V-X", OTHER_ID)
    register(alliance, "V-1", ref)
    refer(alliance, "V-1", ref, a_db.export_visit("V-X")[0])
    b_db = HospitalDatabase.open(tmp_path / "b.db")
    connector = Connector(alliance, B, "User1", b_db, key(alliance, B))
    assert connector.sync().quarantined == ["REF-V-1"]
    [first] = b_db.quarantined()
    with pytest.raises(PackageRefused, match="not the referred patient's"):
        connector.retry("REF-V-1")
    [second] = b_db.quarantined()
    assert (second.first_attempt, second.reason) == (first.first_attempt, first.reason)
    assert second.last_attempt >= first.last_attempt
    assert b_db.referrals() == []


def test_an_unreachable_service_stops_the_sync_where_a_later_run_resumes(
    alliance: EmbeddedAlliance, template: Path, tmp_path: Path
) -> None:
    a_db = HospitalDatabase.open(tmp_path / "a.db")
    ref = visit_data(alliance, a_db, "V-1", ID_NUMBER)
    register(alliance, "V-1", ref)
    refer(alliance, "V-1", ref, a_db.export_visit("V-1")[0])
    b_db = HospitalDatabase.open(tmp_path / "b.db")
    # The pseudonym service over gRPC, on a network whose processes are not running.
    down = GatewayAlliance(template, "alliance")
    with pytest.raises(Unavailable, match=r"REF-V-1.*stopped at block"):
        Connector(alliance, B, "User1", b_db, pseudonym_client(down, B, "User1")).sync()
    down.close()
    assert (b_db.referrals(), b_db.quarantined()) == ([], [])
    stopped_at = b_db.last_block()
    resumed = Connector(alliance, B, "User1", b_db, key(alliance, B)).sync()
    assert resumed.imported == ["REF-V-1"]
    assert resumed.last_block > stopped_at
