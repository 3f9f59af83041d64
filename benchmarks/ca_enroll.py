"""Fabric CA over HTTPS: registrations and enrolments per second (SQLite, or PostgreSQL).

Run: `.venv/bin/python benchmarks/ca_enroll.py --users 50 [--postgres postgresql://USER@HOST/postgres]`

One CA server (ca/server.py under uvicorn, TLS, in a thread of this process) with a fresh CA key;
one client (ca/client.py) registers `--users` identities, then enrols each once, sequentially, each
enrolment with a new P-256 key and CSR. Client and server share the machine's cores, so the
numbers are those of one operator at a time, not of the server's capacity. With `--postgres` (a
server URL) it creates and drops its own database. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import socket
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import uvicorn
from rich.console import Console
from rich.table import Table

from medalliance.ca import CaStore, FabricCa
from medalliance.ca.client import CaClient
from medalliance.ca.server import create_ca_app
from medalliance.database_url import parse_database_url
from medalliance.identity.ca import CertificateAuthority


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--postgres", default="", help="a PostgreSQL server URL (default SQLite)")
    args = parser.parse_args()
    if not args.postgres:
        with tempfile.TemporaryDirectory() as tmp:
            _run(args.users, f"sqlite:///{tmp}/ca.db")
        return
    name = f"medalliance_bench_{secrets.token_hex(4)}"
    with psycopg.connect(args.postgres, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(args.postgres)
    try:
        _run(args.users, urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, "")))
    finally:
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run(users: int, database: str) -> None:
    now = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        ca_key = CertificateAuthority.create("ca.bench.example.com", "bench.example.com", now=now)
        tlsca = CertificateAuthority.create("tlsca.bench.example.com", "bench.example.com", now=now)
        tls = tlsca.issue("ca.bench", node_ou=None, now=now, sans=("localhost",), server_auth=True)
        (base / "tls.crt").write_bytes(tls.cert_pem)
        (base / "tls.key").write_bytes(tls.key_pem)
        url = parse_database_url(database)
        ca = FabricCa("ca-bench", ca_key, CaStore(url, "ca-bench"))
        ca.bootstrap("admin", "adminpw")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        config = uvicorn.Config(
            create_ca_app(ca), host="127.0.0.1", port=port, log_level="warning",
            ssl_certfile=str(base / "tls.crt"), ssl_keyfile=str(base / "tls.key"),
        )  # fmt: skip
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            client = CaClient(f"https://localhost:{port}", tls_ca_pem=tlsca.cert_pem)
            admin = client.enroll("admin", "adminpw")
            names = [f"user{i}" for i in range(users)]
            started = time.perf_counter()
            given = [client.register(admin, name, role="doctor") for name in names]
            registered = time.perf_counter() - started
            started = time.perf_counter()
            for name, secret in zip(names, given, strict=True):
                client.enroll(name, secret)
            enrolled = time.perf_counter() - started
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            ca.close()
    table = Table(title=f"Fabric CA over HTTPS, {users} users, {url.backend}")
    for column in ("operation", "total s", "per second", "ms each"):
        table.add_column(column)
    for name, seconds in (("register", registered), ("enroll", enrolled)):
        table.add_row(
            name,
            f"{seconds:.2f}",
            f"{users / seconds:.1f}",
            f"{1000 * seconds / users:.1f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
