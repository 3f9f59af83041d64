"""Requests per second and p99 latency of two hospital requests with 10,000 referrals in the
store: the incoming-referrals page (GET /hospital/incoming, first page of 50) and the FHIR Task
search a HIS polls (GET /fhir/Task?owner=...&status=requested&_count=20).

Run: `.venv/bin/python benchmarks/web_requests.py [--referrals 10000] [--requests 200]`.
An embedded demo alliance (created in a temporary folder; no workflow is run) behind the real
application (`create_app`: sessions, CSRF, security headers, access log), called in process
through FastAPI's TestClient, one request at a time, logged in as TertiaryHospitalB's doctor
(session cookie for the page, an API token for FHIR). The store is seeded directly, not through
the chain: both requests read the hospital's store — the page reads the connector's referral
records (and runs the connector first, which finds no new block), the search reads Task
resources — so 10,000 chain referrals would only have cost hours of set-up. Each referral is one
referral record and one Task (owner TertiaryBMSP, half of them `requested`). Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from medalliance.app.hospital_book import HospitalBook, Referral
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.code_systems import MSP_ID_SYSTEM, REFERRAL_ID_SYSTEM
from medalliance.web.app import create_app
from medalliance.web.backend import WebBackend

PASSWORD = "benchmark password 1"
OWNER, ORIGIN = "TertiaryBMSP", "SecondaryAMSP"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--referrals", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp()) / "net"
    backend = WebBackend.embedded(folder)
    try:
        backend.accounts.add(backend.config, "doctor.tertiaryb", "TertiaryHospitalB", "User1", PASSWORD)  # fmt: skip
        started = time.perf_counter()
        seed(backend.store(OWNER), args.referrals)
        print(f"seeded {args.referrals} referrals in {time.perf_counter() - started:.1f} s")
        app = create_app(backend)
        page, his = TestClient(app), TestClient(app)
        login = page.get("/login")
        token = login.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        page.post("/login", data={"username": "doctor.tertiaryb", "password": PASSWORD,
                                  "csrf_token": token}, follow_redirects=False)  # fmt: skip
        issued = backend.accounts.issue_token("doctor.tertiaryb", "benchmark")
        his.headers["Authorization"] = f"Bearer {issued.token}"
        rows = [
            measure("GET /hospital/incoming", page, "/hospital/incoming", args.requests),
            measure("GET /fhir/Task?owner&status", his,
                    f"/fhir/Task?owner={OWNER}&status=requested&_count=20", args.requests),
        ]  # fmt: skip
    finally:
        backend.close()
    print(f"\n{args.referrals} referrals in the store, {args.requests} requests each, one client")
    print(f"{'request':<30} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, rate, p50, p99 in rows:
        print(f"{name:<30} {rate:>8.1f} {p50:>8.1f} {p99:>8.1f}")


def seed(store: ClinicalStore, count: int) -> None:
    """`count` incoming referrals: the connector's record and the imported Task of each."""
    book = HospitalBook(store)
    with store.transaction():
        for msp, org_id in ((OWNER, "org-owner"), (ORIGIN, "org-origin")):
            store.put({"resourceType": "Organization", "id": org_id, "name": msp,
                       "identifier": [{"system": MSP_ID_SYSTEM, "value": msp}]})  # fmt: skip
        for n in range(count):
            referral_id = f"REF-BENCH-{n:06d}"
            book.note_referral(
                Referral(
                    referral_id,
                    f"V-BENCH-{n:06d}",
                    "incoming",
                    ORIGIN,
                    "UP",
                    f"R-BENCH-{n:06d}",
                    f"{n:064x}",
                    100 + n // 500,
                ),
                "REFERRED" if n % 2 else "ACCEPTED",
            )
            store.put({
                "resourceType": "Task", "id": f"task-{n:06d}",
                "identifier": [{"system": REFERRAL_ID_SYSTEM, "value": referral_id}],
                "status": "requested" if n % 2 else "accepted", "intent": "order",
                "priority": "routine", "authoredOn": "2026-12-01T08:00:00+08:00",
                "requester": {"reference": "Organization/org-origin"},
                "owner": {"reference": "Organization/org-owner"},
            })  # fmt: skip


def measure(name: str, client: TestClient, url: str, count: int) -> tuple[str, float, float, float]:
    """(name, requests/s, p50 ms, p99 ms) of `count` sequential GETs after 5 warm-up ones."""
    for _ in range(5):
        assert client.get(url).status_code == 200, client.get(url).text[:300]
    took = []
    started = time.perf_counter()
    for _ in range(count):
        begin = time.perf_counter()
        client.get(url)
        took.append((time.perf_counter() - begin) * 1000)
    total = time.perf_counter() - started
    ordered = sorted(took)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return name, count / total, statistics.median(took), p99


if __name__ == "__main__":
    main()
