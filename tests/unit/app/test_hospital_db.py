"""A hospital's own database: what a referral brings is imported whole, once, or not at all."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from medalliance.app.hospital_db import HospitalDatabase, Referral
from medalliance.errors import Conflict, InvalidArgument, NotFound

REF = "0f" * 16
REFERRAL = Referral("REF-1", "V-1", "incoming", "SecondaryAMSP", "UP", "R-1", "tx1", 7)


@pytest.fixture
def origin(tmp_path: Path) -> HospitalDatabase:
    db = HospitalDatabase.open(tmp_path / "origin.db")
    db.add_patient(REF, name="张三", sex="M", birth_date="1949-12-31", id_type="resident-id",
                   id_number="11010519491231002X")  # fmt: skip
    db.add_visit("V-1", REF, "2026-11-29", diagnoses=[("I21.0", "STEMI")],
                 examinations=[("ECG", "ST elevation", "2026-11-29")],
                 images=[("ecg.png", b"\x89PNG...")])  # fmt: skip
    return db


def test_an_exported_visit_imports_whole_at_the_target(
    origin: HospitalDatabase, tmp_path: Path
) -> None:
    clinical, images = origin.export_visit("V-1")
    assert json.loads(clinical)["patient"]["idNumber"] == "11010519491231002X"
    target = HospitalDatabase.open(tmp_path / "target.db")
    target.import_referral(REFERRAL, clinical, images)
    assert target.visit_summary("V-1") == {
        "visitNo": "V-1", "patientRef": REF, "source": "referral:REF-1", "name": "张三",
        "sex": "M", "diagnoses": 1, "examinations": 1, "images": 1,
    }  # fmt: skip
    assert target.export_visit("V-1") == (clinical, images)
    assert [r["status"] for r in target.referrals()] == ["REFERRED"]


def test_a_referral_is_imported_once(origin: HospitalDatabase, tmp_path: Path) -> None:
    target = HospitalDatabase.open(tmp_path / "target.db")
    target.import_referral(REFERRAL, *origin.export_visit("V-1"))
    with pytest.raises(Conflict, match="referral REF-1 was already imported"):
        target.import_referral(REFERRAL, *origin.export_visit("V-1"))
    assert target.visit_summary("V-1")["diagnoses"] == 1


def test_facts_already_held_are_not_repeated(origin: HospitalDatabase, tmp_path: Path) -> None:
    """A referral back brings the origin's own findings with the new ones."""
    target = HospitalDatabase.open(tmp_path / "target.db")
    target.import_referral(REFERRAL, *origin.export_visit("V-1"))
    target.add_details("V-1", diagnoses=[("Z95.5", "Coronary stent in place")])
    back = Referral("REF-2", "V-1", "incoming", "TertiaryAMSP", "DOWN", "R-2", "tx2", 9)
    origin.import_referral(back, *target.export_visit("V-1"))
    held = origin.visit_summary("V-1")
    assert (held["diagnoses"], held["examinations"], held["images"]) == (2, 1, 1)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.pop("patient"),
        lambda p: p["patient"].update(idNumber=None),
        lambda p: p["diagnoses"].append({"code": "I10"}),
        lambda p: p.update(schema="other/9"),
    ],
    ids=["no patient", "no identity number", "a diagnosis without a name", "another schema"],
)
def test_a_malformed_package_writes_nothing(
    origin: HospitalDatabase, tmp_path: Path, mutate: object
) -> None:
    clinical, images = origin.export_visit("V-1")
    package = json.loads(clinical)
    mutate(package)  # type: ignore[operator]
    path = tmp_path / "target.db"
    target = HospitalDatabase.open(path)
    with pytest.raises(InvalidArgument, match="clinical package"):
        target.import_referral(REFERRAL, json.dumps(package).encode(), images)
    tables = ("patients", "visits", "diagnoses", "examinations", "images", "referrals")
    with sqlite3.connect(path) as raw:
        assert [raw.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables] == [0] * 6


def test_a_failure_inside_the_import_rolls_it_back(
    origin: HospitalDatabase, tmp_path: Path
) -> None:
    clinical, _ = origin.export_visit("V-1")
    target = HospitalDatabase.open(tmp_path / "target.db")
    with pytest.raises(sqlite3.Error):
        target.import_referral(REFERRAL, clinical, [("ecg.png", None)])  # type: ignore[list-item]
    assert not target.has_referral("REF-1")
    with pytest.raises(NotFound):
        target.visit_summary("V-1")


def test_the_checkpoint_survives_reopening(tmp_path: Path) -> None:
    db = HospitalDatabase.open(tmp_path / "h.db")
    assert db.last_block() == -1
    db.set_last_block(12)
    db.close()
    assert HospitalDatabase.open(tmp_path / "h.db").last_block() == 12


def test_an_erased_record_leaves_no_imported_copy_and_keeps_own_data(
    origin: HospitalDatabase, tmp_path: Path
) -> None:
    target = HospitalDatabase.open(tmp_path / "target.db")
    target.add_patient("aa" * 16, name="李四", sex="F", birth_date="1960-01-01",
                       id_type="resident-id", id_number="110105196001010028")  # fmt: skip
    target.add_visit("V-OWN", "aa" * 16, "2026-11-30", diagnoses=[("J18.9", "pneumonia")])
    target.import_referral(REFERRAL, *origin.export_visit("V-1"))
    assert target.erase_imported("R-other") == 0
    assert target.erase_imported("R-1") == 1
    with pytest.raises(NotFound):
        target.visit_summary("V-1")
    assert target.visit_summary("V-OWN")["diagnoses"] == 1  # the hospital's own data stays
    assert [r["referralId"] for r in target.referrals()] == ["REF-1"]  # the trace stays
    target.close()
    disk = b"".join(p.read_bytes() for p in tmp_path.glob("target.db*"))
    assert "张三".encode() not in disk
    assert b"11010519491231002X" not in disk
    assert b"\x89PNG..." not in disk
