"""CAs issue Fabric-shaped certificates; MSPs judge them by chain, time, revocation and OU."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fabric_protos.msp import identities_pb2, msp_config_pb2, msp_principal_pb2
from hypothesis import given
from hypothesis import strategies as st
from tests.conftest import NOW, Org, make_org

from medalliance.errors import InvalidArgument, InvalidIdentity, MalformedMessage
from medalliance.identity.ca import ATTRIBUTE_EXTENSION_OID, CertificateAuthority, NodeOU
from medalliance.identity.msp import Identity, Msp, MspManager
from medalliance.identity.signing import P256_ORDER, Signer, _length, _tlv, serialize_identity

DAY = dt.timedelta(days=1)


def intermediate_of(
    parent: CertificateAuthority,
    name: str,
    *,
    days: int = 365,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> CertificateAuthority:
    """An intermediate CA signed by `parent` (the CA API only issues end-entity certificates)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Org1MSP"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(parent.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + days * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(serialization.load_pem_private_key(parent.key_pem, None), hashes.SHA256())  # type: ignore[arg-type]
    )
    return CertificateAuthority(cert, key)


def signer_of(ca: CertificateAuthority, name: str, ou: NodeOU | None = "client") -> Signer:
    issued = ca.issue(name, node_ou=ou, now=NOW)
    return Signer.from_pem("Org1MSP", issued.cert_pem, issued.key_pem)


# --- the CA ---------------------------------------------------------------------------------------


def test_a_ca_certificate_is_a_self_signed_p256_ca(org1: Org) -> None:
    cert = org1.ca.certificate
    assert cert.issuer == cert.subject
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert (usage.key_cert_sign, usage.crl_sign) == (True, True)
    assert cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert cert.not_valid_before_utc == NOW - dt.timedelta(minutes=5)


