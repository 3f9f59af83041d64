"""Fabric's ccaas packages: parsed, installed with Fabric's package id, malformed ones refused."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from medalliance.contracts.api import Contract
from medalliance.contracts.ccaas_package import (
    CcaasPackage,
    build_ccaas_package,
    parse_ccaas_package,
)
from medalliance.contracts.package import PackageStore
from medalliance.errors import InvalidArgument, NotFound, PreconditionFailed

CONNECTION = {"address": "basic.org1.example.com:9999", "dial_timeout": "500ms"}


def tar_gz(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


def fabric_package(metadata: object, connection: object) -> bytes:
    """A package as `peer lifecycle chaincode package --lang ccaas` style tooling writes it."""
    code = tar_gz({"connection.json": json.dumps(connection).encode()})
    return tar_gz({"metadata.json": json.dumps(metadata).encode(), "code.tar.gz": code})


def test_a_fabric_ccaas_package_installs_under_fabrics_package_id(tmp_path: Path) -> None:
    package = fabric_package({"type": "ccaas", "label": "basic_1.0"}, CONNECTION)
    store = PackageStore(tmp_path)
    pkg_id = store.install(package)
    assert pkg_id == f"basic_1.0:{hashlib.sha256(package).hexdigest()}"
    assert store.install(package) == pkg_id  # twice is harmless
    (installed,) = store.installed_ccaas().items()
    assert installed[0] == pkg_id
    assert installed[1].connection.address == "basic.org1.example.com:9999"
    assert installed[1].connection.dial_timeout_s == 0.5


def test_a_ccaas_package_loads_as_the_peers_external_contract(tmp_path: Path) -> None:
    made: list[tuple[str, CcaasPackage]] = []

    def external(pkg_id: str, package: CcaasPackage) -> Contract:
        made.append((pkg_id, package))
        return Contract()

    store = PackageStore(tmp_path, external)
    pkg_id = store.install(build_ccaas_package("basic_1.0", CONNECTION))
    assert store.load(pkg_id) is store.load(pkg_id)
    assert [m[0] for m in made] == [pkg_id]
    with pytest.raises(NotFound):  # the same hash under another label is not that package
        store.load("other:" + pkg_id.partition(":")[2])


def test_a_peer_without_external_chaincodes_refuses_to_run_one(tmp_path: Path) -> None:
    store = PackageStore(tmp_path)
    pkg_id = store.install(build_ccaas_package("basic_1.0", CONNECTION))
    with pytest.raises(PreconditionFailed, match="cannot run chaincode as a service"):
        store.load(pkg_id)


def test_building_is_reproducible() -> None:
    assert build_ccaas_package("basic_1.0", CONNECTION) == build_ccaas_package(
        "basic_1.0", CONNECTION
    )


@pytest.mark.parametrize(
    ("package", "refusal"),
    [
        pytest.param(b"\x1f\x8b not gzip", "not a tar.gz", id="a broken archive is refused"),
        pytest.param(
            fabric_package({"type": "node", "label": "basic"}, CONNECTION),
            "type 'node' cannot run on this peer",
            id="a package to build on the peer is refused",
        ),
        pytest.param(
            fabric_package({"type": "ccaas"}, CONNECTION),
            "metadata.json with type and label",
            id="a package without a label is refused",
        ),
        pytest.param(
            fabric_package({"type": "ccaas", "label": "../x"}, CONNECTION),
            "label may use letters",
            id="a label that is a path is refused",
        ),
        pytest.param(
            fabric_package({"type": "ccaas", "label": "b"}, {"address": "no-port"}),
            "address as host:port",
            id="an address without a port is refused",
        ),
        pytest.param(
            fabric_package({"type": "ccaas", "label": "b"}, {**CONNECTION, "dial_timeout": "1h"}),
            "dial_timeout must read like",
            id="a dial timeout in hours is refused",
        ),
        pytest.param(
            fabric_package({"type": "ccaas", "label": "b"}, {**CONNECTION, "tls_required": True}),
            "needs root_cert",
            id="TLS without a root certificate is refused",
        ),
        pytest.param(
            fabric_package(
                {"type": "ccaas", "label": "b"},
                {
                    **CONNECTION,
                    "tls_required": True,
                    "root_cert": "PEM",
                    "client_auth_required": True,
                },
            ),
            "needs client_cert and client_key",
            id="client authentication without a client certificate is refused",
        ),
        pytest.param(
            tar_gz({"metadata.json": b'{"type":"ccaas","label":"b"}'}),
            "needs code.tar.gz",
            id="a package without code is refused",
        ),
        pytest.param(
            tar_gz({"metadata.json": b'{"type":"ccaas","label":"b"}', "code.tar.gz": tar_gz({})}),
            "needs connection.json",
            id="code without connection.json is refused",
        ),
        pytest.param(
            gzip.compress(b"\0" * (8 << 20)),
            "larger than a ccaas package can be",
            id="an archive that inflates beyond the limit is refused",
        ),
    ],
)
def test_malformed_packages_are_refused_and_nothing_is_installed(
    tmp_path: Path, package: bytes, refusal: str
) -> None:
    with pytest.raises(InvalidArgument, match=refusal):
        parse_ccaas_package(package)
    store = PackageStore(tmp_path / "packages")
    with pytest.raises(InvalidArgument, match=refusal):
        store.install(package)
    assert not (tmp_path / "packages").exists() or not any((tmp_path / "packages").iterdir())
