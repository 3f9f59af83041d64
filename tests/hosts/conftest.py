"""One alliance on namespace hosts per module (tests/hosts/alliance.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hosts.alliance import HostedAlliance, hosted_alliance
from tests.hosts.namespaces import require_namespaces

SEED = 18  # the proxies' loss pattern; a failure is replayed with the same seed


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostedAlliance]:
    require_namespaces()
    with hosted_alliance(tmp_path_factory.mktemp("hosts"), SEED) as running:
        yield running
