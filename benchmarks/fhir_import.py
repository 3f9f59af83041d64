"""Import throughput of the hospital's FHIR clinical store, on SQLite and on PostgreSQL.

Run: `.venv/bin/python benchmarks/fhir_import.py [--postgres URL] [--rounds 5]`. PostgreSQL is
measured when `--postgres` or MEDALLIANCE_TEST_POSTGRES gives a server URL (the benchmark uses
a schema of its own there and drops it). Each round imports a generated 300-resource
transaction bundle (30 patients × Patient, Encounter, Condition, 4 Observations,
MedicationRequest, Procedure, DiagnosticReport; urn:uuid references) into an empty store, then
imports it again (everything unchanged: the idempotence check reads and compares each
resource). Pseudonyms are the alliance's OPRF evaluated locally under a key made here: no
network, so the figure is the store's (validation, reference resolution, index, commit), not the
pseudonym service's. Prints the best round's resources/s; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from medalliance.hospital.bundle_import import import_bundle
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.identifiers import MEDICAL_CARD_SYSTEM
from medalliance.privacy import oprf
from medalliance.privacy.pseudonym import oprf_input, pseudonym_of

PATIENTS = 30
LOINC = "http://loinc.org"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("MEDALLIANCE_TEST_POSTGRES", ""),
                        help="a PostgreSQL database URL (default: $MEDALLIANCE_TEST_POSTGRES)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=5, help="best of this many rounds")
    args = parser.parse_args()
    bundle = generated_bundle(PATIENTS)
    count = len(bundle["entry"])
    key = oprf.generate_key()

    def pseudonym(id_type: str, number: str) -> str:
        return pseudonym_of(oprf.evaluate(key, oprf_input(id_type, number)))

    table = Table(title=f"FHIR bundle import, {count} resources, best of {args.rounds}")
    for column in ("backend", "first import res/s", "ms", "re-import (unchanged) res/s", "ms"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    with tempfile.TemporaryDirectory() as tmp:
        backends: list[tuple[str, Callable[[int], ClinicalStore]]] = [
            ("SQLite (WAL)", lambda n: ClinicalStore.open(Path(tmp) / f"store-{n}.db"))
        ]
        schemas: list[str] = []
        if args.postgres:

            def open_postgres(n: int) -> ClinicalStore:
                schemas.append(f"bench_fhir_{secrets.token_hex(4)}_{n}")
                return ClinicalStore.open(args.postgres, schema=schemas[-1])

            backends.append(("PostgreSQL (JSONB)", open_postgres))
        try:
            for name, opener in backends:
                first, again = measure(opener, bundle, pseudonym, args.rounds)
                table.add_row(name, f"{count / first:,.0f}", f"{first * 1000:.0f}",
                              f"{count / again:,.0f}", f"{again * 1000:.0f}")  # fmt: skip
        finally:
            drop_schemas(args.postgres, schemas)
    Console().print(table)
    if not args.postgres:
        Console().print("PostgreSQL not measured: pass --postgres URL")


def measure(
    opener: Callable[[int], ClinicalStore],
    bundle: dict[str, Any],
    pseudonym: Callable[[str, str], str],
    rounds: int,
) -> tuple[float, float]:
    """Best seconds of (import into an empty store, the same import again)."""
    firsts, agains = [], []
    for n in range(rounds):
        store = opener(n)
        try:
            started = time.perf_counter()
            report = import_bundle(store, bundle, pseudonym=pseudonym)
            firsts.append(time.perf_counter() - started)
            assert len(report.created) == len(bundle["entry"])
            started = time.perf_counter()
            report = import_bundle(store, bundle, pseudonym=pseudonym)
            agains.append(time.perf_counter() - started)
            assert len(report.unchanged) == len(bundle["entry"])
        finally:
            store.close()
    return min(firsts), min(agains)


def drop_schemas(url: str, schemas: list[str]) -> None:
    if not schemas:
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def generated_bundle(patients: int) -> dict[str, Any]:
    """A transaction bundle of `patients` × 10 resources with urn:uuid references."""
    entries = []
    for n in range(patients):
        pid, eid = _uid(f"p{n}"), _uid(f"e{n}")
        subject, encounter = {"reference": f"urn:uuid:{pid}"}, {"reference": f"urn:uuid:{eid}"}
        observations = [_uid(f"o{n}-{k}") for k in range(4)]
        resources: list[dict[str, Any]] = [
            {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1970-01-01",
             "identifier": [{"system": MEDICAL_CARD_SYSTEM, "value": f"MC-{n:06d}"}],
             "name": [{"family": "张", "given": [f"{n}"]}]},
            {"resourceType": "Encounter", "id": eid, "status": "finished",
             "class": {"code": "AMB"}, "subject": subject,
             "period": {"start": "2024-03-05T09:00:00+08:00"}},
            {"resourceType": "Condition", "id": _uid(f"c{n}"), "subject": subject,
             "encounter": encounter, "onsetDateTime": "2024-03-05",
             "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]}},
            *[
                {"resourceType": "Observation", "id": oid, "status": "final", "subject": subject,
                 "encounter": encounter, "effectiveDateTime": "2024-03-05T09:05:00+08:00",
                 "code": {"coding": [{"system": LOINC, "code": f"8867-{k}"}]},
                 "valueQuantity": {"value": 70 + k, "unit": "/min"}}
                for k, oid in enumerate(observations)
            ],
            {"resourceType": "MedicationRequest", "id": _uid(f"m{n}"), "status": "active",
             "intent": "order", "subject": subject, "encounter": encounter,
             "medicationCodeableConcept": {"text": "lisinopril 10 mg"}},
            {"resourceType": "Procedure", "id": _uid(f"pr{n}"), "status": "completed",
             "subject": subject, "encounter": encounter, "code": {"text": "ECG"}},
            {"resourceType": "DiagnosticReport", "id": _uid(f"r{n}"), "status": "final",
             "subject": subject, "encounter": encounter, "code": {"text": "vital signs"},
             "result": [{"reference": f"urn:uuid:{oid}"} for oid in observations]},
        ]  # fmt: skip
        entries += [
            {"fullUrl": f"urn:uuid:{r['id']}", "resource": r,
             "request": {"method": "POST", "url": r["resourceType"]}}
            for r in resources
        ]  # fmt: skip
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _uid(seed: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"medalliance-benchmark:{seed}"))


if __name__ == "__main__":
    main()
