"""Fabric's test network as real processes, shared by the tests of a module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.networks import TEST_NETWORK, running, with_free_ports


@pytest.fixture(scope="module")
def network_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Fabric's test network (orderer + two peers, `basic` on `mychannel`)."""
    base = tmp_path_factory.mktemp("net")
    with running(with_free_ports(TEST_NETWORK, base / "network.yaml"), base) as directory:
        yield directory
