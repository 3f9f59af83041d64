"""No package imports a layer above it (architecture §2)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "medalliance"

# package -> the packages of ours it may import (besides the leaves `medalliance.errors`,
# `medalliance.database_url` and `medalliance.sql_connection`)
_APPLICATION = {
    "identity",
    "ledger",
    "contracts",
    "consensus",
    "node",
    "alliance",
    "audit",
    "samples",
}
ALLOWED: dict[str, set[str]] = {
    "identity": set(),
    "ledger": {"identity"},
    "privacy": {"identity"},
    "contracts": {"ledger", "identity"},
    "consensus": {"identity", "ledger"},
    "audit": {"ledger", "identity"},
    "alliance": {"contracts", "privacy"},
    "samples": {"contracts"},
    "network": {"identity", "ledger"},
    "gateway": {"contracts", "ledger", "identity", "network"},
    "node": {
        "identity",
        "ledger",
        "contracts",
        "consensus",
        "network",
        "alliance",
        "gateway",
        "privacy",
        "audit",  # the integrity monitor's pure comparison (audit/integrity.py)
    },
    "hospital": {"privacy", "identity"},
    "app": _APPLICATION | {"gateway", "sdk", "privacy", "hospital", "ca"},
    "cli": _APPLICATION | {"gateway", "sdk", "app", "privacy", "hospital", "web", "ca"},
    # the web client: a shell like cli/ (architecture §2), and cli/ may start it (`serve`)
    "web": _APPLICATION | {"gateway", "sdk", "app", "privacy", "hospital", "ca"},
    "sdk": {"identity", "ledger"},
    # Fabric CA per organisation (issue 16): signs with the org's CA from identity/
    "ca": {"identity"},
}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if (
                parts[0] == "medalliance"
                and len(parts) > 1
                and parts[1] not in ("errors", "database_url", "sql_connection", "__init__")
            ):
                found.add(parts[1])
    return found


def modules() -> list[Path]:
    return sorted(SRC.glob("*/**/*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_module_imports_only_lower_layers(path: Path) -> None:
    package = path.relative_to(SRC).parts[0]
    assert package in ALLOWED, f"package {package} has no layer rule in this test"
    upward = imported_packages(path) - ALLOWED[package] - {package}
    assert not upward, f"{path.relative_to(SRC)} imports {sorted(upward)}, above its layer"
