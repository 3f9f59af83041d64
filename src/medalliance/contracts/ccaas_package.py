"""Fabric's chaincode-as-a-service package: what a peer installs to reach an external chaincode.

The package is Fabric's: a gzipped tar holding `metadata.json` (`{"type": "ccaas", "label": ...}`)
and `code.tar.gz`, itself a gzipped tar holding `connection.json` — where the chaincode server
listens (`address`), how long to wait for it (`dial_timeout`, Go duration text such as "10s") and
its TLS settings (`tls_required`, `client_auth_required`, PEM `root_cert`, `client_cert`,
`client_key`). Its id is `label:sha256(package bytes)`, as Fabric computes it, so the id of a
package built by `peer lifecycle chaincode package` is the same here.

Parsing is pure (bytes in, value out) and bounded: a package that is not one, or whose members
are oversized, is refused with `InvalidArgument` saying what is wrong.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
from dataclasses import dataclass, field

from medalliance.errors import InvalidArgument

CCAAS_TYPE = "ccaas"
_MAX_MEMBER_BYTES = 1 << 20  # metadata, code archive and connection.json are small
_GZIP_MAGIC = b"\x1f\x8b"
_LABEL = re.compile(r"^[A-Za-z0-9_.+-]+$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)$")
_ADDRESS = re.compile(r"^[A-Za-z0-9_.-]+:\d{1,5}$")
DEFAULT_DIAL_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Connection:
    """Where and how a peer dials one external chaincode server (Fabric's connection.json)."""

    address: str
    dial_timeout_s: float = DEFAULT_DIAL_TIMEOUT_S
    tls_required: bool = False
    client_auth_required: bool = False
    root_cert: bytes = field(default=b"", repr=False)
    client_cert: bytes = field(default=b"", repr=False)
    client_key: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True)
class CcaasPackage:
    label: str
    connection: Connection


def is_ccaas_package(package: bytes) -> bool:
    """Whether `package` looks like a tar.gz (a Fabric package) rather than our JSON package."""
    return package[:2] == _GZIP_MAGIC


def build_ccaas_package(label: str, connection: dict[str, object]) -> bytes:
    """A ccaas package for `label` with `connection` as its connection.json (reproducible)."""
    if not _LABEL.match(label):
        raise InvalidArgument(f"package label {label!r} may use letters, digits and _.+- only")
    code = _tar_gz({"connection.json": json.dumps(connection, sort_keys=True).encode()})
    metadata = json.dumps({"label": label, "type": CCAAS_TYPE}, sort_keys=True).encode()
    return _tar_gz({"metadata.json": metadata, "code.tar.gz": code})


def parse_ccaas_package(package: bytes) -> CcaasPackage:
    """The label and connection of a ccaas package; `InvalidArgument` if it is not one."""
    members = _untar(package, "the package")
    try:
        metadata = json.loads(members["metadata.json"])
        label = str(metadata["label"])
        kind = metadata["type"]
    except (KeyError, ValueError, TypeError):
        raise InvalidArgument(
            "a chaincode package needs metadata.json with type and label"
        ) from None
    if kind != CCAAS_TYPE:
        raise InvalidArgument(
            f"chaincode package type {kind!r} cannot run on this peer; package the chaincode "
            "as a service (type ccaas) or as a medalliance Python package"
        )
    if not _LABEL.match(label):
        raise InvalidArgument("the package label may use letters, digits and _.+- only")
    code = members.get("code.tar.gz")
    if code is None:
        raise InvalidArgument("a ccaas package needs code.tar.gz holding connection.json")
    inner = _untar(code, "code.tar.gz")
    if "connection.json" not in inner:
        raise InvalidArgument("code.tar.gz of a ccaas package needs connection.json")
    return CcaasPackage(label, parse_connection(inner["connection.json"]))


def parse_connection(data: bytes) -> Connection:
    """Fabric's connection.json; `InvalidArgument` naming the field to fix."""
    try:
        document = json.loads(data)
    except ValueError:
        raise InvalidArgument("connection.json is not JSON") from None
    if not isinstance(document, dict):
        raise InvalidArgument("connection.json must be a JSON object")
    address = document.get("address")
    if not isinstance(address, str) or not _ADDRESS.match(address):
        raise InvalidArgument("connection.json needs address as host:port")
    tls = _flag(document, "tls_required")
    client_auth = _flag(document, "client_auth_required")
    root_cert = _pem(document, "root_cert")
    if tls and not root_cert:
        raise InvalidArgument("connection.json with tls_required needs root_cert (PEM)")
    client_cert, client_key = _pem(document, "client_cert"), _pem(document, "client_key")
    if client_auth and not (client_cert and client_key):
        raise InvalidArgument(
            "connection.json with client_auth_required needs client_cert and client_key (PEM)"
        )
    return Connection(
        address,
        _duration(document.get("dial_timeout", "")),
        tls,
        client_auth,
        root_cert,
        client_cert,
        client_key,
    )


def _flag(document: dict[str, object], name: str) -> bool:
    value = document.get(name, False)
    if not isinstance(value, bool):
        raise InvalidArgument(f"connection.json {name} must be true or false")
    return value


def _pem(document: dict[str, object], name: str) -> bytes:
    value = document.get(name, "")
    if not isinstance(value, str):
        raise InvalidArgument(f"connection.json {name} must be PEM text")
    return value.encode()


def _duration(text: object) -> float:
    if text in ("", None):
        return DEFAULT_DIAL_TIMEOUT_S
    match = _DURATION.match(str(text))
    if match is None:
        raise InvalidArgument("connection.json dial_timeout must read like 10s, 500ms or 1m")
    number, unit = float(match.group(1)), match.group(2)
    seconds = number / 1000 if unit == "ms" else number * 60 if unit == "m" else number
    if not 0 < seconds <= 300:
        raise InvalidArgument("connection.json dial_timeout must be more than 0 and at most 5m")
    return seconds


def _tar_gz(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def _untar(archive: bytes, what: str) -> dict[str, bytes]:
    """The regular files of a tar.gz by name, each at most `_MAX_MEMBER_BYTES`."""
    try:
        # Read at most the limit: a small archive may inflate to gigabytes.
        with gzip.GzipFile(fileobj=io.BytesIO(archive)) as unzipped:
            data = unzipped.read(_MAX_MEMBER_BYTES * 4 + 1)
        if len(data) > _MAX_MEMBER_BYTES * 4:
            raise InvalidArgument(f"{what} is larger than a ccaas package can be")
        found: dict[str, bytes] = {}
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for info in tar:
                if not info.isfile() or info.size > _MAX_MEMBER_BYTES:
                    continue
                extracted = tar.extractfile(info)
                if extracted is not None:
                    found[info.name.removeprefix("./")] = extracted.read()
    except (OSError, EOFError, tarfile.TarError):
        raise InvalidArgument(f"{what} is not a tar.gz archive") from None
    return found
