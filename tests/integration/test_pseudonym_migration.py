"""The pseudonym migration on an embedded demo alliance: from shared-key pseudonyms to the
service's, visits re-keyed on the chain by their holder, the database re-keyed, the key deleted."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.networks import DEMO_ALLIANCE

from medalliance.app.alliance_network import EmbeddedAlliance
from medalliance.app.hospital_db import HospitalDatabase
from medalliance.app.pseudonym_migration import migrate_pseudonyms
from medalliance.app.pseudonyms import pseudonym_client
from medalliance.errors import ContractError
from medalliance.node.bootstrap import LEGACY_PSEUDONYM_KEY
from medalliance.node.config import load_network_config
from medalliance.node.embedded import EmbeddedNetwork
from medalliance.privacy.pseudonym import normalise

A, B = "SecondaryAMSP", "TertiaryAMSP"
ID_NUMBER = "11010519491231002X"
NOW = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)


@pytest.fixture
def alliance(tmp_path: Path) -> Iterator[EmbeddedAlliance]:
    with EmbeddedNetwork.open(load_network_config(DEMO_ALLIANCE), tmp_path / "net") as network:
        alliance = EmbeddedAlliance(network, "alliance")
        yield alliance
        alliance.close()


def legacy_ref(key: bytes, number: str) -> str:
    """A pseudonym as earlier versions made it: HMAC-SHA256 under the shared alliance key."""
    message = b"\x00".join(
        (
            b"medalliance/patient-pseudonym/v1",
            b"resident-id",
            normalise("resident-id", number).encode(),
        )
    )
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def test_a_hospital_migrates_its_patients_and_deletes_the_old_key(
    alliance: EmbeddedAlliance, tmp_path: Path
) -> None:
    old_key = secrets.token_bytes(32)
    key_file = alliance.layout.org_dir(A) / LEGACY_PSEUDONYM_KEY
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_bytes(old_key)
    old = legacy_ref(old_key, ID_NUMBER)
    db = HospitalDatabase.open(tmp_path / "a.db")
    db.add_patient(old, name="张三", sex="M", birth_date="1949-12-31", id_type="resident-id",
                   id_number=ID_NUMBER)  # fmt: skip
    db.add_visit("V-1", old, "2026-11-29")
    db.add_visit("V-LOCAL", old, "2026-11-30")  # never registered on the chain
    alliance.submit(A, "Clerk1", "visit", "RegisterVisit", "V-1", old, A)
    client = pseudonym_client(alliance, A, "Clerk1", tmp_path / "a.db")

    done = migrate_pseudonyms(alliance, A, "Clerk1", db, client, NOW)

    new = pseudonym_client(alliance, B, "User1").pseudonym("resident-id", ID_NUMBER)
    assert (done.patients, done.unchanged, done.key_deleted) == (1, 0, True)
    assert (done.visits_moved, done.visits_elsewhere) == (("V-1",), ("V-LOCAL",))
    visit = json.loads(alliance.evaluate(A, "Clerk1", "visit", "GetVisit", "V-1"))
    assert (visit["patientRef"], visit["formerPatientRefs"]) == (new, [old])
    assert db.visits_of(new) == ["V-1", "V-LOCAL"]
    assert db.visits_of(old) == []
    assert db.former_refs(new) == [old]
    assert not key_file.exists()
    # a second run changes nothing and asks the service for nothing (the cache knows him)
    asked = client.evaluations
    again = migrate_pseudonyms(alliance, A, "Clerk1", db, client, NOW)
    assert (again.patients, again.unchanged, again.visits_moved) == (0, 1, ())
    assert client.evaluations == asked
    client.close()
    db.close()


def test_only_the_holding_hospital_re_keys_a_visit(alliance: EmbeddedAlliance) -> None:
    old = "ab" * 16
    alliance.submit(A, "Clerk1", "visit", "RegisterVisit", "V-2", old, A)
    with pytest.raises(ContractError, match="patient of visit V-2 is at SecondaryAMSP"):
        alliance.submit(B, "User1", "visit", "MovePatientRef", "V-2", old, "cd" * 16)
    visit = json.loads(alliance.evaluate(A, "Clerk1", "visit", "GetVisit", "V-2"))
    assert visit["patientRef"] == old
    assert "formerPatientRefs" not in visit
