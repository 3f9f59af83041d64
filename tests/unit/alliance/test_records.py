"""The record registry: hashes and rights on the ledger, never data; rights from roles."""

from __future__ import annotations

import hashlib
import json

import pytest
from fabric_protos.peer import chaincode_event_pb2
from tests.conftest import NOW, Org, make_org
from tests.unit.contracts.fakes import DictState

from medalliance.alliance.records import RecordsContract
from medalliance.contracts.api import Organization
from medalliance.contracts.simulation import SimulationResult, TxContext, simulate
from medalliance.identity.msp import MspManager

PATIENT = "9f86d081884c7d65aa"
DIGEST = hashlib.sha256(b"sealed package v1").hexdigest()
DIGEST2 = hashlib.sha256(b"sealed package v2").hexdigest()
ATTACHMENT = hashlib.sha256(b"manifest").hexdigest()
PARTIES = ("DistrictMSP", "HospAMSP", "HospBMSP")
KEYS = {o: hashlib.sha256(f"wrapped for {o}".encode()).hexdigest() for o in PARTIES}
KEYS_JSON = json.dumps(KEYS)
ROLES = {
    "CityMSP": Organization("CityMSP", "regulator"),
    "DistrictMSP": Organization("DistrictMSP", "regulator", parent="CityMSP"),
    "HospAMSP": Organization("HospAMSP", "secondary", regulator="DistrictMSP"),
    "HospBMSP": Organization("HospBMSP", "tertiary", regulator="DistrictMSP"),
    "HospCMSP": Organization("HospCMSP", "tertiary", regulator="DistrictMSP"),
    "HospDMSP": Organization("HospDMSP", "secondary", regulator="DistrictMSP"),
}


class Ledger:
    def __init__(self) -> None:
        self.orgs = {msp: make_org(msp) for msp in ROLES}
        self.msps = MspManager([o.msp for o in self.orgs.values()])
        self.state = DictState()
        self.count = 0

    def call(self, msp_id: str, *args: str, role: str | None = None) -> SimulationResult:
        self.count += 1
        org: Org = self.orgs[msp_id]
        signer = org.signer("User1", role=role)
        creator = self.msps.deserialize(signer.serialized_identity, at=NOW)
        tx = TxContext(
            "alliance",
            f"tx{self.count:04d}",
            1_764_331_200_000 + self.count,
            creator,
            channel_orgs=tuple(ROLES),
            organizations=ROLES,
        )
        result = simulate(RecordsContract(), "records", [a.encode() for a in args], self.state, tx)
        if result.status == 200:
            self.state.commit(result)
        return result

    def ok(self, msp_id: str, *args: str, role: str | None = None) -> dict:  # type: ignore[type-arg]
        result = self.call(msp_id, *args, role=role)
        assert result.status == 200, result.message
        return json.loads(result.payload) if result.payload else {}


@pytest.fixture
def ledger() -> Ledger:
    led = Ledger()
    led.ok(
        "HospAMSP",
        "RegisterRecord",
        "R-1",
        PATIENT,
        DIGEST,
        json.dumps([ATTACHMENT]),
        KEYS_JSON,
    )
    return led


def event(result: SimulationResult) -> tuple[str, dict]:  # type: ignore[type-arg]
    assert result.event is not None
    parsed = chaincode_event_pb2.ChaincodeEvent.FromString(result.event)
    return parsed.event_name, json.loads(parsed.payload)


def test_a_record_authorises_origin_target_and_the_supervising_regulator(ledger: Ledger) -> None:
    record = ledger.ok("HospDMSP", "GetRecord", "R-1")
    assert record["authorised"] == ["DistrictMSP", "HospAMSP", "HospBMSP"]
    assert record["version"] == 1
    version = ledger.ok("HospDMSP", "GetVersion", "R-1", "1")
    assert (version["digest"], version["attachments"]) == (DIGEST, [ATTACHMENT])
    assert ledger.call("HospDMSP", "IsAuthorised", "R-1", "HospDMSP").payload == b"false"
    assert ledger.call("HospDMSP", "IsAuthorised", "R-1", "HospBMSP").payload == b"true"


def test_versions_grants_and_revocations(ledger: Ledger) -> None:
    added = ledger.call("HospBMSP", "AddVersion", "R-1", DIGEST2, "[]", KEYS_JSON)
    assert event(added) == (
        "RecordVersionAdded",
        {"recordId": "R-1", "version": 2, "authorised": ["DistrictMSP", "HospAMSP", "HospBMSP"]},
    )
    ledger.ok("HospBMSP", "Grant", "R-1", "HospCMSP")
    assert "HospCMSP" in ledger.ok("HospCMSP", "GetRecord", "R-1")["authorised"]
    ledger.ok("DistrictMSP", "Revoke", "R-1", "HospCMSP")
    refused = ledger.call("HospCMSP", "AddVersion", "R-1", DIGEST, "[]", KEYS_JSON)
    assert (refused.status, refused.message) == (403, "HospCMSP is not authorised for record R-1")
    actions = [
        (e["action"], e["org"]) for e in ledger.ok("CityMSP", "AccessLog", "R-1", role="auditor")
    ]
    assert actions == [("grant", "HospBMSP"), ("revoke", "DistrictMSP")]


