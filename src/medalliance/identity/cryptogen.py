"""Write an organisation's crypto material in Fabric's `cryptogen` folder layout.

`<base>/{peerOrganizations|ordererOrganizations}/<domain>/` with `ca/`, `tlsca/`, `msp/`, one
folder per node under `peers/` (and `orderers/`) and per user under `users/<Name>@<domain>/`,
each holding `msp/{cacerts,tlscacerts,keystore/priv_sk,signcerts,config.yaml}` and `tls/`, so
Fabric tools and samples find what they expect. Beyond Fabric's layout, the organisation's
encryption key pairs (docs/privacy.md §4): each certificate, issued by the org CA with key usage
keyAgreement only, in the public `msp/enccerts/<key id>.pem` (it travels with the MSP folder, as
`cacerts/` does), its private key in `enc/keystore/<key id>_sk`, outside every MSP folder; the
key id is the first 16 hex digits of the SHA-256 of the public key's SubjectPublicKeyInfo DER.
Rotation (`privacy.keys.rotate`) adds pairs beside the first.

Keys are written with mode 0600; existing material is never overwritten, and an interrupted run
leaves nothing half-written behind (the organisation is built in a temporary sibling folder and
renamed into place).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from medalliance.errors import NotFound, PreconditionFailed
from medalliance.identity.ca import CertificateAuthority, NodeOU
from medalliance.identity.signing import Signer

ENC_CERTS_DIR = Path("msp") / "enccerts"
ENC_KEYSTORE_DIR = Path("enc") / "keystore"

_CONFIG_YAML = """NodeOUs:
  Enable: true
  ClientOUIdentifier:
    Certificate: cacerts/{ca}
    OrganizationalUnitIdentifier: client
  PeerOUIdentifier:
    Certificate: cacerts/{ca}
    OrganizationalUnitIdentifier: peer
  AdminOUIdentifier:
    Certificate: cacerts/{ca}
    OrganizationalUnitIdentifier: admin
  OrdererOUIdentifier:
    Certificate: cacerts/{ca}
    OrganizationalUnitIdentifier: orderer
