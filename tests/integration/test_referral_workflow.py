"""The referral workflow on an embedded demo alliance: real endorsement, ordering, validation
(MVCC across contract namespaces), the privacy module's package holdings and the connector, which
imports FHIR referral Bundles into the receiving hospital's clinical store (SQLite and
PostgreSQL) with a Provenance and keeps the local Task in step with the chain."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fabric_protos.peer import transaction_pb2
from tests.hospital_fixtures import (
    B2,
    OTHER_ID,
    A,
    B,
    C,
    access_log,
    admit,
    approved,
    encounter_of,
    key,
    open_store,
    prepared,
    refer,
    referral_bytes,
)
from tests.networks import DEMO_ALLIANCE

from medalliance.app.alliance_network import EmbeddedAlliance
from medalliance.app.connector import Connector
from medalliance.app.hospital_book import HospitalBook
from medalliance.app.referral_import import referral_task
from medalliance.app.referral_packages import seal_and_share, share_feedback
from medalliance.audit.facts import facts_of_block
from medalliance.errors import ContractError, PreconditionFailed
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.identifiers import PSEUDONYM_SYSTEM, identifier_value
from medalliance.node.config import load_network_config
from medalliance.node.embedded import EmbeddedNetwork

CODE = transaction_pb2.TxValidationCode


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


def refer_async(alliance: EmbeddedAlliance, referral: str, visit: str, to: str) -> str:
    client = alliance.network.client(A, "User1")
    tx_id, _ = client.submit_async("alliance", "referral", "Refer", referral, f"APP-{visit}",
                                   visit, A, to, "UP", f"R-{visit}")  # fmt: skip
    return tx_id


def codes(alliance: EmbeddedAlliance, *tx_ids: str) -> list[str]:
    client = alliance.network.client(A, "User1")
    return [CODE.Name(client.status("alliance", tx).code) for tx in tx_ids]


def held(store: ClinicalStore, source: str) -> dict[str, int]:
    """How many resources of each type the store holds from `source`."""
    counts: dict[str, int] = {}
    for kind in ("Patient", "Encounter", "Condition", "Observation", "DiagnosticReport", "Task",
                 "ServiceRequest", "Provenance"):  # fmt: skip
        found = [r for r in store.search(kind) if store.source_of(kind, r["id"]) == source]
        if found:
            counts[kind] = len(found)
    return counts


def test_concurrent_referrals_of_one_patient_commit_exactly_once(
    alliance: EmbeddedAlliance, tmp_path: Path
) -> None:
    store = ClinicalStore.open(tmp_path / "a.db")
    ref = admit(alliance, store, "V-1")
    seal_and_share(
        alliance, A, "User1", [B], "R-V-1", ref, referral_bytes(store, "REF-1", "V-1", B)
    )
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
    store = ClinicalStore.open(tmp_path / "a.db")
    visits = [f"V-{i}" for i in range(4)]
    for visit in visits:
        prepared(alliance, store, visit, B, f"REF-{visit}")
    txs = [refer_async(alliance, f"REF-{v}", v, B) for v in visits]
    alliance.network.cut_blocks("alliance")
    assert codes(alliance, *txs) == ["VALID"] * 4


def test_the_connector_imports_a_referral_bundle_exactly_once_with_its_provenance(
    alliance: EmbeddedAlliance, database_url: str
) -> None:
    a_store = open_store(database_url, "hospital_a")
    ref = prepared(alliance, a_store, "V-1", B, "REF-1")
    refer(alliance, "REF-1", "V-1", B)
    b_store = open_store(database_url, "hospital_b")
    first = Connector(alliance, B, "User1", b_store, key(alliance, B)).sync()
    assert first.imported == ["REF-1"]
    brought = held(b_store, "referral:REF-1")
    assert brought == {"Patient": 1, "Encounter": 1, "Condition": 2, "Observation": 2,
                       "DiagnosticReport": 1, "Task": 1, "ServiceRequest": 1,
                       "Provenance": 1}  # fmt: skip
    [patient] = b_store.search("Patient")
    assert identifier_value(patient, PSEUDONYM_SYSTEM) == ref
    provenance = b_store.get("Provenance", "referral-REF-1")
    targets = {t["reference"].split("/")[0] for t in provenance["target"]}
    assert {"Patient", "Encounter", "Condition", "Task", "ServiceRequest"} <= targets
    assert provenance["agent"][0]["who"]["identifier"]["value"] == A
    extensions = {e["url"].rsplit("-", 1)[-1]: e for e in provenance["extension"]}
    assert extensions["channel"]["valueString"] == "alliance"
    assert extensions["block"]["valueUnsignedInt"] == first.last_block
    assert len(extensions["transaction"]["valueString"]) == 64
    task = referral_task(b_store, "REF-1")
    assert task is not None
    assert task["status"] == "requested"
    b_store.close()
    # a restart: a new connector on the reopened store finds nothing new
    b_store = open_store(database_url, "hospital_b")
    assert Connector(alliance, B, "User1", b_store, key(alliance, B)).sync().imported == []
    # even with the checkpoint lost, the referral's record in the store keeps it single
    HospitalBook(b_store).set_last_block(-1)
    replay = Connector(alliance, B, "User1", b_store, key(alliance, B)).sync()
    assert (replay.imported, held(b_store, "referral:REF-1")) == ([], brought)
    # the decryption is an access event the regulator sees
    assert access_log(alliance, "R-V-1") == [("decrypt", B)]


def test_the_local_task_follows_the_chain_and_the_feedback_reaches_the_origin(
    alliance: EmbeddedAlliance, database_url: str
) -> None:
    a_store = open_store(database_url, "hospital_a")
    ref = prepared(alliance, a_store, "V-1", B, "REF-1")
    refer(alliance, "REF-1", "V-1", B)
    b_store = open_store(database_url, "hospital_b")
    target = Connector(alliance, B, "User1", b_store, key(alliance, B))
    target.sync()
    alliance.submit(B, "User1", "referral", "AcceptReferral", "REF-1")
    assert target.sync().updated == [("REF-1", "ACCEPTED")]
    task = referral_task(b_store, "REF-1")
    assert task is not None
    assert task["status"] == "accepted"
    share_feedback(alliance, B, "User1", A, [A, C], "REF-1", "F-1", ref, "PCI done, stable")
    alliance.submit(B, "User1", "referral", "CompleteReferral", "REF-1", "F-1")
    assert target.sync().updated == [("REF-1", "COMPLETED")]
    task = referral_task(b_store, "REF-1")
    assert task is not None
    assert task["status"] == "completed"
    # the origin notes its referral, follows it, and imports the feedback document
    origin = Connector(alliance, A, "User1", a_store, key(alliance, A)).sync()
    assert origin.noted == ["REF-1"]
    assert [r["status"] for r in HospitalBook(a_store).referrals()] == ["COMPLETED"]
    [document] = [
        d for d in a_store.search("DocumentReference")
        if a_store.source_of("DocumentReference", d["id"]) == "feedback:REF-1"
    ]  # fmt: skip
    assert document["description"] == "Discharge summary"
    feedback_task = referral_task(a_store, "REF-1")
    assert feedback_task is not None
    assert feedback_task["status"] == "completed"
    assert access_log(alliance, "F-1") == [("decrypt", A)]
    HospitalBook(a_store).set_last_block(-1)  # a replay imports the feedback once only
    Connector(alliance, A, "User1", a_store, key(alliance, A)).sync()
    assert access_log(alliance, "F-1") == [("decrypt", A)]


def test_the_connector_ignores_referrals_of_other_hospitals(
    alliance: EmbeddedAlliance, tmp_path: Path
) -> None:
    a_store = ClinicalStore.open(tmp_path / "a.db")
    prepared(alliance, a_store, "V-1", B, "REF-1")
    refer(alliance, "REF-1", "V-1", B)
    alliance.submit(B, "User1", "referral", "RejectReferral", "REF-1", "NO_BED", "")
    other = ClinicalStore.open(tmp_path / "b2.db")
    assert Connector(alliance, B2, "User1", other).sync().imported == []
    assert HospitalBook(other).referrals() == []
    origin = Connector(alliance, A, "User1", a_store).sync()
    assert (origin.noted, origin.updated) == (["REF-1"], [("REF-1", "REJECTED")])
    book = HospitalBook(a_store)
    assert [(r["side"], r["status"]) for r in book.referrals()] == [("outgoing", "REJECTED")]


def test_a_bundle_of_another_patient_is_quarantined(
    alliance: EmbeddedAlliance, tmp_path: Path
) -> None:
    a_store = ClinicalStore.open(tmp_path / "a.db")
    ref = admit(alliance, a_store, "V-1")
    admit(alliance, a_store, "V-X", patient_id="p-2", id_number=OTHER_ID, register=False)
    # the other patient's Bundle, relabelled with V-1's pseudonym: the service sees through it
    data = referral_bytes(a_store, "REF-1", "V-X", B).replace(
        identifier_value(a_store.get("Patient", "p-2"), PSEUDONYM_SYSTEM).encode(), ref.encode()
    )
    seal_and_share(alliance, A, "User1", [B], "R-V-1", ref, data)
    approved(alliance, "APP-V-1", "V-1", B, "R-V-1")
    refer(alliance, "REF-1", "V-1", B)
    b_store = ClinicalStore.open(tmp_path / "b.db")
    connector = Connector(alliance, B, "User1", b_store, key(alliance, B))
    assert connector.sync().quarantined == ["REF-1"]  # tests/security/test_connector_quarantine.py
    book = HospitalBook(b_store)
    assert book.referrals() == []
    [entry] = book.quarantined()
    assert "is not the referred patient's; not imported" in entry.reason
    assert b_store.search("Patient") == []


def test_an_approved_erasure_reaches_the_connectors_imported_copy(
    alliance: EmbeddedAlliance, database_url: str
) -> None:
    a_store = open_store(database_url, "hospital_a")
    ref = prepared(alliance, a_store, "V-1", B, "REF-1")
    refer(alliance, "REF-1", "V-1", B)
    b_store = open_store(database_url, "hospital_b")
    own = {"resourceType": "Observation", "id": "b-own", "status": "final",
           "code": {"text": "B's own finding"}}  # fmt: skip
    b_store.put(own)
    connector = Connector(alliance, B, "User1", b_store)
    assert connector.sync().imported == ["REF-1"]
    alliance.submit(A, "User1", "records", "RequestErasure", ref)
    assert connector.sync().erased == []  # a request alone deletes nothing
    assert held(b_store, "referral:REF-1")["Condition"] == 2
    alliance.submit(C, "Reviewer1", "records", "ApproveErasure", ref)
    synced = connector.sync()
    assert (synced.erased, synced.confirmed) == (["R-V-1"], ["R-V-1"])
    assert held(b_store, "referral:REF-1") == {}
    assert b_store.search("Patient") == []
    assert b_store.find("Observation", "b-own") is not None  # B's own record stays
    with pytest.raises(PreconditionFailed, match="record R-V-1 was erased"):
        alliance.pull(B, "User1", "R-V-1", 1)
    assert len(a_store.search("Condition")) == 2  # the origin's own record is its own
    assert encounter_of("V-1") in [e["id"] for e in a_store.search("Encounter")]
    # B's receipt is on the ledger, and a replay does not file it twice.
    receipts = json.loads(alliance.evaluate(C, "Auditor1", "records", "ErasureReceipts", ref))
    assert receipts["records"]["R-V-1"] == {"confirmed": [B], "pending": [C, A]}
    HospitalBook(b_store).set_last_block(-1)
    assert connector.sync().confirmed == []


def test_two_referrals_racing_for_one_slot_commit_one_with_its_hold(
    alliance: EmbeddedAlliance, tmp_path: Path
) -> None:
    """Two real submissions through the gateway, each a referral holding slot 09:00 of the
    target's CT: one block, the first commits referral and hold, the second neither."""
    store = ClinicalStore.open(tmp_path / "a.db")
    for visit in ("V-1", "V-2"):
        prepared(alliance, store, visit, B, f"REF-{visit}")
    nine, ten = "2026-12-01T09:00", "2026-12-01T10:00"
    alliance.submit(B, "User1", "resource", "PublishResource", "CT-1", B, "EQUIPMENT", "CT",
                    json.dumps([nine, ten]))  # fmt: skip
    client = alliance.network.client(A, "User1")
    txs = []
    for v in ("V-1", "V-2"):
        args = (f"REF-{v}", f"APP-{v}", v, A, B, "UP", f"R-{v}", "CT-1", nine)
        txs.append(client.submit_async("alliance", "referral", "ReferWithHold", *args)[0])
    alliance.network.cut_blocks("alliance")
    assert codes(alliance, *txs) == ["VALID", "MVCC_READ_CONFLICT"]
    hold = json.loads(alliance.evaluate(C, "Auditor1", "resource", "GetHold", "REF-V-1"))
    assert (hold["status"], hold["careType"], hold["holder"]) == ("HELD", "examination", A)
    with pytest.raises(ContractError, match="referral REF-V-2 does not exist"):
        alliance.evaluate(A, "User1", "referral", "GetReferral", "REF-V-2")
    with pytest.raises(ContractError, match="a hold of referral REF-V-2 does not exist"):
        alliance.evaluate(A, "User1", "resource", "GetHold", "REF-V-2")
    # the loser's visit is still at the origin: it refers again, holding the other slot
    alliance.submit(A, "User1", "referral", "ReferWithHold", "REF-V-2", "APP-V-2", "V-2", A, B,
                    "UP", "R-V-2", "CT-1", ten)  # fmt: skip
    # the audit reads the held referrals like any other (the hold's writes are the callee's)
    height = alliance.network.client(A, "User1").status("alliance", txs[0]).block_number
    block = next(iter(alliance.blocks(A, height, height)))
    created = [f.subject for f in facts_of_block(block, "alliance") if f.kind == "referral.created"]
    assert created == ["REF-V-1"]
    states = json.loads(alliance.evaluate(B, "User1", "resource", "SlotsOf", "CT-1"))
    assert [(s["state"], s.get("referralId")) for s in states] == [
        ("HELD", "REF-V-1"),
        ("HELD", "REF-V-2"),
    ]
