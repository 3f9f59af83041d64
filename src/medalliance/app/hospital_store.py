"""Where a hospital's clinical store lives: `DIR/hospitals/<MSP>.db` in the network folder by
default, or the database URL the user gives (a file path, or `postgresql://...`, where each
hospital has its own schema so several may share one database)."""

from __future__ import annotations

from pathlib import Path

from medalliance.database_url import parse_database_url, schema_name
from medalliance.hospital.clinical_store import ClinicalStore


def default_location(directory: Path, msp_id: str) -> Path:
    return directory / "hospitals" / f"{msp_id}.db"


def open_hospital_store(
    directory: Path, msp_id: str, db: str | Path | None = None
) -> ClinicalStore:
    """The clinical store of hospital `msp_id` of the network in `directory` (created if
    absent); `db` a database URL or path (relative to the working directory)."""
    if db is None:
        return ClinicalStore.open(default_location(directory, msp_id))
    url = parse_database_url(str(db), base=Path.cwd())
    return ClinicalStore.open(url, schema=schema_name("hospital", msp_id))
