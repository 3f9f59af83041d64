"""The referral workflow on an embedded demo alliance: real endorsement, ordering, validation
(MVCC across contract namespaces), the privacy module's package holdings and the connector."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fabric_protos.peer import transaction_pb2
from tests.networks import DEMO_ALLIANCE

from medalliance.app.alliance_network import EmbeddedAlliance
from medalliance.app.connector import Connector
from medalliance.app.hospital_db import HospitalDatabase
from medalliance.app.packages import seal_package
from medalliance.app.pseudonyms import PseudonymClient, pseudonym_client
from medalliance.errors import ContractError, NotFound, PreconditionFailed
from medalliance.node.config import load_network_config
from medalliance.node.embedded import EmbeddedNetwork, utc_now
from medalliance.node.package_holding import Held
from medalliance.privacy.documents import address_of

A, B, B2, C = "SecondaryAMSP", "TertiaryAMSP", "TertiaryBMSP", "DistrictHCMSP"
CODE = transaction_pb2.TxValidationCode
ID_NUMBER = "11010519491231002X"  # GB 11643's example number


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


def pseudonyms(alliance: EmbeddedAlliance, org: str) -> PseudonymClient:
    """A hospital's client of the regulator's pseudonym service (no cache: every call asks)."""
    return pseudonym_client(alliance, org, "User1")


def patient_ref(alliance: EmbeddedAlliance) -> str:
    return pseudonyms(alliance, A).pseudonym("resident-id", ID_NUMBER)


def admit(alliance: EmbeddedAlliance, db: HospitalDatabase, visit: str) -> str:
    ref = patient_ref(alliance)
    db.add_patient(ref, name="张三", sex="M", birth_date="1949-12-31", id_type="resident-id",
                   id_number=ID_NUMBER)  # fmt: skip
    db.add_visit(visit, ref, "2026-11-29", diagnoses=[("I21.0", "STEMI")],
                 examinations=[("ECG", "ST elevation", "2026-11-29")],
                 images=[("ecg.png", b"\x89PNG-ecg")])  # fmt: skip
    alliance.submit(A, "User1", "visit", "RegisterVisit", visit, ref, A)
    return ref


def share(
    alliance: EmbeddedAlliance, writer: str, to: str, record: str, ref: str, data: bytes,
    images: list[tuple[str, bytes]],
) -> None:  # fmt: skip
    package, sealed = seal_package(alliance.layout, writer, [to], data, record_id=record,
                                   version=1, now=utc_now(), attachments=images)  # fmt: skip
    alliance.submit(writer, "User1", "records", "RegisterRecord", record, ref, package.digest,
                    json.dumps([address_of(c) for c in sealed]),
                    json.dumps(package.key_commitments))  # fmt: skip
    alliance.push(writer, Held(package.to_bytes(), tuple(sealed)))


def approved(alliance: EmbeddedAlliance, app_id: str, visit: str, to: str, record: str) -> None:
    alliance.submit(A, "User1", "report", "SubmitApplication", app_id, visit, to, record)
    alliance.submit(C, "Reviewer1", "report", "ReviewApplication", app_id, "APPROVED", "", "")


def prepared(alliance: EmbeddedAlliance, db: HospitalDatabase, visit: str, to: str) -> None:
    """A visit with its clinical summary R-<visit> shared with `to` and an approved APP-<visit>."""
    ref = admit(alliance, db, visit)
    share(alliance, A, to, f"R-{visit}", ref, *db.export_visit(visit))
    approved(alliance, f"APP-{visit}", visit, to, f"R-{visit}")


def refer_async(alliance: EmbeddedAlliance, referral: str, visit: str, to: str) -> str:
    client = alliance.network.client(A, "User1")
    tx_id, _ = client.submit_async("alliance", "referral", "Refer", referral, f"APP-{visit}",
                                   visit, A, to, "UP", f"R-{visit}")  # fmt: skip
    return tx_id


def codes(alliance: EmbeddedAlliance, *tx_ids: str) -> list[str]:
    client = alliance.network.client(A, "User1")
    return [CODE.Name(client.status("alliance", tx).code) for tx in tx_ids]


def test_concurrent_referrals_of_one_patient_commit_exactly_once(
    alliance: EmbeddedAlliance, tmp_path: Path
) -> None:
    db = HospitalDatabase.open(tmp_path / "a.db")
    ref = admit(alliance, db, "V-1")
    share(alliance, A, B, "R-V-1", ref, *db.export_visit("V-1"))
    alliance.submit(A, "User1", "records", "Grant", "R-V-1", B2)
    approved(alliance, "APP-V-1", "V-1", B, "R-V-1")
    approved(alliance, "APP-V-1b", "V-1", B2, "R-V-1")
    client = alliance.network.client(A, "User1")
    first, _ = client.submit_async("alliance", "referral", "Refer", "REF-1", "APP-V-1", "V-1", A,
                                   B, "UP", "R-V-1")  # fmt: skip
    second, _ = client.submit_async("alliance", "referral", "Refer", "REF-2", "APP-V-1b", "V-1",
                                    A, B2, "UP", "R-V-1")  # fmt: skip
    alliance.network.cut_blocks("alliance")
    assert codes(alliance, first, second) == ["VALID", "MVCC_READ_CONFLICT"]
    assert json.loads(alliance.evaluate(A, "User1", "visit", "GetVisit", "V-1"))["hospital"] == B
    with pytest.raises(ContractError, match="referral REF-2 does not exist"):
        alliance.evaluate(A, "User1", "referral", "GetReferral", "REF-2")
    # the losing referral left its approval unused
    unused = json.loads(alliance.evaluate(A, "User1", "report", "GetApplication", "APP-V-1b"))
    assert unused["status"] == "APPROVED"


def test_concurrent_referrals_of_different_patients_all_commit(
    alliance: EmbeddedAlliance, tmp_path: Path
) -> None:
    db = HospitalDatabase.open(tmp_path / "a.db")
    visits = [f"V-{i}" for i in range(4)]
    for visit in visits:
        prepared(alliance, db, visit, B)
    txs = [refer_async(alliance, f"REF-{v}", v, B) for v in visits]
    alliance.network.cut_blocks("alliance")
    assert codes(alliance, *txs) == ["VALID"] * 4


def test_the_connector_imports_a_referral_exactly_once_across_restarts(
    alliance: EmbeddedAlliance, tmp_path: Path
) -> None:
    a_db = HospitalDatabase.open(tmp_path / "a.db")
    prepared(alliance, a_db, "V-1", B)
    alliance.submit(A, "User1", "referral", "Refer", "REF-1", "APP-V-1", "V-1", A, B, "UP", "R-V-1")
    key = pseudonyms(alliance, B)  # B derives the same pseudonym as A: linking works
    b_path = tmp_path / "b.db"
    b_db = HospitalDatabase.open(b_path)
    first = Connector(alliance, B, "User1", b_db, key).sync()
    assert first.imported == ["REF-1"]
    assert b_db.visit_summary("V-1") == {
        "visitNo": "V-1", "patientRef": patient_ref(alliance), "source": "referral:REF-1",
        "name": "张三", "sex": "M", "diagnoses": 1, "examinations": 1, "images": 1,
    }  # fmt: skip
    b_db.close()
    # a restart: a new connector on the reopened database finds nothing new
    b_db = HospitalDatabase.open(b_path)
    assert Connector(alliance, B, "User1", b_db, key).sync().imported == []
    # even with the checkpoint lost, the referral's id in the database keeps it single
    b_db.set_last_block(-1)
    replay = Connector(alliance, B, "User1", b_db, key).sync()
    assert (replay.imported, b_db.visit_summary("V-1")["diagnoses"]) == ([], 1)
    # the decryption is an access event the regulator sees
    log = json.loads(alliance.evaluate(C, "Auditor1", "records", "AccessLog", "R-V-1"))
    assert [(e["action"], e["org"]) for e in log] == [("decrypt", B)]


def test_the_connector_follows_its_referrals_and_ignores_others(
    alliance: EmbeddedAlliance, tmp_path: Path
) -> None:
    a_db = HospitalDatabase.open(tmp_path / "a.db")
    prepared(alliance, a_db, "V-1", B)
    alliance.submit(A, "User1", "referral", "Refer", "REF-1", "APP-V-1", "V-1", A, B, "UP", "R-V-1")
    alliance.submit(B, "User1", "referral", "RejectReferral", "REF-1", "NO_BED", "")
    other = HospitalDatabase.open(tmp_path / "b2.db")
    assert Connector(alliance, B2, "User1", other).sync().imported == []
    assert other.referrals() == []
    origin = Connector(alliance, A, "User1", a_db).sync()
    assert (origin.noted, origin.updated) == (["REF-1"], [("REF-1", "REJECTED")])
    assert [(r["side"], r["status"]) for r in a_db.referrals()] == [("outgoing", "REJECTED")]


def test_a_package_of_another_patient_is_not_imported(
    alliance: EmbeddedAlliance, tmp_path: Path
) -> None:
    a_db = HospitalDatabase.open(tmp_path / "a.db")
    admit(alliance, a_db, "V-1")
    key = pseudonyms(alliance, B)
    stranger = pseudonyms(alliance, A).pseudonym("resident-id", "110101199003074514")
    a_db.add_patient(stranger, name="李四", sex="F", birth_date="1990-03-07",
                     id_type="resident-id", id_number="110101199003074514")  # fmt: skip
    a_db.add_visit("V-X", stranger, "2026-11-29")
    data, images = a_db.export_visit("V-X")  # the wrong patient's data under V-1's pseudonym
    share(alliance, A, B, "R-V-1", patient_ref(alliance), data, images)
    approved(alliance, "APP-V-1", "V-1", B, "R-V-1")
    alliance.submit(A, "User1", "referral", "Refer", "REF-1", "APP-V-1", "V-1", A, B, "UP", "R-V-1")
    b_db = HospitalDatabase.open(tmp_path / "b.db")
    connector = Connector(alliance, B, "User1", b_db, key)
    assert connector.sync().quarantined == ["REF-1"]  # tests/security/test_connector_quarantine.py
    assert b_db.referrals() == []
    [entry] = b_db.quarantined()
    assert "is not the referred patient's; not imported" in entry.reason


def test_an_approved_erasure_reaches_the_connectors_imported_copy(
    alliance: EmbeddedAlliance, tmp_path: Path
) -> None:
    a_db = HospitalDatabase.open(tmp_path / "a.db")
    prepared(alliance, a_db, "V-1", B)
    alliance.submit(A, "User1", "referral", "Refer", "REF-1", "APP-V-1", "V-1", A, B, "UP", "R-V-1")
    b_db = HospitalDatabase.open(tmp_path / "b.db")
    connector = Connector(alliance, B, "User1", b_db)
    assert connector.sync().imported == ["REF-1"]
    alliance.submit(A, "User1", "records", "RequestErasure", patient_ref(alliance))
    assert connector.sync().erased == []  # a request alone deletes nothing
    assert b_db.visit_summary("V-1")["diagnoses"] == 1
    alliance.submit(C, "Reviewer1", "records", "ApproveErasure", patient_ref(alliance))
    synced = connector.sync()
    assert (synced.erased, synced.confirmed) == (["R-V-1"], ["R-V-1"])
    with pytest.raises(NotFound):
        b_db.visit_summary("V-1")
    with pytest.raises(PreconditionFailed, match="record R-V-1 was erased"):
        alliance.pull(B, "User1", "R-V-1", 1)
    assert a_db.visit_summary("V-1")["diagnoses"] == 1  # the origin's own record is its own
    # B's receipt is on the ledger, and a replay does not file it twice.
    receipts = json.loads(
        alliance.evaluate(C, "Auditor1", "records", "ErasureReceipts", patient_ref(alliance))
    )
    assert receipts["records"]["R-V-1"] == {"confirmed": [B], "pending": [C, A]}
    b_db.set_last_block(-1)
    assert connector.sync().confirmed == []