def test_an_issued_certificate_follows_cryptogens_subject_and_fabric_cas_attributes(
    org1: Org,
) -> None:
    issued = org1.ca.issue(
        "doctor1", node_ou="client", now=NOW, alliance_role="doctor", sans=("h.example", "10.0.0.7")
    )
    cert = issued.certificate
    assert [(a.oid, a.value) for a in cert.subject] == [
        (NameOID.COUNTRY_NAME, "CN"),
        (NameOID.ORGANIZATION_NAME, "Org1MSP"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "client"),
        (NameOID.COMMON_NAME, "doctor1"),
    ]
    ext = cert.extensions.get_extension_for_oid(ATTRIBUTE_EXTENSION_OID)
    assert ATTRIBUTE_EXTENSION_OID.dotted_string == "1.2.3.4.5.6.7.8.1"
    assert not ext.critical
    assert isinstance(ext.value, x509.UnrecognizedExtension)
    assert json.loads(ext.value.value) == {"attrs": {"role": "doctor"}}
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = org1.ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["h.example"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.0.0.7"]
    assert "key_pem" not in repr(issued)


def test_tls_usages_are_set_when_asked(org1: Org) -> None:
    cert = org1.ca.issue("peer0", node_ou=None, now=NOW, server_auth=True, client_auth=True)
    usages = cert.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


@pytest.mark.parametrize(
    ("valid_days", "at"),
    [
        pytest.param(0, NOW, id="zero validity is refused"),
        pytest.param(-3, NOW, id="negative validity is refused"),
        pytest.param(365, NOW + 4000 * DAY, id="an expired CA cannot issue"),
    ],
)
def test_bad_issuing_raises_invalid_argument(org1: Org, valid_days: int, at: dt.datetime) -> None:
    with pytest.raises(InvalidArgument):
        org1.ca.issue("x", node_ou="client", now=at, valid_days=valid_days)


def test_a_ca_with_zero_validity_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        CertificateAuthority.create("ca", "Org", now=NOW, valid_days=0)


def test_a_certificate_never_outlives_its_ca() -> None:
    ca = CertificateAuthority.create("ca", "Org", now=NOW, valid_days=10)
    cert = ca.issue("x", node_ou="client", now=NOW, valid_days=365).certificate
    assert cert.not_valid_after_utc == ca.certificate.not_valid_after_utc


def test_a_ca_loads_back_and_hides_its_key(org1: Org) -> None:
    again = CertificateAuthority.load(org1.ca.cert_pem, org1.ca.key_pem)
    assert again.certificate == org1.ca.certificate
    assert "PRIVATE" not in repr(again)
    with pytest.raises(InvalidArgument):
        CertificateAuthority.load(org1.ca.cert_pem, make_org("X").ca.key_pem)


# --- validation -----------------------------------------------------------------------------------


def test_identity_carries_msp_ou_alliance_role_and_fabric_id(org1: Org, msps: MspManager) -> None:
    doctor = org1.signer("doctor", role="doctor")
    identity = msps.deserialize(doctor.serialized_identity, at=NOW)
    assert (identity.msp_id, identity.node_ou, identity.alliance_role, identity.is_admin) == (
        "Org1MSP",
        "client",
        "doctor",
        False,
    )
    der = x509.load_pem_x509_certificate(doctor.cert_pem).public_bytes(serialization.Encoding.DER)
    assert identity.id_hash == hashlib.sha256(der).digest()
    assert identity.serialized == doctor.serialized_identity
    assert identity.verify(doctor.sign(b"m"), b"m")


@pytest.mark.parametrize(
    ("at", "message"),
    [
        pytest.param(NOW + 400 * DAY, "expired at", id="an expired certificate is refused"),
        pytest.param(NOW - DAY, "is not valid before", id="a not-yet-valid certificate is refused"),
    ],
)
def test_validity_period(org1: Org, msps: MspManager, at: dt.datetime, message: str) -> None:
    with pytest.raises(InvalidIdentity, match=f"certificate of CN=bob@Org1MSP {message}"):
        msps.deserialize(org1.signer("bob").serialized_identity, at=at)


def test_the_validity_period_is_checked_on_every_call_despite_the_cache(
    org1: Org, msps: MspManager
) -> None:
    carol = org1.signer("carol")
    serialized = carol.serialized_identity
    assert msps.deserialize(serialized, at=NOW).msp_id == "Org1MSP"
    with pytest.raises(InvalidIdentity, match="expired"):
        msps.deserialize(serialized, at=NOW + 400 * DAY)
    assert msps.deserialize(serialized, at=NOW).msp_id == "Org1MSP"
    # The remembered validity window has the bounds of the certificate itself, both included.
    cert = x509.load_pem_x509_certificate(carol.cert_pem)
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    assert msps.deserialize(serialized, at=start).msp_id == "Org1MSP"
    assert msps.deserialize(serialized, at=end).msp_id == "Org1MSP"
    with pytest.raises(InvalidIdentity, match="expired"):
        msps.deserialize(serialized, at=end + dt.timedelta(seconds=1))
    with pytest.raises(InvalidIdentity, match="is not valid before"):
        msps.deserialize(serialized, at=start - dt.timedelta(seconds=1))


def test_a_certificate_from_a_foreign_ca_is_refused(msps: MspManager) -> None:
    impostor = make_org("Org1MSP").signer("mallory")  # same MSP id, another CA
    for _ in range(2):  # the cached verdict says the same
        with pytest.raises(InvalidIdentity, match="not issued by a CA of Org1MSP"):
            msps.deserialize(impostor.serialized_identity, at=NOW)


@pytest.mark.parametrize(
    ("cert_pem", "message"),
    [
        pytest.param(b"not a certificate", "not valid PEM", id="garbage is refused"),
        pytest.param(None, "is a CA", id="a CA certificate is not an identity"),
    ],
)
def test_unusable_certificates(org1: Org, cert_pem: bytes | None, message: str) -> None:
    with pytest.raises(InvalidIdentity, match=message):
        org1.msp.validate(cert_pem or org1.ca.cert_pem, at=NOW)


@pytest.mark.parametrize(
    ("ou", "message"),
    [
        pytest.param(None, "exactly one of the OUs", id="no node OU is refused"),
        pytest.param("doctor", "exactly one of the OUs", id="an unknown OU is refused"),
    ],
)
def test_node_ous_are_required(org1: Org, ou: str | None, message: str) -> None:
    issued = org1.ca.issue("n", node_ou=ou, now=NOW)  # type: ignore[arg-type]
    with pytest.raises(InvalidIdentity, match=message):
        org1.msp.validate(issued.cert_pem, at=NOW)


def test_without_node_ous_any_ou_is_a_member(org1: Org) -> None:
    issued = org1.ca.issue("n", node_ou=None, now=NOW)
    msp = Msp("Org1MSP", (org1.ca.certificate,), node_ous_enabled=False)
    assert msp.validate(issued.cert_pem, at=NOW).node_ou is None


def test_an_unknown_msp_and_garbage_are_refused(msps: MspManager) -> None:
    with pytest.raises(InvalidIdentity, match="unknown MSP 'Org9MSP'"):
        msps.deserialize(make_org("Org9MSP").signer("x").serialized_identity, at=NOW)
    with pytest.raises(MalformedMessage):
        msps.deserialize(b"\xff\xff", at=NOW)
    with pytest.raises(InvalidIdentity, match="unknown MSP"):
        msps.get("Org9MSP")
    assert msps.msp_ids == ("Org1MSP", "Org2MSP")


@given(st.binary(max_size=64))
def test_random_serialized_identities_raise_only_typed_errors(data: bytes) -> None:
    with pytest.raises((InvalidIdentity, MalformedMessage)):
        _EMPTY.deserialize(data, at=NOW)


_EMPTY = MspManager([])


def test_a_revoked_certificate_is_refused(org1: Org) -> None:
    victim = org1.signer("lost-laptop")
    serial = x509.load_pem_x509_certificate(victim.cert_pem).serial_number
    crl_pem = org1.ca.revoke([serial], now=NOW)
    crl = x509.load_pem_x509_crl(crl_pem)
    assert crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)  # Fabric needs it
    manager = MspManager([Msp("Org1MSP", (org1.ca.certificate,), crls=(crl_pem,))])
    with pytest.raises(InvalidIdentity, match=f"serial {serial:#x} is revoked by Org1MSP"):
        manager.deserialize(victim.serialized_identity, at=NOW)
    assert manager.deserialize(org1.signer("other").serialized_identity, at=NOW).msp_id == "Org1MSP"


