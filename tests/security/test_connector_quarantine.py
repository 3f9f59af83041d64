"""A hostile or careless hospital cannot block another hospital's connector (issue 12).

Secondary hospital A refers patients up to tertiary hospital B on the embedded demo alliance.
Some of A's packages are at fault: sealed for someone else under B's name, not JSON, a Bundle the
store refuses (a code outside its value set), another patient's Bundle under the referred
patient's pseudonym, a valid Bundle of another referral replayed, a Bundle naming another
referring hospital, or never handed over. B's
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
from medalliance.app.hospital_book import HospitalBook
from medalliance.app.pseudonyms import pseudonym_client
from medalliance.app.quarantine import PackageRefused
from medalliance.app.referral_import import referral_task
from medalliance.app.referral_packages import (
    ReferralDraft,
    build_from_store,
    bundle_bytes,
    seal_and_share,
)
from medalliance.errors import NotFound, Unavailable
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.identifiers import PSEUDONYM_SYSTEM, identifier_value
from medalliance.node.config import load_network_config
from medalliance.node.embedded import EmbeddedNetwork, utc_now
from medalliance.node.package_holding import Held
from medalliance.privacy.envelope import seal
from medalliance.privacy.keys import recipient_key
from tests.hospital_fixtures import B2, ID_NUMBER, OTHER_ID, A, B, C, admit, key, referral_bytes
from tests.networks import DEMO_ALLIANCE


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
    """Register record R-<visit> under `ref` for B holding `data`, hand its package to the peers
    (unless `hand_over` is False), get C's approval and refer REF-<visit> up to B; the package."""
    record = f"R-{visit}"
    if seal_with is None:
        held = seal_and_share_later(alliance, record, ref, data)
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


def seal_and_share_later(alliance: EmbeddedAlliance, record: str, ref: str, data: bytes) -> Held:
    """Seal and register `data` as `record` for B, without handing it to any peer yet."""
    from medalliance.app.packages import seal_package

    package, sealed = seal_package(alliance.layout, A, [B], data, record_id=record, version=1,
                                   now=utc_now())  # fmt: skip
    alliance.submit(A, "User1", "records", "RegisterRecord", record, ref, package.digest, "[]",
                    json.dumps(package.key_commitments))  # fmt: skip
    return Held(package.to_bytes(), tuple(sealed))


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


def state(store: ClinicalStore) -> tuple[object, ...]:
    """What a referral would change in B's store: referrals, resources, quarantine reasons."""
    kinds = ("Patient", "Encounter", "Condition", "Observation", "Task", "Provenance")
    return (
        HospitalBook(store).referrals(),
        {k: sorted(r["id"] for r in store.search(k)) for k in kinds},
    )


FAULTS = {
    "a package sealed for another hospital under the target's name": (
        "REF-V-KEY", "NotARecipient: "),
    "a package whose content is not JSON": ("REF-V-JUNK", "InvalidBundle: "),
    "a Bundle whose Observation has a status outside its value set": (
        "REF-V-BAD", "InvalidResource: "),
    "another patient's Bundle under the referred patient's pseudonym": (
        "REF-V-OTHER", "not the referred patient's"),
    "a valid Bundle of another referral, replayed": ("REF-V-REPLAY", "InvalidBundle: "),
    "a Bundle whose Task names another referring hospital": (
        "REF-V-PAIR", "names requester TertiaryBMSP and owner TertiaryAMSP, not the chain's"),
    "a package never handed to any peer": (
        "REF-V-LATE", "NotFound: version 1 of record R-V-LATE is not held"),
}  # fmt: skip


