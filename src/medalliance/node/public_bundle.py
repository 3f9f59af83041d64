"""An organisation's public bundle: the only material it hands to the others (docs/deployment.md).

A bundle is one gzip'd tar file, `<Org>.public.tar.gz`, holding `bundle.yaml` (network, name,
MSP id, domain) and, under the organisation's folder of the cryptogen layout, exactly what the
genesis blocks and the other organisations' nodes need: `msp/` (CA, TLS CA and encryption
certificates, `config.yaml`), the CA certificates of `ca/` and `tlsca/`, the Admin's signing
certificate and each node's signing and TLS server certificates. Nothing private: reading a
bundle refuses one that holds a private key, a certificate its CA did not issue, a node the
config does not name or names another organisation, so a careless or hostile organisation
cannot slip a key, a foreign identity or a file outside its folder into the alliance.

The tar is written deterministically (sorted, no times, no owners), so the same material gives
the same bytes and the same SHA-256 on every machine.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from medalliance.errors import InvalidArgument, InvalidIdentity, InvalidPublicBundle
from medalliance.identity.cryptogen import org_dir
from medalliance.identity.msp import Msp
from medalliance.node.bootstrap import ORGANIZATIONS, org_spec
from medalliance.node.config import NetworkConfig, OrganizationConfig

MANIFEST = "bundle.yaml"
BUNDLE_SUFFIX = ".public.tar.gz"
FORMAT = 1
# A bundle is a few dozen certificates: anything far larger is a mistake or a flood.
MAX_BUNDLE_BYTES = 4 * 1024 * 1024
MAX_MEMBERS = 2000
# What marks a private key in any encoding we write (PEM PKCS#8, SEC1, PKCS#1, OpenSSH).
_PRIVATE_MARKERS = (b"PRIVATE KEY-----", b"PRIVATE KEY BLOCK")


@dataclass(frozen=True)
class PublicBundle:
    """A verified bundle: `files` maps paths relative to the network folder to their bytes."""

    msp_id: str
    name: str
    files: Mapping[str, bytes] = field(repr=False)

    def install(self, directory: Path) -> None:
        """Write the bundle's files under `directory` (a network folder); existing files are
        left as they are (an organisation's own material is never replaced)."""
        for relative, data in sorted(self.files.items()):
            path = directory / relative
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def bundle_file_name(org: OrganizationConfig) -> str:
    return f"{org.name}{BUNDLE_SUFFIX}"


def public_files(base: Path, org: OrganizationConfig) -> dict[str, bytes]:
    """The public part of `org`'s material in the network folder `base` (holding
    `organizations/`), by path relative to `base`. Raises `InvalidPublicBundle` when a file the
    bundle needs is missing."""
    root = org_dir(base / ORGANIZATIONS, org_spec(org))
    wanted: list[Path] = [p for p in sorted((root / "msp").rglob("*")) if p.is_file()]
    wanted += sorted((root / "ca").glob("*-cert.pem")) + sorted((root / "tlsca").glob("*-cert.pem"))
    wanted += _files(root / "users" / f"Admin@{org.domain}" / "msp" / "signcerts")
    for folder, nodes in (("peers", org.peers), ("orderers", org.orderers)):
        for node in nodes:
            home = root / folder / f"{node.name}.{org.domain}"
            wanted += _files(home / "msp" / "signcerts")
            wanted.append(home / "tls" / "server.crt")
    missing = [str(p) for p in wanted if not p.is_file()]
    if missing or not (root / "msp" / "cacerts").is_dir():
        raise InvalidPublicBundle(
            f"{org.name}'s material in {base} is incomplete ({', '.join(missing) or 'no msp/'}); "
            "run `network init --org` in a new folder"
        )
    return {p.relative_to(base).as_posix(): p.read_bytes() for p in wanted}


def write_bundle(base: Path, config: NetworkConfig, org: OrganizationConfig, target: Path) -> Path:
    """Write `org`'s public bundle from the network folder `base` to `target`; returns it."""
    manifest = {
        "format": FORMAT,
        "network": config.name,
        "name": org.name,
        "msp_id": org.msp_id,
        "domain": org.domain,
    }
    files = {MANIFEST: yaml.safe_dump(manifest, sort_keys=True).encode(), **public_files(base, org)}
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(pack(files))
    partial.replace(target)
    return target


def pack(files: Mapping[str, bytes]) -> bytes:
    """A deterministic .tar.gz of `files` (sorted, no times or owners): same files, same bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def unpack(data: bytes, what: str, max_bytes: int = MAX_BUNDLE_BYTES) -> dict[str, bytes]:
    """The regular files of a .tar.gz; `InvalidPublicBundle` for anything else in it (links,
    devices, absolute or `..` paths), a broken archive, or one unpacking to over `max_bytes`
    (checked while unpacking: a small bomb never fills memory)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing
    try:
        raw = inflater.decompress(data, max_bytes + 1)
    except zlib.error:
        raise InvalidPublicBundle(f"{what} is not a .tar.gz file") from None
    if len(raw) > max_bytes or inflater.unconsumed_tail:
        raise InvalidPublicBundle(f"{what} unpacks to over {max_bytes} bytes; refused")
    if not inflater.eof:
        raise InvalidPublicBundle(f"{what} is not a .tar.gz file (it ends early)")
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for member in tar:
                if len(files) >= MAX_MEMBERS:
                    raise InvalidPublicBundle(f"{what} holds over {MAX_MEMBERS} files; refused")
                name = member.name
                parts = name.split("/")
                if not member.isfile() or name.startswith("/") or ".." in parts or name in files:
                    raise InvalidPublicBundle(
                        f"{what} holds {name!r}, which is not a plain file inside the bundle; "
                        "a bundle holds only its organisation's certificate files"
                    )
                extracted = tar.extractfile(member)
                assert extracted is not None  # a regular file
                files[name] = extracted.read()
    except tarfile.TarError:
        raise InvalidPublicBundle(f"{what} is not a readable tar archive") from None
    return files


def read_bundle(data: bytes, config: NetworkConfig, what: str) -> PublicBundle:
    """Verify a bundle against the network config; raises `InvalidPublicBundle` saying what is
    wrong (naming the file, never its contents). `what` names the bundle in messages."""
    files = unpack(data, what)
    org = _manifest_org(files.pop(MANIFEST, None), config, what)
    for name, content in sorted(files.items()):
        if _is_private_key(name, content):
            raise InvalidPublicBundle(
                f"{what} holds a private key ({name}); never share a private key: make the "
                "bundle again with `network init --org` output, which holds certificates only"
            )
    prefix = org_dir(Path(ORGANIZATIONS), org_spec(org)).as_posix() + "/"
    outside = sorted(n for n in files if not n.startswith(prefix))
    if outside:
        raise InvalidPublicBundle(
            f"{what} holds {outside[0]}, outside {org.name}'s folder {prefix}; a bundle carries "
            "only its own organisation's material"
        )
    for name, content in sorted(files.items()):
        if name != prefix + "msp/config.yaml" and not _is_certificate(content):
            raise InvalidPublicBundle(
                f"{what} holds {name}, which is not a PEM certificate; a bundle holds "
                "certificates (and the MSP's config.yaml) only"
            )
    _verify_certificates(files, prefix, org, what)
    return PublicBundle(org.msp_id, org.name, files)


def _manifest_org(raw: bytes | None, config: NetworkConfig, what: str) -> OrganizationConfig:
    if raw is None:
        raise InvalidPublicBundle(f"{what} has no {MANIFEST}; it is not a public bundle")
    try:
        manifest = yaml.safe_load(raw)
    except yaml.YAMLError:
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidPublicBundle(f"{what}: {MANIFEST} is not a format {FORMAT} bundle manifest")
    if manifest.get("network") != config.name:
        raise InvalidPublicBundle(
            f"{what} was made for network {manifest.get('network')!r}, not {config.name!r}"
        )
    msp_id = str(manifest.get("msp_id"))
    known = {o.msp_id: o for o in config.organizations}
    if msp_id not in known:
        raise InvalidPublicBundle(
            f"{what} names MSP {msp_id!r}, which network {config.name} does not have; "
            f"MSPs: {', '.join(known)}"
        )
    org = known[msp_id]
    if manifest.get("name") != org.name or manifest.get("domain") != org.domain:
        raise InvalidPublicBundle(
            f"{what} names MSP {msp_id} but not its name {org.name!r} and domain {org.domain!r}"
        )
    return org


def _verify_certificates(
    files: Mapping[str, bytes], prefix: str, org: OrganizationConfig, what: str
) -> None:
    """Every certificate chains to the bundle's own CA (or TLS CA), the CAs name the
    organisation's domain, and every configured node and the Admin are present."""

    def certs(folder: str) -> list[bytes]:
        return [data for name, data in sorted(files.items()) if name.startswith(prefix + folder)]

    try:
        roots = [x509.load_pem_x509_certificate(c) for c in certs("msp/cacerts/")]
        tls_roots = [x509.load_pem_x509_certificate(c) for c in certs("msp/tlscacerts/")]
    except ValueError:
        raise InvalidPublicBundle(f"{what}: a CA certificate is not PEM X.509") from None
    if len(roots) != 1 or len(tls_roots) != 1:
        raise InvalidPublicBundle(f"{what} must hold one CA and one TLS CA certificate in msp/")
    for root in (*roots, *tls_roots):
        names = root.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
        if [str(n.value) for n in names] != [org.domain]:
            raise InvalidPublicBundle(
                f"{what}: its CA {root.subject.rfc4514_string()} is not of {org.domain} "
                f"({org.msp_id})"
            )
    now = dt.datetime.now(dt.UTC)
    try:
        msp = Msp(org.msp_id, root_certs=tuple(roots), tls_root_certs=tuple(tls_roots))
        tls_msp = Msp(org.msp_id, root_certs=tuple(tls_roots), node_ous_enabled=False)
        enc_msp = Msp(org.msp_id, root_certs=tuple(roots), node_ous_enabled=False)
    except InvalidArgument as exc:
        raise InvalidPublicBundle(f"{what}: {exc}") from None
    expected = [(f"users/Admin@{org.domain}/msp/signcerts/", msp, "admin")]
    for folder, nodes in (("peers", org.peers), ("orderers", org.orderers)):
        for node in nodes:
            host = f"{node.name}.{org.domain}"
            expected.append((f"{folder}/{host}/msp/signcerts/", msp, host))
            expected.append((f"{folder}/{host}/tls/server.crt", tls_msp, host))
    for place, authority, who in expected:
        found = certs(place)
        if not found:
            raise InvalidPublicBundle(f"{what} lacks {prefix}{place}; make it with `network init`")
        for cert_pem in found:
            try:
                identity = authority.validate(cert_pem, at=now)
            except InvalidIdentity:
                raise InvalidPublicBundle(
                    f"{what}: {prefix}{place} is not issued by {org.name}'s own CA "
                    "(or has expired); a bundle's certificates must chain to its own CAs"
                ) from None
            if who == "admin" and not identity.is_admin:
                raise InvalidPublicBundle(f"{what}: {prefix}{place} is not an admin certificate")
            if who != "admin" and _common_name(identity.certificate) != who:
                raise InvalidPublicBundle(f"{what}: {prefix}{place} is not issued to {who}")
    for cert_pem in certs("msp/enccerts/"):
        try:
            enc_msp.validate(cert_pem, at=now)
        except InvalidIdentity:
            raise InvalidPublicBundle(
                f"{what}: an encryption certificate in msp/enccerts is not issued by its CA"
            ) from None


def _is_private_key(name: str, content: bytes) -> bool:
    if any(marker in content for marker in _PRIVATE_MARKERS) or name.endswith(("_sk", ".key")):
        return True
    try:  # a DER key carries no marker
        serialization.load_der_private_key(content, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _is_certificate(content: bytes) -> bool:
    try:
        return bool(x509.load_pem_x509_certificates(content))
    except ValueError:
        return False


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*") if p.is_file()) if folder.is_dir() else []