"""


@dataclass(frozen=True, slots=True)
class UserSpec:
    """A user identity: `name` like "User1" or "Admin", its node OU and alliance role."""

    name: str
    node_ou: NodeOU = "client"
    alliance_role: str | None = None


@dataclass(frozen=True, slots=True)
class OrgSpec:
    """An organisation to generate.

    `nodes` are host prefixes ("peer0", "orderer0") placed under `peers/` or `orderers/` by
    `kind`. `peers` and `orderers` add nodes of the other kind too, for organisations that run
    both (a tertiary hospital's endorsing peers and ordering nodes).
    """

    msp_id: str
    domain: str
    kind: Literal["peer", "orderer"]
    nodes: tuple[str, ...] = ()
    users: tuple[UserSpec, ...] = ()
    sans: tuple[str, ...] = ("localhost", "127.0.0.1")
    peers: tuple[str, ...] = ()
    orderers: tuple[str, ...] = ()

    @property
    def peer_nodes(self) -> tuple[str, ...]:
        return (self.nodes if self.kind == "peer" else ()) + self.peers

    @property
    def orderer_nodes(self) -> tuple[str, ...]:
        return (self.nodes if self.kind == "orderer" else ()) + self.orderers


def org_dir(base_dir: Path, spec: OrgSpec) -> Path:
    """Where `generate_org` puts the organisation: `base_dir/<kind>Organizations/<domain>`."""
    folder = "peerOrganizations" if spec.kind == "peer" else "ordererOrganizations"
    return base_dir / folder / spec.domain


def generate_org(base_dir: Path, spec: OrgSpec, *, now: dt.datetime) -> Path:
    """Create the organisation's CAs, node and user identities; returns the org folder.

    Raises `PreconditionFailed` when the folder exists (keys are never overwritten silently).
    """
    root = org_dir(base_dir, spec)
    if root.exists():
        raise PreconditionFailed(f"{root} already exists; refusing to overwrite keys")
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = root.parent / f".{spec.domain}.{secrets.token_hex(8)}.partial"
    staging.mkdir()
    try:
        _generate(staging, spec, now)
        staging.rename(root)  # atomic on one file system: all or nothing
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return root


def _generate(root: Path, spec: OrgSpec, now: dt.datetime) -> None:
    ca = CertificateAuthority.create(f"ca.{spec.domain}", spec.domain, now=now)
    tlsca = CertificateAuthority.create(f"tlsca.{spec.domain}", spec.domain, now=now)
    ca_name, tls_name = f"ca.{spec.domain}-cert.pem", f"tlsca.{spec.domain}-cert.pem"
    _write(root / "ca" / ca_name, ca.cert_pem)
    _write(root / "ca" / "priv_sk", ca.key_pem, secret=True)
    _write(root / "tlsca" / tls_name, tlsca.cert_pem)
    _write(root / "tlsca" / "priv_sk", tlsca.key_pem, secret=True)
    _write_msp(root / "msp", ca.cert_pem, ca_name, tlsca.cert_pem, tls_name)
    write_encryption_key(root, ca, now=now)
    node_kinds: tuple[tuple[str, tuple[str, ...], NodeOU], ...] = (
        ("peers", spec.peer_nodes, "peer"),
        ("orderers", spec.orderer_nodes, "orderer"),
    )
    for folder, names, ou in node_kinds:
        for name in names:
            _write_node(root, folder, name, ou, spec, ca, tlsca, now)
    for user in spec.users:
        who = f"{user.name}@{spec.domain}"
        home = root / "users" / who
        issued = ca.issue(who, node_ou=user.node_ou, now=now, alliance_role=user.alliance_role)
        _write_msp(home / "msp", ca.cert_pem, ca_name, tlsca.cert_pem, tls_name)
        _write(home / "msp" / "signcerts" / f"{who}-cert.pem", issued.cert_pem)
        _write(home / "msp" / "keystore" / "priv_sk", issued.key_pem, secret=True)
        tls = tlsca.issue(who, node_ou=None, now=now, client_auth=True)
        _write(home / "tls" / "ca.crt", tlsca.cert_pem)
        _write(home / "tls" / "client.crt", tls.cert_pem)
        _write(home / "tls" / "client.key", tls.key_pem, secret=True)


def add_node(base_dir: Path, spec: OrgSpec, name: str, ou: NodeOU, *, now: dt.datetime) -> Path:
    """Issue one more peer or ordering node of an existing organisation from its CAs; its
    folder (`msp/`, `tls/`). The organisation's CA keys must be in its folder."""
    root = org_dir(base_dir, spec)
    ca = _load_ca(root / "ca")
    tlsca = _load_ca(root / "tlsca")
    folder = "peers" if ou == "peer" else "orderers"
    if (root / folder / f"{name}.{spec.domain}").exists():
        raise PreconditionFailed(f"{name}.{spec.domain} exists already")
    return _write_node(root, folder, name, ou, spec, ca, tlsca, now)


def _load_ca(folder: Path) -> CertificateAuthority:
    cert = next(folder.glob("*-cert.pem"), None)
    if cert is None or not (folder / "priv_sk").is_file():
        raise NotFound(f"{folder} holds no CA certificate and key; run this where the CA lives")
    return CertificateAuthority.load(cert.read_bytes(), (folder / "priv_sk").read_bytes())


def _write_node(
    root: Path,
    folder: str,
    name: str,
    ou: NodeOU,
    spec: OrgSpec,
    ca: CertificateAuthority,
    tlsca: CertificateAuthority,
    now: dt.datetime,
) -> Path:
    ca_name, tls_name = f"ca.{spec.domain}-cert.pem", f"tlsca.{spec.domain}-cert.pem"
    host = f"{name}.{spec.domain}"
    node = root / folder / host
    issued = ca.issue(host, node_ou=ou, now=now)
    _write_msp(node / "msp", ca.cert_pem, ca_name, tlsca.cert_pem, tls_name)
    _write(node / "msp" / "signcerts" / f"{host}-cert.pem", issued.cert_pem)
    _write(node / "msp" / "keystore" / "priv_sk", issued.key_pem, secret=True)
    tls = tlsca.issue(
        host,
        node_ou=None,
        now=now,
        sans=(host, name, *spec.sans),
        server_auth=True,
        client_auth=True,
    )
    _write(node / "tls" / "ca.crt", tlsca.cert_pem)
    _write(node / "tls" / "server.crt", tls.cert_pem)
    _write(node / "tls" / "server.key", tls.key_pem, secret=True)
    return node


def encryption_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """An encryption key's id: the first 16 hex digits of SHA-256 over its SubjectPublicKeyInfo."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]


def write_encryption_key(root: Path, ca: CertificateAuthority, *, now: dt.datetime) -> str:
    """Add a new encryption key pair, certified by `ca`, to the organisation at `root`.

    Writes the private key (`enc/keystore/<key id>_sk`, mode 0600) before the certificate that
    publishes it (`msp/enccerts/<key id>.pem`), each file whole or not at all, and never
    replaces a file. Returns the key id. Raises `InvalidArgument` when `ca` cannot issue at
    `now`, `FileExistsError` if the key id is already taken.
    """
    issued = ca.issue(f"enc.{ca.organization}", node_ou=None, key_agreement=True, now=now)
    public_key = issued.certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey), "the CA issues P-256 keys"
    key_id = encryption_key_id(public_key)
    _publish(root / ENC_KEYSTORE_DIR / f"{key_id}_sk", issued.key_pem, secret=True)
    _publish(root / ENC_CERTS_DIR / f"{key_id}.pem", issued.cert_pem)
    return key_id


def load_signer(msp_dir: Path, msp_id: str) -> Signer:
    """The signer of an identity's `msp/` folder: its one signcerts/ certificate and keystore/ key.

    Raises `NotFound` when either is missing and `InvalidArgument` when the key does not parse.
    """
    certs = sorted(p for p in (msp_dir / "signcerts").glob("*") if p.is_file())
    keys = sorted(p for p in (msp_dir / "keystore").glob("*") if p.is_file())
    if not certs or not keys:
        raise NotFound(f"{msp_dir} holds no signing certificate and key (signcerts/, keystore/)")
    return Signer.from_files(msp_id, certs[0], keys[0])


def _write_msp(msp: Path, ca_pem: bytes, ca_name: str, tls_pem: bytes, tls_name: str) -> None:
    # Fabric ≥ 1.4.3 with node OUs leaves admincerts/ empty: the admin OU makes an admin.
    (msp / "admincerts").mkdir(parents=True, exist_ok=True)
    _write(msp / "cacerts" / ca_name, ca_pem)
    _write(msp / "tlscacerts" / tls_name, tls_pem)
    _write(msp / "config.yaml", _CONFIG_YAML.format(ca=ca_name).encode())


def _publish(path: Path, data: bytes, *, secret: bool = False) -> None:
    """Write a new file beside live material: readers see it whole or not at all."""
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    _write(partial, data, secret=secret)
    try:
        os.link(partial, path)  # unlike rename, fails when `path` exists: never overwrite
    finally:
        partial.unlink()


def _write(path: Path, data: bytes, *, secret: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL  # never overwrite
    fd = os.open(path, flags, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