def test_bad_packages_are_quarantined_and_the_next_referral_still_imports(
    alliance: EmbeddedAlliance, tmp_path: Path
) -> None:
    a_store = ClinicalStore.open(tmp_path / "a.db")
    ref = admit(alliance, a_store, "V-OK")
    for visit in ("V-KEY", "V-JUNK", "V-BAD", "V-OTHER", "V-REPLAY", "V-PAIR", "V-LATE"):
        register(alliance, visit, ref)
    refer(alliance, "V-KEY", ref, b"{}", seal_with=sealed_for_someone_else(alliance))
    refer(alliance, "V-JUNK", ref, b"this is not JSON")
    valid = referral_bytes(a_store, "REF-V-BAD", "V-OK", B)
    refer(alliance, "V-BAD", ref, valid.replace(b'"status": "final"', b'"status": "bogus"', 1))
    admit(alliance, a_store, "V-X", patient_id="p-2", id_number=OTHER_ID, register=False)
    stranger = identifier_value(a_store.get("Patient", "p-2"), PSEUDONYM_SYSTEM)
    assert stranger is not None
    wrong = referral_bytes(a_store, "REF-V-OTHER", "V-X", B).replace(
        stranger.encode(), ref.encode()
    )
    refer(alliance, "V-OTHER", ref, wrong)
    refer(alliance, "V-REPLAY", ref, referral_bytes(a_store, "REF-V-OK", "V-OK", B))
    draft = ReferralDraft("REF-V-PAIR", B, encounter_id="v-ok-enc")
    refer(
        alliance, "V-PAIR", ref, bundle_bytes(build_from_store(a_store, draft, from_org=B2).bundle)
    )
    late_bundle = referral_bytes(a_store, "REF-V-LATE", "V-OK", B)
    late = refer(alliance, "V-LATE", ref, late_bundle, hand_over=False)
    refer(alliance, "V-OK", ref, referral_bytes(a_store, "REF-V-OK", "V-OK", B))

    b_store = ClinicalStore.open(tmp_path / "b.db")
    book = HospitalBook(b_store)
    connector = Connector(alliance, B, "User1", b_store, key(alliance, B))
    report = connector.sync()

    assert report.imported == ["REF-V-OK"]
    assert report.quarantined == [referral for referral, _ in FAULTS.values()]
    entries = {e.referral_id: e for e in book.quarantined()}
    for fault, (referral, reason) in FAULTS.items():
        entry = entries[referral]
        assert (entry.record_id, entry.first_attempt) == (f"R-{referral[4:]}", entry.last_attempt)
        assert reason in entry.reason, (fault, entry.reason)
        assert ID_NUMBER not in entry.reason
        assert "张三" not in entry.reason
    # only the valid referral reached B's store
    assert [r["referralId"] for r in book.referrals()] == ["REF-V-OK"]
    sources = {b_store.source_of("Condition", c["id"]) for c in b_store.search("Condition")}
    assert sources == {"referral:REF-V-OK"}
    assert [p["id"] for p in b_store.search("Provenance")] == ["referral-REF-V-OK"]

    # a second run: nothing imported twice, nothing quarantined twice
    again = connector.sync()
    assert (again.imported, again.quarantined) == ([], [])
    before = state(b_store)
    book.set_last_block(-1)  # even with the checkpoint lost
    replay = connector.sync()
    assert (replay.imported, replay.quarantined) == ([], [])
    assert len(book.quarantined()) == len(FAULTS)
    assert state(b_store) == before

    # retry while the cause is still there: refused again, kept with a new attempt, nothing written
    with pytest.raises(PackageRefused, match="REF-V-LATE is quarantined"):
        connector.retry("REF-V-LATE")
    assert state(b_store) == before
    assert len(book.quarantined()) == len(FAULTS)

    # the package is handed over late, after B accepted on the chain: retry imports it, it
    # leaves the quarantine, and its record and Task are where the chain is
    alliance.push(A, late)
    alliance.submit(B, "User1", "referral", "AcceptReferral", "REF-V-LATE")
    connector.retry("REF-V-LATE")
    statuses = {r["referralId"]: r["status"] for r in book.referrals()}
    assert statuses["REF-V-LATE"] == "ACCEPTED"
    task = referral_task(b_store, "REF-V-LATE")
    assert task is not None
    assert task["status"] == "accepted"
    assert b_store.find("Provenance", "referral-REF-V-LATE") is not None
    assert "REF-V-LATE" not in [e.referral_id for e in book.quarantined()]
    with pytest.raises(NotFound, match="REF-V-LATE is not quarantined"):
        connector.retry("REF-V-LATE")