def test_a_crl_signed_by_another_ca_is_ignored(org1: Org) -> None:
    victim = org1.signer("victim")
    serial = x509.load_pem_x509_certificate(victim.cert_pem).serial_number
    forged = make_org("Org1MSP").ca.revoke([serial], now=NOW)
    msp = Msp("Org1MSP", (org1.ca.certificate,), crls=(forged,))
    assert msp.revoked_serials == frozenset()
    assert msp.validate(victim.cert_pem, at=NOW).msp_id == "Org1MSP"


def test_intermediate_chains() -> None:
    root = CertificateAuthority.create("root", "Org1MSP", now=NOW - DAY)
    inter = intermediate_of(root, "inter")
    msp = Msp("Org1MSP", (root.certificate,), intermediate_certs=(inter.certificate,))
    via_inter = signer_of(inter, "u1")
    identity = msp.validate(via_inter.cert_pem, at=NOW)
    assert identity.chain == (inter.certificate, root.certificate)
    with pytest.raises(InvalidIdentity, match="only leaf CAs may issue identities"):
        msp.validate(signer_of(root, "u2").cert_pem, at=NOW)
    key = ec.generate_private_key(ec.SECP256R1())
    short = intermediate_of(root, "short", days=2, key=key)
    # The same intermediate key and name, re-certified for longer, issues a long-lived leaf; the
    # MSP knows only the short certificate, whose expiry must end the leaf's validity.
    renewed = intermediate_of(root, "short", days=365, key=key)
    msp2 = Msp("Org1MSP", (root.certificate,), intermediate_certs=(short.certificate,))
    cert = signer_of(renewed, "u3").cert_pem
    assert msp2.validate(cert, at=NOW).msp_id == "Org1MSP"
    with pytest.raises(InvalidIdentity, match="certificate of CN=short expired"):
        msp2.validate(cert, at=NOW + 3 * DAY)
    manager = MspManager([msp2])  # remembers the identity: the chain still bounds its window
    serialized = serialize_identity("Org1MSP", cert)
    assert manager.deserialize(serialized, at=NOW).msp_id == "Org1MSP"
    with pytest.raises(InvalidIdentity, match="certificate of CN=short expired"):
        manager.deserialize(serialized, at=NOW + 3 * DAY)


