"""An embedded test network: a regulator, two tertiary hospitals, one secondary hospital."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from medalliance.node.config import NetworkConfig
from medalliance.node.embedded import EmbeddedNetwork

CONFIG = {
    "name": "test-alliance",
    "organizations": [
        {
            "name": "Regulator",
            "msp_id": "RegMSP",
            "domain": "reg.example.com",
            "type": "regulator",
            "peers": [{"name": "peer0", "port": 8051}],
            "users": [{"name": "Auditor1", "role": "auditor"}],
        },
        {
            "name": "HospA",
            "users": [{"name": "User1", "role": "doctor"}],
            "msp_id": "HospAMSP",
            "domain": "hospa.example.com",
            "type": "tertiary",
            "regulator": "Regulator",
            "peers": [{"name": "peer0", "port": 8151}],
            "orderers": [{"name": "orderer0", "port": 8050}],
        },
        {
            "name": "HospB",
            "users": [{"name": "User1", "role": "doctor"}],
            "msp_id": "HospBMSP",
            "domain": "hospb.example.com",
            "type": "tertiary",
            "regulator": "Regulator",
            "peers": [{"name": "peer0", "port": 8251}],
        },
        {
            "name": "HospC",
            "users": [{"name": "User1", "role": "doctor"}],
            "msp_id": "HospCMSP",
            "domain": "hospc.example.com",
            "type": "secondary",
            "regulator": "Regulator",
            "peers": [{"name": "peer0", "port": 8351}],
        },
    ],
    "channels": [
        {
            "name": "alliance",
            "batch": {"max_message_count": 10, "timeout_ms": 100},
            "contracts": [
                {"name": "visit", "package": "medalliance.alliance.visit:VisitContract"},
                # a plain asset ledger for platform behaviours such as MVCC conflicts
                {
                    "name": "basic",
                    "package": "medalliance.samples.asset_transfer_basic:AssetTransferBasic",
                },
            ],
        },
        {"name": "tertiary", "members": ["HospA", "HospB"]},
    ],
}


@pytest.fixture(scope="session")
def network_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A network created once (crypto, genesis, lifecycle); tests copy it."""
    directory = tmp_path_factory.mktemp("template")
    EmbeddedNetwork.open(NetworkConfig.model_validate(CONFIG), directory).close()
    return directory


@pytest.fixture
def network(network_template: Path, tmp_path: Path) -> Iterator[EmbeddedNetwork]:
    directory = tmp_path / "net"
    shutil.copytree(network_template, directory)
    with EmbeddedNetwork.open(NetworkConfig.model_validate(CONFIG), directory) as net:
        yield net


@contextmanager
def network_with_assets(template: Path, directory: Path, prefix: str) -> Iterator[EmbeddedNetwork]:
    """A copy of the template network with three committed `basic` assets PREFIX0..2: a ledger
    with blocks beyond its deployment, for tests that read, copy or restore one."""
    shutil.copytree(template, directory)
    with EmbeddedNetwork.open(NetworkConfig.model_validate(CONFIG), directory) as network:
        client = network.client("HospCMSP")
        for i in range(3):
            created = client.submit(
                "alliance", "basic", "CreateAsset", f"{prefix}{i}", "red", "5", "Ann", "9"
            )
            assert created.valid
        yield network
