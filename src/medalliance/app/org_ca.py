"""An organisation's Fabric CA server, put together from its network folder (docs/fabric-ca.md).

Everything lives in the organisation's folder, beside the CA `network init` made:
`ca-server/fabric-ca.db` (the store, unless the config names a database), `ca-server/tls/`
(the server's certificate from the organisation's TLS CA, made on first start) and, when the
config gives no bootstrap secret, `ca-server/bootstrap-secret` (random, mode 0600, made on
first start and never printed). The bootstrap registrar is registered only while the store has
no identity, so changing the secret later changes nothing.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from medalliance.ca import CaStore, FabricCa
from medalliance.ca.client import CaClient, Enrollment, load_enrollment, write_msp
from medalliance.database_url import parse_database_url
from medalliance.errors import NotFound, PreconditionFailed
from medalliance.identity.ca import CertificateAuthority
from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.config import CaServerConfig, OrganizationConfig

CA_SERVER = "ca-server"
BOOTSTRAP_SECRET_FILE = "bootstrap-secret"  # noqa: S105 (a file name)


@dataclass(frozen=True)
class OrgCa:
    """A ready CA server: the CA, where to listen, and its TLS files."""

    ca: FabricCa
    org: OrganizationConfig
    host: str
    port: int
    tls_cert: Path
    tls_key: Path = field(repr=False)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"


def ca_settings(layout: NetworkLayout, org_name: str) -> tuple[OrganizationConfig, CaServerConfig]:
    """The organisation and its `ca:` settings; `PreconditionFailed` when it runs no CA."""
    org = layout.config.organization(org_name)
    if org.ca is None:
        raise PreconditionFailed(
            f"{org.name} runs no Fabric CA; add `ca: {{port: 7054}}` to it in network.yaml"
        )
    return org, org.ca


def tls_ca_pem(layout: NetworkLayout, org_name: str) -> bytes:
    """The organisation's TLS CA certificate: what clients of its CA server trust."""
    found = sorted((layout.org_dir(org_name) / "tlsca").glob("*-cert.pem"))
    if not found:
        raise NotFound(f"{layout.org_dir(org_name)}/tlsca holds no TLS CA certificate")
    return found[0].read_bytes()


def open_org_ca(
    layout: NetworkLayout, org_name: str, *, host: str | None = None, port: int | None = None
) -> OrgCa:
    """The organisation's CA, bootstrapped and with its TLS certificate; close `.ca` after use.

    Raises `PreconditionFailed` when the organisation runs no CA, `NotFound` when its CA keys
    are not in this folder (another organisation's machine).
    """
    org, settings = ca_settings(layout, org_name)
    root = layout.org_dir(org.msp_id)
    authority = _load_ca(root / "ca")
    server = root / CA_SERVER
    server.mkdir(mode=0o700, exist_ok=True)
    tls_cert, tls_key = _tls_files(server / "tls", _load_ca(root / "tlsca"), org, settings)
    database = settings.database or str(server / "fabric-ca.db")
    store = CaStore(parse_database_url(database, base=layout.directory), org.ca_name)
    ca = FabricCa(org.ca_name, authority, store, max_enrollments=settings.max_enrollments)
    try:
        secret = settings.bootstrap_secret or _bootstrap_secret(server / BOOTSTRAP_SECRET_FILE)
        ca.bootstrap(settings.bootstrap_user, secret)
    except BaseException:
        ca.close()
        raise
    return OrgCa(ca, org, host or settings.host, port or settings.port, tls_cert, tls_key)


def _load_ca(folder: Path) -> CertificateAuthority:
    certs = sorted(folder.glob("*-cert.pem"))
    if not certs or not (folder / "priv_sk").is_file():
        raise NotFound(f"{folder} holds no CA certificate and key; start the CA where they live")
    return CertificateAuthority.load(certs[0].read_bytes(), (folder / "priv_sk").read_bytes())


def _tls_files(
    folder: Path, tlsca: CertificateAuthority, org: OrganizationConfig, settings: CaServerConfig
) -> tuple[Path, Path]:
    cert, key = folder / "server.crt", folder / "server.key"
    if cert.is_file() and key.is_file():
        return cert, key
    sans = sorted({f"ca.{org.domain}", "localhost", "127.0.0.1", settings.host})
    issued = tlsca.issue(
        f"ca.{org.domain}", node_ou=None, now=dt.datetime.now(dt.UTC), sans=sans, server_auth=True
    )
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write(key, issued.key_pem, mode=0o600)
    _write(cert, issued.cert_pem, mode=0o644)
    return cert, key


def _bootstrap_secret(path: Path) -> str:
    """The random bootstrap secret in `path`, made (mode 0600) when it does not exist yet."""
    if not path.exists():
        _write(path, secrets.token_urlsafe(24).encode(), mode=0o600)
    return path.read_text(encoding="utf-8").strip()


def _write(path: Path, data: bytes, *, mode: int) -> None:
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    try:
        os.link(partial, path)  # never replaces: two servers starting at once keep one secret
    except FileExistsError:
        pass
    finally:
        partial.unlink()


def ca_client(layout: NetworkLayout, org_name: str) -> CaClient:
    """A client of the organisation's CA server as its connection profile describes it."""
    org, settings = ca_settings(layout, org_name)
    return CaClient(
        f"https://{settings.endpoint}", tls_ca_pem=tls_ca_pem(layout, org.name), ca_name=org.ca_name
    )


def enrolled_msp_dir(layout: NetworkLayout, org_name: str, enrollment_id: str) -> Path:
    """Where `identity enroll` writes an identity: `users/<id>@<domain>/msp`, beside the users
    `network init` made, so every command's `--user <id>` finds it."""
    org = layout.config.organization(org_name)
    return layout.org_dir(org.msp_id) / "users" / f"{enrollment_id}@{org.domain}" / "msp"


def enroll_into(
    layout: NetworkLayout, org_name: str, enrollment_id: str, secret: str, msp_dir: Path | None
) -> Path:
    """Enrol at the organisation's CA and write the identity in Fabric CA's MSP layout; returns
    the MSP folder. `PreconditionFailed` when the folder holds an identity already."""
    target = msp_dir or enrolled_msp_dir(layout, org_name, enrollment_id)
    if (target / "signcerts").exists():
        raise PreconditionFailed(f"{target} holds an identity already; choose another --msp-dir")
    client = ca_client(layout, org_name)
    enrollment = client.enroll(enrollment_id, secret)
    write_msp(enrollment, target, f"{client.host_port}-{client.ca_name}")
    return target


def registrar(layout: NetworkLayout, org_name: str, enrollment_id: str) -> Enrollment:
    """An enrolled registrar's identity, as `identity enroll` wrote it."""
    return load_enrollment(enrolled_msp_dir(layout, org_name, enrollment_id))