def test_an_msp_needs_ca_roots(org1: Org) -> None:
    with pytest.raises(InvalidArgument):
        Msp("Org1MSP", ())
    with pytest.raises(InvalidArgument, match="not a CA"):
        Msp("Org1MSP", (org1.ca.issue("x", node_ou="client", now=NOW).certificate,))


# --- roles and principals -------------------------------------------------------------------------


def role(msp_id: str, name: str) -> msp_principal_pb2.MSPPrincipal:
    value = msp_principal_pb2.MSPRole(
        msp_identifier=msp_id, role=msp_principal_pb2.MSPRole.MSPRoleType.Value(name)
    )
    return msp_principal_pb2.MSPPrincipal(
        principal_classification=msp_principal_pb2.MSPPrincipal.Classification.Value("ROLE"),
        principal=value.SerializeToString(),
    )


@pytest.fixture(scope="module")
def people(org1: Org) -> dict[str, Signer]:
    return {ou: org1.signer(f"{ou}1", ou=ou) for ou in ("client", "peer", "admin", "orderer")}


@pytest.mark.parametrize(
    ("who", "principal", "ok"),
    [
        pytest.param("client", role("Org1MSP", "MEMBER"), True, id="a client is a member"),
        pytest.param("admin", role("Org1MSP", "MEMBER"), True, id="an admin is a member"),
        pytest.param("client", role("Org1MSP", "CLIENT"), True, id="a client is a client"),
        pytest.param("peer", role("Org1MSP", "CLIENT"), False, id="a peer is not a client"),
        pytest.param("peer", role("Org1MSP", "PEER"), True, id="a peer is a peer"),
        pytest.param("orderer", role("Org1MSP", "ORDERER"), True, id="an orderer is an orderer"),
        pytest.param("admin", role("Org1MSP", "ADMIN"), True, id="the admin OU is an admin"),
        pytest.param("client", role("Org1MSP", "ADMIN"), False, id="a client is not an admin"),
        pytest.param("admin", role("Org1MSP", "CLIENT"), False, id="an admin is not a client"),
        pytest.param("peer", role("Org2MSP", "MEMBER"), False, id="another MSP never satisfies"),
    ],
)
def test_principal_satisfaction(
    people: dict[str, Signer],
    msps: MspManager,
    who: str,
    principal: msp_principal_pb2.MSPPrincipal,
    ok: bool,
) -> None:
    identity = msps.deserialize(people[who].serialized_identity, at=NOW)
    assert msps.satisfies_principal(identity, principal) is ok


def test_a_principal_is_judged_by_its_exact_bytes(
    people: dict[str, Signer], msps: MspManager
) -> None:
    # Role principals are parsed once per distinct bytes: bytes that do not decode, or that
    # name another MSP or role, are judged as themselves, whatever was asked before.
    peer = msps.deserialize(people["peer"].serialized_identity, at=NOW)
    good = role("Org1MSP", "PEER")
    broken = msp_principal_pb2.MSPPrincipal()
    broken.CopyFrom(good)
    broken.principal = b"\xff\xff"
    for _ in range(2):
        assert msps.satisfies_principal(peer, good)
        assert not msps.satisfies_principal(peer, broken)
        assert not msps.satisfies_principal(peer, role("Org2MSP", "PEER"))
        assert not msps.satisfies_principal(peer, role("Org1MSP", "CLIENT"))


def test_listed_admin_certificates_are_admins(org1: Org) -> None:
    boss = org1.signer("boss")
    msp = Msp(
        "Org1MSP",
        (org1.ca.certificate,),
        admin_certs=(x509.load_pem_x509_certificate(boss.cert_pem),),
    )
    manager = MspManager([msp])
    identity = manager.deserialize(boss.serialized_identity, at=NOW)
    assert (identity.is_admin, identity.node_ou) == (True, "client")
    assert manager.satisfies_principal(identity, role("Org1MSP", "ADMIN"))


def test_without_node_ous_roles_cannot_be_told_apart(org1: Org, people: dict[str, Signer]) -> None:
    manager = MspManager([Msp("Org1MSP", (org1.ca.certificate,), node_ous_enabled=False)])
    peer = manager.deserialize(people["peer"].serialized_identity, at=NOW)
    admin = manager.deserialize(people["admin"].serialized_identity, at=NOW)
    assert manager.satisfies_principal(peer, role("Org1MSP", "MEMBER"))
    assert not manager.satisfies_principal(peer, role("Org1MSP", "PEER"))
    assert not admin.is_admin  # only admincerts make admins without node OUs