@pytest.mark.parametrize(
    ("caller", "args", "status", "message"),
    [
        pytest.param("HospDMSP", ["AddVersion", "R-1", DIGEST2, "[]", KEYS_JSON], 403, "HospDMSP is not authorised for record R-1", id="an unauthorised hospital cannot write a version"),
        pytest.param("HospDMSP", ["Grant", "R-1", "HospDMSP"], 403, "HospDMSP is not authorised for record R-1", id="nobody grants themselves access"),
        pytest.param("HospBMSP", ["Revoke", "R-1", "HospAMSP"], 403, "only HospAMSP or its regulator may revoke", id="only the owner or its regulator revokes"),
        pytest.param("HospAMSP", ["Revoke", "R-1", "DistrictMSP"], 409, "cannot lose access", id="the regulator always keeps access"),
        pytest.param("HospAMSP", ["RegisterRecord", "R-2", "Zhang San 320102", DIGEST, "[]", "[]"], 400, "patientRef must be a pseudonym", id="an identity is refused as patient reference"),
        pytest.param("HospAMSP", ["RegisterRecord", "R-2", PATIENT, "plaintext", "[]", "[]"], 400, "digest must be the SHA-256", id="only a hash goes on the ledger"),
        pytest.param("HospAMSP", ["RegisterRecord", "R-1", PATIENT, DIGEST, "[]", "[]"], 409, "record R-1 already exists", id="record ids are unique"),
        pytest.param("HospAMSP", ["RegisterRecord", "R-2", PATIENT, DIGEST, "[]", '["Outsider"]'], 404, "Outsider not a member of channel alliance", id="only channel members are authorised"),
        pytest.param("HospBMSP", ["AddVersion", "R-1", DIGEST2, "[]", json.dumps({"HospBMSP": DIGEST})], 400, "keys must commit one wrapped key for each authorised organisation", id="a version commits every authorised organisation's wrapped key"),
        pytest.param("HospAMSP", ["RegisterRecord", "R-2", PATIENT, DIGEST, "[]", json.dumps({"HospAMSP": DIGEST})], 400, "must be sealed for DistrictMSP too", id="the package is sealed for the regulator too"),
        pytest.param("HospAMSP", ["RegisterRecord", "R-2", PATIENT, DIGEST, "[]", json.dumps(dict.fromkeys(PARTIES, "k"))], 400, "SHA-256 commitment", id="a commitment is a SHA-256"),
        pytest.param("HospBMSP", ["GrantWithKey", "R-1", "HospCMSP", "not-a-hash"], 400, "commitment must be a SHA-256", id="a grant commits a SHA-256"),
        pytest.param("HospDMSP", ["RequestErasure", PATIENT], 403, "HospDMSP holds no record of this patient", id="a non-holder hospital cannot file an erasure"),
        pytest.param("CityMSP", ["RequestErasure", PATIENT], 403, "CityMSP holds no record of this patient", id="nor a regulator that supervises no holder"),
        pytest.param("HospAMSP", ["RequestErasure", "00" * 16], 403, "HospAMSP holds no record of this patient", id="no erasure for a patient without records"),
        pytest.param("HospBMSP", ["ConfirmErasure", "R-1"], 409, "record R-1 is not erased", id="no receipt before the erasure"),
        pytest.param("HospBMSP", ["LogAccess", "R-1", "7", "fetch"], 404, "has versions 1 to 1", id="access to a version that does not exist"),
        pytest.param("HospBMSP", ["LogAccess", "R-1", "1", "print"], 400, "action must be one of fetch, decrypt", id="access actions are fetch and decrypt"),
    ],
)  # fmt: skip
def test_refusals_say_why_and_write_nothing(
    ledger: Ledger, caller: str, args: list[str], status: int, message: str
) -> None:
    before = dict(ledger.state.data)
    result = ledger.call(caller, *args)
    assert result.status == status
    assert message in result.message
    assert ledger.state.data == before


def test_access_events_of_two_hospitals_never_conflict(ledger: Ledger) -> None:
    first = ledger.call("HospBMSP", "LogAccess", "R-1", "1", "fetch")
    second = ledger.call("DistrictMSP", "LogAccess", "R-1", "1", "decrypt")
    assert first.status == second.status == 200
    log = ledger.ok("CityMSP", "AccessLog", "R-1", role="auditor")
    assert [(e["org"], e["action"], e["version"]) for e in log] == [
        ("HospBMSP", "fetch", 1),
        ("DistrictMSP", "decrypt", 1),
    ]


