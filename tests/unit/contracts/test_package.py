"""Contract packages: built from a module's source, installed per peer, refused once tampered."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import pytest

from medalliance.contracts.api import Contract
from medalliance.contracts.package import PackageStore, build_package
from medalliance.errors import InvalidArgument, NotFound, PreconditionFailed

CONTRACT_SOURCE = """
from medalliance.contracts import Context, Contract, transaction


class Echo(Contract):
    name = "echo"

    @transaction(evaluate=True)
    def Echo(self, ctx: Context, text: str) -> str:
        return text
"""
_names = itertools.count()


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """A fresh importable contract module (a new name per test: imports are cached)."""
    name = f"echo_contract_{next(_names)}"
    source_dir = tmp_path / "src"
    source_dir.mkdir()
    path = source_dir / f"{name}.py"
    path.write_text(CONTRACT_SOURCE)
    monkeypatch.syspath_prepend(str(source_dir))
    return name, path


@pytest.fixture
def store(tmp_path: Path) -> PackageStore:
    return PackageStore(tmp_path / "peer0" / "packages")


def test_a_package_is_canonical_json_naming_the_source_hash(module: tuple[str, Path]) -> None:
    name, path = module
    package = build_package("echo_1", f"{name}:Echo")
    document = json.loads(package)
    assert document == {
        "entry": f"{name}:Echo",
        "label": "echo_1",
        "source_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "type": "python",
    }
    assert package == json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def test_install_is_idempotent_and_load_is_cached(
    module: tuple[str, Path], store: PackageStore
) -> None:
    package = build_package("echo_1", f"{module[0]}:Echo")
    package_id = store.install(package)
    assert package_id == f"echo_1:{hashlib.sha256(package).hexdigest()}"
    assert store.install(package) == package_id
    assert [p.package_id for p in store.installed()] == [package_id]
    contract = store.load(package_id)
    assert isinstance(contract, Contract)
    assert contract.name == "echo"
    assert store.load(package_id) is contract


def test_a_tampered_source_is_refused_at_load(
    module: tuple[str, Path], store: PackageStore, tmp_path: Path
) -> None:
    name, path = module
    package_id = store.install(build_package("echo_1", f"{name}:Echo"))
    path.write_text(CONTRACT_SOURCE + "\n# changed after install\n")
    fresh = PackageStore(tmp_path / "peer0" / "packages")  # a restarted peer
    with pytest.raises(PreconditionFailed, match="does not match the installed source; reinstall"):
        fresh.load(package_id)


def test_a_package_built_from_other_source_is_refused_at_install(
    module: tuple[str, Path], store: PackageStore
) -> None:
    name, path = module
    package = build_package("echo_1", f"{name}:Echo")
    path.write_text(CONTRACT_SOURCE + "\n# this peer has other code\n")
    with pytest.raises(PreconditionFailed, match="other source"):
        store.install(package)
    assert store.installed() == []


def test_a_nondeterministic_contract_is_refused_at_install(
    module: tuple[str, Path], store: PackageStore
) -> None:
    name, path = module
    path.write_text("import random\n" + CONTRACT_SOURCE)
    with pytest.raises(PreconditionFailed, match="line 1: imports random"):
        store.install(build_package("echo_1", f"{name}:Echo"))


@pytest.mark.parametrize(
    "package",
    [
        pytest.param(b"\xff", id="bytes that are not JSON are refused"),
        pytest.param(b"[]", id="JSON that is not an object is refused"),
        pytest.param(
            b'{"type":"node","label":"x","entry":"a:B","source_sha256":""}',
            id="a non-python package is refused",
        ),
    ],
)
def test_malformed_packages_are_refused(store: PackageStore, package: bytes) -> None:
    with pytest.raises(InvalidArgument):
        store.install(package)


@pytest.mark.parametrize(
    ("label", "entry"),
    [
        pytest.param("echo 1", "m:C", id="a label with a space is refused"),
        pytest.param("echo_1", "no_class_here", id="an entry without a class is refused"),
    ],
)
def test_bad_labels_and_entries_are_refused(label: str, entry: str) -> None:
    with pytest.raises(InvalidArgument):
        build_package(label, entry)


@pytest.mark.parametrize(
    "package_id",
    [
        pytest.param("echo_1:" + "00" * 32, id="an id never installed is not found"),
        pytest.param("echo_1:../../etc/passwd", id="an id that is not a sha256 is not found"),
    ],
)
def test_unknown_packages_are_not_found(store: PackageStore, package_id: str) -> None:
    with pytest.raises(NotFound):
        store.load(package_id)


def test_the_visit_contract_installs_and_loads(store: PackageStore) -> None:
    package_id = store.install(build_package("visit_1", "medalliance.alliance.visit:VisitContract"))
    assert store.load(package_id).name == "visit"
