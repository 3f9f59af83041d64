"""Only a consenter's own client TLS certificate opens an ordering node's consensus service."""

from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from tests.conftest import NOW

from medalliance.identity.ca import CertificateAuthority
from medalliance.ledger.commit_certificate import Consenter
from medalliance.node.consenter_auth import PRESENTED_KEPT, _der, consenter_of, msp_of

ORDERER_TLS_CA = CertificateAuthority.create("tlsca.example.com", "OrdererMSP", now=NOW)
MEMBER_TLS_CA = CertificateAuthority.create("tlsca.org1.example.com", "Org1MSP", now=NOW)


def tls_cert(ca: CertificateAuthority, name: str) -> bytes:
    return ca.issue(name, node_ou=None, now=NOW, server_auth=True, client_auth=True).cert_pem


ORDERER0 = tls_cert(ORDERER_TLS_CA, "orderer0.example.com")
ORDERER1 = tls_cert(ORDERER_TLS_CA, "orderer1.example.com")
CONSENTERS = [
    Consenter(1, "orderer0.example.com", "localhost", 7050, "OrdererMSP", b"id0", ORDERER0, ORDERER0),
    Consenter(2, "orderer1.example.com", "localhost", 7052, "OrdererMSP", b"id1", ORDERER1, ORDERER1),
]  # fmt: skip
TLS_CAS = {"OrdererMSP": ORDERER_TLS_CA.cert_pem, "Org1MSP": MEMBER_TLS_CA.cert_pem}


def test_a_consenter_is_known_by_its_client_certificate() -> None:
    found = consenter_of(CONSENTERS, ORDERER1)
    assert found is not None
    assert found.name == "orderer1.example.com"


def test_pem_line_breaks_do_not_matter() -> None:
    reflowed = ORDERER0.replace(b"\n", b"\r\n")
    found = consenter_of(CONSENTERS, reflowed)
    assert found is not None
    assert found.name == "orderer0.example.com"


@pytest.mark.parametrize(
    "presented",
    [
        pytest.param(tls_cert(MEMBER_TLS_CA, "peer0.org1.example.com"), id="a member peer's cert"),
        pytest.param(
            tls_cert(MEMBER_TLS_CA, "orderer0.example.com"),
            id="a member's cert named like a consenter",
        ),
        pytest.param(
            tls_cert(ORDERER_TLS_CA, "orderer0.example.com"),
            id="another cert of the ordering org with a consenter's name",
        ),
        pytest.param(tls_cert(ORDERER_TLS_CA, "Admin@example.com"), id="the ordering org's admin"),
        pytest.param(None, id="no client certificate"),
        pytest.param(b"not a certificate", id="garbage"),
    ],
)
def test_anyone_else_is_not_a_consenter(presented: bytes | None) -> None:
    assert consenter_of(CONSENTERS, presented) is None


def test_a_consenter_without_a_recorded_tls_certificate_matches_nobody() -> None:
    legacy = [Consenter(1, "orderer0.example.com", "localhost", 7050, "OrdererMSP", b"id0")]
    assert consenter_of(legacy, ORDERER0) is None


@pytest.mark.parametrize(
    ("presented", "msp_id"),
    [
        pytest.param(tls_cert(MEMBER_TLS_CA, "peer0"), "Org1MSP", id="issued by Org1's TLS CA"),
        pytest.param(ORDERER0, "OrdererMSP", id="issued by the ordering org's TLS CA"),
        pytest.param(b"junk", "unknown", id="not a certificate"),
    ],
)
def test_the_log_names_the_msp_that_issued_the_callers_certificate(
    presented: bytes, msp_id: str
) -> None:
    assert msp_of(presented, TLS_CAS) == msp_id


def one_byte_off(pem: bytes) -> bytes:
    """The same certificate with the last byte of its signature changed: it still parses."""
    der = bytearray(x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER))
    der[-1] ^= 0x01
    body = base64.encodebytes(bytes(der))
    return b"-----BEGIN CERTIFICATE-----\n" + body + b"-----END CERTIFICATE-----\n"


def test_a_certificate_one_byte_off_a_remembered_consenter_is_refused() -> None:
    assert consenter_of(CONSENTERS, ORDERER0) is not None  # now remembered
    forged = one_byte_off(ORDERER0)
    x509.load_pem_x509_certificate(forged)  # a well-formed certificate, not garbage
    assert consenter_of(CONSENTERS, forged) is None
    assert consenter_of(CONSENTERS, forged) is None  # and again, from the memo
    assert consenter_of(CONSENTERS, ORDERER0) is not None


def test_callers_certificates_cannot_grow_the_memo_without_bound() -> None:
    for i in range(PRESENTED_KEPT * 4):  # a flood of distinct certificates
        assert consenter_of(CONSENTERS, b"certificate %d" % i) is None
    assert _der.cache_info().currsize <= PRESENTED_KEPT
    found = consenter_of(CONSENTERS, ORDERER1)  # evicted or not, still recognised
    assert found is not None
    assert found.name == "orderer1.example.com"


def test_a_changed_consenter_set_is_looked_up_afresh() -> None:
    assert consenter_of(CONSENTERS, ORDERER1) is not None
    assert consenter_of(CONSENTERS[:1], ORDERER1) is None  # orderer1 removed from the set
