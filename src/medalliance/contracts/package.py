"""Contract packages: what a peer installs before a definition can name it.

A package is canonical JSON `{"entry": "module:Class", "label": ..., "source_sha256": ...,
"type": "python"}`; its id is `label:sha256(package)`, Fabric's package-id form. The source hash
binds the package to the exact contract code: a peer refuses to run a module whose source no
longer matches what was installed, so endorsers of one definition run the same code.

A Fabric chaincode-as-a-service package (tar.gz, `contracts.ccaas_package`) installs too; its
contract is the one the store's `external` factory gives (the peer's link to the chaincode
server). Its id is Fabric's: label and sha256 of the package bytes.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from medalliance.contracts.api import Contract
from medalliance.contracts.ccaas_package import CcaasPackage, is_ccaas_package, parse_ccaas_package
from medalliance.contracts.determinism import check_contract_source
from medalliance.errors import InvalidArgument, NotFound, PreconditionFailed

_LABEL = re.compile(r"^[A-Za-z0-9_.+-]+$")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class InstalledPackage:
    package_id: str
    label: str
    entry: str
    source_sha256: str


def _module_source(module_name: str) -> str:
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None:
        raise InvalidArgument(f"contract module {module_name} cannot be found")
    return Path(spec.origin).read_text(encoding="utf-8")


def build_package(label: str, entry: str) -> bytes:
    """The package bytes of contract class `entry` ("module:Class") under `label`."""
    if not _LABEL.match(label):
        raise InvalidArgument(f"package label {label!r} may use letters, digits and _.+- only")
    module, _, cls = entry.partition(":")
    if not module or not cls:
        raise InvalidArgument(f"contract entry {entry!r} must be 'module:Class'")
    digest = hashlib.sha256(_module_source(module).encode()).hexdigest()
    document = {"entry": entry, "label": label, "source_sha256": digest, "type": "python"}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def package_id(package: bytes, label: str) -> str:
    return f"{label}:{hashlib.sha256(package).hexdigest()}"


# (package id, ccaas package) -> the contract that runs it on this peer
ExternalFactory = Callable[[str, CcaasPackage], Contract]
_CCAAS_SUFFIX = ".ccaas.tar.gz"


def _no_external(pkg_id: str, package: CcaasPackage) -> Contract:
    raise PreconditionFailed(f"this peer cannot run chaincode as a service ({pkg_id})")


class PackageStore:
    """A peer's installed packages, on disk, and the contracts loaded from them."""

    def __init__(self, directory: Path, external: ExternalFactory = _no_external) -> None:
        self._dir = directory
        self._external = external
        self._loaded: dict[str, Contract] = {}

    def install(self, package: bytes) -> str:
        """Check and store a package; returns its id. Installing twice is harmless."""
        if is_ccaas_package(package):
            return self._install_ccaas(package)
        info = _parse(package)
        source = _module_source(info.entry.partition(":")[0])
        if hashlib.sha256(source.encode()).hexdigest() != info.source_sha256:
            raise PreconditionFailed(
                f"package {info.label} was built from other source than this peer has"
            )
        findings = check_contract_source(source)
        if findings:
            raise PreconditionFailed(
                f"contract {info.entry} is not deterministic: " + "; ".join(findings)
            )
        self._dir.mkdir(parents=True, exist_ok=True)
        path = self._dir / f"{hashlib.sha256(package).hexdigest()}.json"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(package)
            tmp.replace(path)
        return package_id(package, info.label)

    def _install_ccaas(self, package: bytes) -> str:
        ccaas = parse_ccaas_package(package)
        self._dir.mkdir(parents=True, exist_ok=True)
        path = self._dir / f"{hashlib.sha256(package).hexdigest()}{_CCAAS_SUFFIX}"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(package)
            tmp.replace(path)
        return package_id(package, ccaas.label)

    def installed(self) -> list[InstalledPackage]:
        return [_parse(p.read_bytes()) for p in sorted(self._dir.glob("*.json"))]

    def installed_ccaas(self) -> dict[str, CcaasPackage]:
        """The installed chaincode-as-a-service packages by package id."""
        found = {}
        for path in sorted(self._dir.glob(f"*{_CCAAS_SUFFIX}")):
            ccaas = parse_ccaas_package(path.read_bytes())
            found[f"{ccaas.label}:{path.name.removesuffix(_CCAAS_SUFFIX)}"] = ccaas
        return found

    def load(self, pkg_id: str) -> Contract:
        """The contract of an installed package, checked against its installed source hash."""
        if pkg_id in self._loaded:
            return self._loaded[pkg_id]
        _, _, digest = pkg_id.rpartition(":")
        path = self._dir / f"{digest}.json"
        # The id comes from a ledger definition: only a sha256 may name a file in our directory.
        external = self._dir / f"{digest}{_CCAAS_SUFFIX}"
        if _SHA256_HEX.fullmatch(digest) and external.exists():
            ccaas = parse_ccaas_package(external.read_bytes())
            if pkg_id != package_id(external.read_bytes(), ccaas.label):
                raise NotFound(f"package {pkg_id} is not installed on this peer; install it first")
            contract = self._loaded[pkg_id] = self._external(pkg_id, ccaas)
            return contract
        if not _SHA256_HEX.fullmatch(digest) or not path.exists():
            raise NotFound(f"package {pkg_id} is not installed on this peer; install it first")
        info = _parse(path.read_bytes())
        module_name, _, class_name = info.entry.partition(":")
        if hashlib.sha256(_module_source(module_name).encode()).hexdigest() != info.source_sha256:
            raise PreconditionFailed(
                f"package {pkg_id} does not match the installed source; reinstall"
            )
        cls = getattr(importlib.import_module(module_name), class_name, None)
        if not (isinstance(cls, type) and issubclass(cls, Contract)):
            raise PreconditionFailed(f"{info.entry} is not a Contract class")
        contract = cls()
        self._loaded[pkg_id] = contract
        return contract


def _parse(package: bytes) -> InstalledPackage:
    try:
        document = json.loads(package)
        entry, label, digest = document["entry"], document["label"], document["source_sha256"]
        if document.get("type") != "python":
            raise ValueError("type")
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument("not a medalliance contract package") from exc
    return InstalledPackage(package_id(package, label), label, entry, digest)