def test_identity_principals_match_msp_and_certificate(
    people: dict[str, Signer], msps: MspManager
) -> None:
    client = msps.deserialize(people["client"].serialized_identity, at=NOW)

    def principal(serialized: bytes) -> msp_principal_pb2.MSPPrincipal:
        return msp_principal_pb2.MSPPrincipal(
            principal_classification=msp_principal_pb2.MSPPrincipal.Classification.Value(
                "IDENTITY"
            ),
            principal=serialized,
        )

    assert msps.satisfies_principal(client, principal(people["client"].serialized_identity))
    assert not msps.satisfies_principal(client, principal(people["peer"].serialized_identity))
    same_cert_other_msp = serialize_identity("Org2MSP", people["client"].cert_pem)
    assert not msps.satisfies_principal(client, principal(same_cert_other_msp))
    assert not msps.satisfies_principal(client, principal(b"\xff"))


# --- the MSP config protobuf ----------------------------------------------------------------------


def test_msp_config_round_trips_through_fabric_protobuf(org1: Org, org2: Org) -> None:
    crl = org1.ca.revoke([7], now=NOW)
    admin = org1.ca.issue("admin", node_ou="client", now=NOW).certificate
    msp = Msp(
        "Org1MSP",
        (org1.ca.certificate,),
        admin_certs=(admin,),
        crls=(crl,),
        tls_root_certs=(org2.ca.certificate,),
    )
    data = msp.to_proto_bytes()
    back = Msp.from_proto_bytes(data)
    assert back == msp
    assert back.revoked_serials == frozenset({7})
    outer = msp_config_pb2.MSPConfig()
    outer.ParseFromString(data)
    config = msp_config_pb2.FabricMSPConfig()
    config.ParseFromString(outer.config)
    assert (outer.type, config.name) == (0, "Org1MSP")
    assert list(config.root_certs) == [org1.ca.cert_pem]
    assert config.crypto_config.signature_hash_family == "SHA2"
    assert config.crypto_config.identity_identifier_hash_function == "SHA256"
    assert config.fabric_node_ous.enable
    assert config.fabric_node_ous.peer_ou_identifier.organizational_unit_identifier == "peer"
    assert config.fabric_node_ous.admin_ou_identifier.certificate == org1.ca.cert_pem


@given(st.binary(max_size=64))
def test_random_msp_config_bytes_raise_only_invalid_argument(data: bytes) -> None:
    with pytest.raises(InvalidArgument):
        Msp.from_proto_bytes(data)


def test_validate_fills_in_the_serialized_identity(org1: Org) -> None:
    signer = org1.signer("dave")
    identity: Identity = org1.msp.validate(signer.cert_pem, at=NOW)
    parsed = identities_pb2.SerializedIdentity()
    parsed.ParseFromString(identity.serialized)
    assert parsed.mspid == "Org1MSP"


def test_a_high_s_certificate_signature_is_tolerated_and_is_the_same_identity(org1: Org) -> None:
    signer = org1.signer("erin")
    cert = x509.load_pem_x509_certificate(signer.cert_pem)
    r, s = decode_dss_signature(cert.signature)
    assert s <= P256_ORDER // 2  # our CA signs certificates low-S, as Fabric's signers do
    high = x509.load_der_x509_certificate(
        _with_signature(
            cert.public_bytes(serialization.Encoding.DER),
            encode_dss_signature(r, P256_ORDER - s),
        )
    )
    high_pem = high.public_bytes(serialization.Encoding.PEM)
    assert high_pem != signer.cert_pem
    identity = org1.msp.validate(high_pem, at=NOW)  # Fabric sanitises instead of refusing
    assert identity.id_hash == org1.msp.validate(signer.cert_pem, at=NOW).id_hash


def _with_signature(der: bytes, signature: bytes) -> bytes:
    _, start, _ = _tlv(der, 0)
    _, _, tbs_end = _tlv(der, start)
    _, _, alg_end = _tlv(der, tbs_end)
    bits = b"\x03" + _length(len(signature) + 1) + b"\x00" + signature
    body = der[start:alg_end] + bits
    return b"\x30" + _length(len(body)) + body
