"""How fast a hospital's connector writes received referrals into its clinical store.

Run: `.venv/bin/python benchmarks/connector_import.py [--postgres URL] [--referrals 60]`.
PostgreSQL is measured when `--postgres` or MEDALLIANCE_TEST_POSTGRES gives a server URL (a
schema of its own, dropped afterwards). Each referral is the demo admission's BSeR Bundle
(Task, ServiceRequest, reduced Patient, two Organizations, Encounter, two Conditions, two
Observations, a DiagnosticReport with an image), read and checked by `read_referral_bundle`
beforehand, then imported by `app/referral_import.import_referral` — the store import, the
Provenance, the referral record, the quarantine release: one transaction each, as the connector
does. No chain, no network, no decryption: the figure is the store side. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import time
from pathlib import Path

from medalliance.app.demo_records import admission_bundle
from medalliance.app.hospital_book import Referral
from medalliance.app.referral_import import import_referral
from medalliance.app.referral_packages import ReferralDraft, build_from_store, bundle_bytes
from medalliance.hospital.bundle_import import import_bundle
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.identifiers import PSEUDONYM_SYSTEM, with_identifier
from medalliance.hospital.referral_bundle import ReferralPackage, read_referral_bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("MEDALLIANCE_TEST_POSTGRES"))
    parser.add_argument("--referrals", type=int, default=60)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    packages = _packages(folder, args.referrals)
    targets: list[tuple[str, str | Path, str]] = [("sqlite", folder / "target.db", "hospital")]
    if args.postgres:
        targets.append(("postgresql", args.postgres, f"bench_{secrets.token_hex(4)}"))
    for label, url, schema in targets:
        store = ClinicalStore.open(url, schema=schema)
        try:
            took = _import_all(store, packages)
        finally:
            store.close()
            if label == "postgresql":
                _drop_schema(str(url), schema)
        resources = sum(len(p.bundle["entry"]) + 1 for p in packages)  # + the Provenance
        print(
            f"{label}: {len(packages)} referrals in {took:.2f} s = {len(packages) / took:.1f} "
            f"referrals/s, {resources / took:.0f} resources/s"
        )


def _packages(folder: Path, count: int) -> list[ReferralPackage]:
    origin = ClinicalStore.open(folder / "origin.db")
    import_bundle(origin, admission_bundle("V-1", "2026-11-29", patient_id="p-1"))
    origin.put(with_identifier(origin.get("Patient", "p-1"), PSEUDONYM_SYSTEM, "0f" * 16))
    packages = []
    for i in range(count):
        draft = ReferralDraft(f"REF-{i}", "TertiaryAMSP", encounter_id="v-1-enc")
        built = build_from_store(origin, draft, from_org="SecondaryAMSP")
        packages.append(read_referral_bundle(bundle_bytes(built.bundle), referral_id=f"REF-{i}"))
    origin.close()
    return packages


def _import_all(store: ClinicalStore, packages: list[ReferralPackage]) -> float:
    start = time.perf_counter()
    for i, package in enumerate(packages):
        referral = Referral(f"REF-{i}", "V-1", "incoming", "SecondaryAMSP", "UP", f"R-{i}",
                            "ab" * 32, i)  # fmt: skip
        import_referral(store, referral, package, channel="alliance",
                        recorded="2026-12-03T12:00:00+00:00")  # fmt: skip
    return time.perf_counter() - start


def _drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