def test_erasure_needs_the_requesting_hospitals_regulator(ledger: Ledger) -> None:
    ledger.ok("HospAMSP", "RequestErasure", PATIENT)
    refused = ledger.call("CityMSP", "ApproveErasure", PATIENT)
    assert (refused.status, refused.message) == (
        403,
        "only the regulator of HospAMSP may approve this erasure",
    )
    approved = ledger.call("DistrictMSP", "ApproveErasure", PATIENT)
    assert approved.status == 200, approved.message
    assert event(approved) == ("ErasureApproved", {"patientRef": PATIENT, "records": ["R-1"]})
    record = ledger.ok("CityMSP", "GetRecord", "R-1")
    assert record["erased"] is True
    assert ledger.ok("CityMSP", "GetVersion", "R-1", "1")["digest"] == DIGEST  # proof remains
    gone = ledger.call("HospBMSP", "LogAccess", "R-1", "1", "fetch")
    assert (gone.status, gone.message) == (410, "record R-1 was erased")
    again = ledger.call("HospAMSP", "RegisterRecord", "R-9", PATIENT, DIGEST, "[]", "[]")
    assert again.status == 409


def test_each_version_commits_every_recipients_wrapped_key_and_a_grant_adds_one(
    ledger: Ledger,
) -> None:
    assert ledger.ok("HospDMSP", "GetVersion", "R-1", "1")["keys"] == KEYS
    extra = hashlib.sha256(b"wrapped for HospCMSP").hexdigest()
    granted = ledger.ok("HospBMSP", "GrantWithKey", "R-1", "HospCMSP", extra)
    assert "HospCMSP" in granted["authorised"]
    assert ledger.ok("HospDMSP", "GetVersion", "R-1", "1")["keys"] == {**KEYS, "HospCMSP": extra}
    ledger.ok("HospAMSP", "Revoke", "R-1", "HospCMSP")
    before = dict(ledger.state.data)
    swapped = ledger.call("HospBMSP", "GrantWithKey", "R-1", "HospCMSP", DIGEST)
    assert swapped.status == 409
    assert "a committed key is never replaced" in swapped.message
    assert ledger.state.data == before


def test_an_erasure_request_can_be_withdrawn_or_rejected_with_a_code(ledger: Ledger) -> None:
    requested = ledger.ok("HospAMSP", "RequestErasure", PATIENT)
    assert (requested["requestedBy"], requested["regulator"]) == ("HospAMSP", "DistrictMSP")
    assert ledger.call("HospBMSP", "WithdrawErasure", PATIENT).status == 403
    assert ledger.ok("HospAMSP", "WithdrawErasure", PATIENT)["status"] == "WITHDRAWN"
    assert ledger.ok("DistrictMSP", "RequestErasure", PATIENT)["regulator"] == "DistrictMSP"
    before = dict(ledger.state.data)
    for caller, reason, status in (
        ("HospAMSP", "LEGAL_HOLD", 403),
        ("DistrictMSP", "because", 400),
    ):
        assert ledger.call(caller, "RejectErasure", PATIENT, reason).status == status
    assert ledger.state.data == before
    rejected = ledger.ok("DistrictMSP", "RejectErasure", PATIENT, "LEGAL_HOLD")
    assert (rejected["status"], rejected["reason"]) == ("REJECTED", "LEGAL_HOLD")
    assert ledger.call("DistrictMSP", "ApproveErasure", PATIENT).status == 409
    assert ledger.ok("CityMSP", "GetRecord", "R-1")["erased"] is False
    assert ledger.ok("HospAMSP", "RequestErasure", PATIENT)["status"] == "REQUESTED"


def test_every_holder_files_a_deletion_receipt_once(ledger: Ledger) -> None:
    ledger.ok("HospBMSP", "Grant", "R-1", "HospCMSP")
    ledger.ok("HospAMSP", "Revoke", "R-1", "HospCMSP")  # a revoked holder keeps its copy
    ledger.ok("HospAMSP", "RequestErasure", PATIENT)
    ledger.ok("DistrictMSP", "ApproveErasure", PATIENT)
    assert ledger.call("HospDMSP", "ConfirmErasure", "R-1").status == 403  # never held it
    ledger.ok("HospBMSP", "ConfirmErasure", "R-1")
    assert ledger.call("HospBMSP", "ConfirmErasure", "R-1").status == 409
    report = ledger.ok("CityMSP", "ErasureReceipts", PATIENT)
    assert report == {
        "status": "APPROVED",
        "records": {
            "R-1": {"confirmed": ["HospBMSP"], "pending": ["DistrictMSP", "HospAMSP", "HospCMSP"]}
        },
    }
