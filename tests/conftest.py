"""Shared fixtures: identities made on the fly (tests generate their own keys)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from medalliance.identity.ca import CertificateAuthority, NodeOU
from medalliance.identity.msp import Msp, MspManager
from medalliance.identity.signing import Signer

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