def test_a_bundle_of_another_patient_stays_quarantined_on_retry(
    alliance: EmbeddedAlliance, tmp_path: Path
) -> None:
    a_store = ClinicalStore.open(tmp_path / "a.db")
    ref = admit(alliance, a_store, "V-1")
    admit(alliance, a_store, "V-X", patient_id="p-2", id_number=OTHER_ID, register=False)
    stranger = identifier_value(a_store.get("Patient", "p-2"), PSEUDONYM_SYSTEM)
    assert stranger is not None
    wrong = referral_bytes(a_store, "REF-V-1", "V-X", B).replace(stranger.encode(), ref.encode())
    refer(alliance, "V-1", ref, wrong)
    b_store = ClinicalStore.open(tmp_path / "b.db")
    book = HospitalBook(b_store)
    connector = Connector(alliance, B, "User1", b_store, key(alliance, B))
    assert connector.sync().quarantined == ["REF-V-1"]
    [first] = book.quarantined()
    with pytest.raises(PackageRefused, match="not the referred patient's"):
        connector.retry("REF-V-1")
    [second] = book.quarantined()
    assert (second.first_attempt, second.reason) == (first.first_attempt, first.reason)
    assert second.last_attempt >= first.last_attempt
    assert book.referrals() == []
    assert b_store.search("Patient") == []


def test_an_unreachable_service_stops_the_sync_where_a_later_run_resumes(
    alliance: EmbeddedAlliance, template: Path, tmp_path: Path
) -> None:
    a_store = ClinicalStore.open(tmp_path / "a.db")
    ref = admit(alliance, a_store, "V-1")
    refer(alliance, "V-1", ref, referral_bytes(a_store, "REF-V-1", "V-1", B))
    b_store = ClinicalStore.open(tmp_path / "b.db")
    book = HospitalBook(b_store)
    # The pseudonym service over gRPC, on a network whose processes are not running.
    down = GatewayAlliance(template, "alliance")
    with pytest.raises(Unavailable, match=r"REF-V-1.*stopped at block"):
        Connector(alliance, B, "User1", b_store, pseudonym_client(down, B, "User1")).sync()
    down.close()
    assert (book.referrals(), book.quarantined(), b_store.search("Patient")) == ([], [], [])
    stopped_at = book.last_block()
    resumed = Connector(alliance, B, "User1", b_store, key(alliance, B)).sync()
    assert resumed.imported == ["REF-V-1"]
    assert resumed.last_block > stopped_at


def test_a_bad_feedback_is_quarantined_at_the_origin_and_the_status_still_follows(
    alliance: EmbeddedAlliance, tmp_path: Path
) -> None:
    a_store = ClinicalStore.open(tmp_path / "a.db")
    ref = admit(alliance, a_store, "V-1")
    refer(alliance, "V-1", ref, referral_bytes(a_store, "REF-V-1", "V-1", B))
    alliance.submit(B, "User1", "referral", "AcceptReferral", "REF-V-1")
    # the target completes with a "feedback" that is no feedback Bundle
    seal_and_share(alliance, B, "User1", [A], "F-V-1", ref, b'{"kind": "feedback"}')
    alliance.submit(B, "User1", "referral", "CompleteReferral", "REF-V-1", "F-V-1")
    origin = Connector(alliance, A, "User1", a_store, key(alliance, A))
    synced = origin.sync()
    assert synced.quarantined == ["REF-V-1"]
    assert ("REF-V-1", "COMPLETED") in synced.updated
    book = HospitalBook(a_store)
    [entry] = book.quarantined()
    assert (entry.record_id, entry.reason[:15]) == ("F-V-1", "InvalidBundle: ")
    assert [r["status"] for r in book.referrals()] == ["COMPLETED"]
    assert a_store.search("DocumentReference") == []
    with pytest.raises(PackageRefused, match="REF-V-1 is quarantined: InvalidBundle"):
        origin.retry("REF-V-1")
    assert a_store.search("DocumentReference") == []


def test_a_huge_package_is_quarantined_unread(alliance: EmbeddedAlliance, tmp_path: Path) -> None:
    a_store = ClinicalStore.open(tmp_path / "a.db")
    ref = admit(alliance, a_store, "V-1")
    valid = referral_bytes(a_store, "REF-V-1", "V-1", B)
    huge = valid[:-1] + b', "padding": "' + b"x" * (21 * 2**20) + b'"}'  # past the 20 MiB limit
    refer(alliance, "V-1", ref, huge)
    b_store = ClinicalStore.open(tmp_path / "b.db")
    synced = Connector(alliance, B, "User1", b_store, key(alliance, B)).sync()
    assert synced.quarantined == ["REF-V-1"]
    [entry] = HospitalBook(b_store).quarantined()
    assert "the limit is" in entry.reason
    assert len(entry.reason) < 300
    assert b_store.search("Patient") == []
