"""A caller's id spelt as Fabric's chaincode libraries spell it (`x509::subject::issuer`)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from medalliance.identity.ca import CertificateAuthority
from medalliance.identity.client_id import IDS_KEPT, _client_id, client_id, distinguished_name

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _name(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param(
            _name(
                (NameOID.COUNTRY_NAME, "US"),
                (NameOID.STATE_OR_PROVINCE_NAME, "California"),
                (NameOID.LOCALITY_NAME, "San Francisco"),
                (NameOID.ORGANIZATIONAL_UNIT_NAME, "client"),
                (NameOID.COMMON_NAME, "User1@org1.example.com"),
            ),
            "CN=User1@org1.example.com,OU=client,L=San Francisco,ST=California,C=US",
            id="cryptogen's user: most specific first",
        ),
        pytest.param(
            _name((NameOID.COMMON_NAME, "x"), (NameOID.COUNTRY_NAME, "CN")),
            "CN=x,C=CN",
            id="the order is Go's, not the certificate's",
        ),
        pytest.param(
            _name(
                (NameOID.ORGANIZATIONAL_UNIT_NAME, "client"),
                (NameOID.ORGANIZATIONAL_UNIT_NAME, "org1"),
                (NameOID.COMMON_NAME, "u"),
            ),
            "CN=u,OU=client+OU=org1",
            id="several OUs join as one RDN, in the certificate's order",
        ),
        pytest.param(
            _name((NameOID.COMMON_NAME, "a,b+c"), (NameOID.ORGANIZATION_NAME, " #lead")),
            "CN=a\\,b\\+c,O=\\ #lead",
            id="special characters and a leading space are escaped",
        ),
        pytest.param(
            _name((NameOID.EMAIL_ADDRESS, "u@example.com"), (NameOID.COMMON_NAME, "u")),
            "CN=u",
            id="attributes Go does not keep are left out",
        ),
    ],
)
def test_distinguished_name(name: x509.Name, expected: str) -> None:
    assert distinguished_name(name) == expected


def test_client_id_names_subject_then_issuer() -> None:
    ca = CertificateAuthority.create("ca.org1.example.com", "org1.example.com", now=NOW)
    issued = ca.issue("User1@org1.example.com", node_ou="client", now=NOW)
    assert client_id(issued.certificate) == (
        "x509::CN=User1@org1.example.com,OU=client,O=org1.example.com,C=CN"
        "::CN=ca.org1.example.com,O=org1.example.com,C=CN"
    )


def test_ids_are_kept_per_certificate_never_shared_between_certificates() -> None:
    """Hostile member: a certificate with another's subject, or from another CA, or a renewal,
    never gets an id computed for another certificate (the cache is keyed by the certificate)."""
    ca = CertificateAuthority.create("ca.org1.example.com", "org1.example.com", now=NOW)
    rogue = CertificateAuthority.create("ca.rogue.example.com", "org1.example.com", now=NOW)
    user = ca.issue("User1@org1.example.com", node_ou="client", now=NOW).certificate
    other = ca.issue("User2@org1.example.com", node_ou="client", now=NOW).certificate
    forged = rogue.issue("User1@org1.example.com", node_ou="client", now=NOW).certificate
    renewed = ca.issue("User1@org1.example.com", node_ou="client", now=NOW).certificate
    first = client_id(user)
    assert client_id(user) == first  # answered from the cache: the same text
    assert client_id(other) == first.replace("User1", "User2")
    assert client_id(forged) == first.replace("::CN=ca.org1", "::CN=ca.rogue")
    # Fabric's id survives a renewal: same names, another certificate, computed on its own.
    assert client_id(renewed) == first
    assert renewed != user


def test_the_kept_ids_are_bounded() -> None:
    assert _client_id.cache_info().maxsize == IDS_KEPT
    ca = CertificateAuthority.create("ca.org1.example.com", "org1.example.com", now=NOW)
    for i in range(3):
        client_id(ca.issue(f"U{i}@org1.example.com", node_ou="client", now=NOW).certificate)
    assert _client_id.cache_info().currsize <= IDS_KEPT
