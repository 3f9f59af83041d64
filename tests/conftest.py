"""Shared fixtures: identities made on the fly (tests generate their own keys)."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from medalliance.identity.ca import CertificateAuthority, NodeOU
from medalliance.identity.msp import Msp, MspManager
from medalliance.identity.signing import Signer


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C works in the commands the tests start, however the run was started.

    A background job of a non-interactive shell ignores SIGINT (POSIX), children inherit an
    ignored signal, and Python then never turns SIGINT into KeyboardInterrupt: the tests that
    stop `--follow` commands and servers with Ctrl-C as a user would would wait in vain. A
    handled signal is reset to its default in a child, so handling it here is enough.
    """
    del config
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    _cache_bytecode()


def _cache_bytecode() -> None:
    """The node processes and commands the tests start load our compiled modules.

    The suite starts hundreds of `python -m medalliance` processes. Under
    PYTHONDONTWRITEBYTECODE (set in many container images) each of them compiled our ~100
    modules again: about 1 s of CPU per process, roughly half of a node's start-up. The
    bytecode goes to the `__pycache__` folders Python would use anyway (gitignored).
    """
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
        sys.dont_write_bytecode = False


NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


@dataclass
class Org:
    msp_id: str
    ca: CertificateAuthority

    def signer(
        self,
        name: str,
        ou: NodeOU = "client",
        role: str | None = None,
        now: dt.datetime = NOW,
        valid_days: int = 365,
    ) -> Signer:
        issued = self.ca.issue(
            f"{name}@{self.msp_id}", node_ou=ou, now=now, alliance_role=role, valid_days=valid_days
        )
        return Signer.from_pem(self.msp_id, issued.cert_pem, issued.key_pem)

    @property
    def msp(self) -> Msp:
        return Msp(self.msp_id, (self.ca.certificate,))


def make_org(msp_id: str) -> Org:
    return Org(msp_id, CertificateAuthority.create(f"ca.{msp_id}", msp_id, now=NOW))


@pytest.fixture(scope="session")
def org1() -> Org:
    return make_org("Org1MSP")


@pytest.fixture(scope="session")
def org2() -> Org:
    return make_org("Org2MSP")


@pytest.fixture
def msps(org1: Org, org2: Org) -> MspManager:
    return MspManager([org1.msp, org2.msp])


# --- databases: every store test runs on SQLite and on PostgreSQL (architecture §2) -------------

# A server URL whose role may CREATE DATABASE, e.g. postgresql://medalliance:pw@127.0.0.1/postgres.
# `.ci/run` starts Debian's PostgreSQL and sets it, with MEDALLIANCE_REQUIRE_POSTGRES=1 so that the
# PostgreSQL half of the suite fails instead of skipping there.
POSTGRES_ENV = "MEDALLIANCE_TEST_POSTGRES"


def _postgres_server() -> str:
    server = os.environ.get(POSTGRES_ENV, "")
    if not server:
        reason = f"PostgreSQL tests need {POSTGRES_ENV}=postgresql://USER:PW@HOST/postgres"
        if os.environ.get("MEDALLIANCE_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return server


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    server = _postgres_server()
    name = f"medalliance_test_{secrets.token_hex(6)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(server)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for a store under test: each test using it runs once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
