"""The clinical store an organisation's connector keeps: a hospital's is the one `hospital
import` fills (app/hospital_import.py: `DIR/hospitals/<MSP>.db`, the organisation's
`hospital_database`, or `--db`); a regulator, which receives no referral but files deletion
receipts, keeps its connector's bookkeeping at the same default place."""

from __future__ import annotations

from pathlib import Path

from medalliance.app.hospital_import import open_hospital_store
from medalliance.database_url import DatabaseUrl, parse_database_url, schema_name
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.config import HOSPITAL_TYPES


def default_location(directory: Path, msp_id: str) -> Path:
    return directory / "hospitals" / f"{msp_id}.db"


def open_store_of(layout: NetworkLayout, org: str, db: str | None = None) -> ClinicalStore:
    """`org`'s store (created if absent); `db` a path (relative to the network folder) or a
    database URL."""
    organization = layout.config.organization(org)
    if organization.type in HOSPITAL_TYPES:
        return open_hospital_store(layout, org, db)
    if db:
        url = parse_database_url(db, base=layout.directory)
    else:
        url = DatabaseUrl("sqlite", path=default_location(layout.directory, organization.msp_id))
    return ClinicalStore.open(url, schema=schema_name("hospital", organization.msp_id))
